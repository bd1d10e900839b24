"""The container files, checked without a Docker engine (none runs on these machines): the compose file as
`docker compose config` renders it where that client is installed, else as its own YAML, interpolated here."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"
VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}")


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


def has_compose_client() -> bool:
    return bool(shutil.which("docker")) and subprocess.run(["docker", "compose", "version"],
                                                           capture_output=True).returncode == 0


def interpolated(node, env: dict[str, str]):
    """What compose does to the file's strings: ${VAR:-default} and ${VAR} from env, $$ as a literal $."""
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items() if key != "<<"} | (
            interpolated(node["<<"], env) if "<<" in node else {})
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, str):
        return VARIABLE.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1)) or m.group(2) or "", node)
    return node


def short_port(spec: str) -> dict:
    host_ip, published, target = spec.rsplit(":", 2)
    return {"host_ip": host_ip, "published": published, "target": int(target)}


def rendered(env: dict[str, str]) -> dict:
    """The compose model with these variables set: from `docker compose config` when the client is here."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "T2V_"))} | env
    if has_compose_client():
        done = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--format", "json"],
                              capture_output=True, text=True, env=clean, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    model = interpolated(yaml.safe_load(COMPOSE.read_text()), env)
    for service in model["services"].values():
        service["ports"] = [short_port(p) if isinstance(p, str) else p for p in service.get("ports", [])]
        service["environment"] = {k: str(v) for k, v in service.get("environment", {}).items()}
    return model


def command_line(service: dict) -> str:
    return " ".join(service.get("entrypoint") or []) + " " + " ".join(service.get("command") or [])


def test_compose_file_is_valid_for_the_compose_client_here():
    raw = yaml.safe_load(COMPOSE.read_text())  # YAML anchors and merge keys are resolved by the loader
    assert {"prefect", "worker", "campaign"} <= set(raw["services"])
    if has_compose_client():
        assert rendered({})["services"]
    elif shutil.which("docker-compose"):  # Debian's docker-compose 1.29 checks the file against its schema
        done = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
    else:
        pytest.skip("no compose client here: the file is checked as YAML only")


def test_compose_publishes_prefect_on_loopback_with_its_database_on_a_volume_and_telemetry_off():
    model = rendered({})
    prefect = model["services"]["prefect"]
    assert [(p["host_ip"], str(p["published"]), p["target"]) for p in prefect["ports"]] == [("127.0.0.1", "4200", 4200)]
    home = prefect["environment"]["PREFECT_HOME"]
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in prefect["volumes"]]
    assert f"prefect-data:{home}" in mounts and "prefect-data" in model["volumes"]
    assert prefect["environment"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert "server start" in command_line(prefect)


def test_compose_host_address_and_port_are_variables():
    prefect = rendered({"PREFECT_HOST_IP": "0.0.0.0", "PREFECT_PORT": "4300"})["services"]["prefect"]
    assert [(p["host_ip"], str(p["published"])) for p in prefect["ports"]] == [("0.0.0.0", "4300")]


def test_compose_worker_deploys_prefect_yaml_and_runs_its_pool():
    services = rendered({})["services"]
    pools = {d["work_pool"]["name"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    worker = command_line(services["worker"])
    assert "deploy --all" in worker and all(f"worker start --pool {pool}" in worker for pool in pools)
    assert all(f"--type process --overwrite {pool}" in worker for pool in pools)
    for name in ("worker", "campaign"):
        assert services[name]["environment"]["PREFECT_API_URL"] == "http://prefect:4200/api"
        assert services[name]["depends_on"]["prefect"]["condition"] == "service_healthy"
        assert services[name]["build"]["dockerfile"].endswith("Dockerfile")


def test_compose_campaign_profile_is_a_variable_defaulting_to_local():
    assert rendered({})["services"]["campaign"]["environment"]["T2V_PROFILE"] == "local"
    campaign = rendered({"T2V_PROFILE": "smoke", "T2V_CRON": "0 3 * * *"})["services"]["campaign"]
    assert campaign["environment"]["T2V_PROFILE"] == "smoke" and campaign["environment"]["T2V_CRON"] == "0 3 * * *"
    assert '--profile "$T2V_PROFILE" --serve' in command_line(campaign)
