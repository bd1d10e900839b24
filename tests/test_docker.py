"""The container files, checked statically (no Docker engine runs on these machines)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continued lines joined."""
    lines = [line.strip() for line in dockerfile.read_text().splitlines() if not line.strip().startswith("#")]
    joined = " ".join(line[:-1] if line.endswith("\\") else line + "\n" for line in lines)
    return [tuple(step.strip().split(maxsplit=1)) for step in joined.split("\n") if step.strip()]


def test_dockerfile_copies_what_exists_and_runs_the_campaign():
    steps = instructions(ROOT / "docker" / "Dockerfile")
    assert steps[0] == ("FROM", "python:3.11-slim")
    copied = [source for op, args in steps if op == "COPY" for source in args.split()[:-1]]
    assert copied and all((ROOT / source).exists() for source in copied), copied
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests"}
    assert packages <= set(copied), packages - set(copied)
    assert ("ENTRYPOINT", '["python", "-m", "flows.full_suite"]') in steps


def test_compose_serves_the_campaign_against_a_prefect_server():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    campaign = compose["services"]["campaign"]
    assert campaign["build"]["dockerfile"] == "docker/Dockerfile"
    assert (ROOT / "docker" / campaign["build"]["context"] / campaign["build"]["dockerfile"]).is_file()
    assert "--serve" in campaign["command"]
    assert campaign["environment"]["PREFECT_API_URL"].startswith("http://prefect:4200")
