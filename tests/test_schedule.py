"""Scheduled campaigns as a user runs them, against a real `prefect server start`: the campaign served with
an every-minute cron starts a run on its own, and prefect.yaml's named deployments are deployed and run by
a process worker — with nothing wrong in the server's log.

With SQLAlchemy 2.1 the server's scheduler failed every minute ("Can't evaluate bulk DML statement") and
no scheduled run was ever made; pyproject pins the version seen to work.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema

from flows.full_suite import full_suite, main, parse_args
from profiles.settings import load_profile, shipped_profiles
from tests.prefectutil import ROOT, background, prefect_server, stop_tree
from tests.stackutil import wait_until

DEPLOYMENT = "campaign-every-minute"
# the next minute boundary (<= 60 s), the runner's poll (10 s) and the run's own start, on a busy machine
SCHEDULED_START_BOUND_S = 150
WORKER_START_BOUND_S = 120  # the worker's start, its poll (10 s) and the run's own start
STARTED = ["RUNNING", "COMPLETED", "FAILED"]
PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with prefect_server(tmp_path_factory.mktemp("prefect")) as running:
        yield running
        errors = running.errors()
    assert not errors, errors[:20]


def deployment_id(api: str, name: str) -> str | None:
    answer = httpx.get(f"{api}/deployments/name/full-suite/{name}", timeout=5)
    return answer.json()["id"] if answer.status_code == 200 else None


def flow_runs(api: str, deployment: str) -> list[dict]:
    answer = httpx.post(f"{api}/flow_runs/filter", timeout=5,
                        json={"deployments": {"id": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_ASC"})
    answer.raise_for_status()
    return answer.json()


def started(server, process: subprocess.Popen, log: Path, deployment: str, auto_scheduled: bool):
    """A predicate: the deployment's run that has started, else None; fails at once when something broke."""
    def run() -> dict | None:
        assert process.poll() is None, log.read_text()[-3000:]
        assert not server.errors(), server.errors()[:20]  # e.g. the scheduler's InvalidRequestError
        return next((r for r in flow_runs(server.api, deployment) if r["auto_scheduled"] == auto_scheduled
                     and r["state_type"] in STARTED and r["start_time"]), None)
    return run


@pytest.mark.timeout(300)
def test_a_served_cron_schedule_starts_a_run_on_its_own(server, tmp_path):
    began = time.monotonic()
    log = tmp_path / "serve.log"
    serve = background([sys.executable, "-m", "flows.full_suite", "--profile", "smoke", "--serve", DEPLOYMENT,
                        "--cron", "* * * * *", "--set", f'results_dir="{tmp_path / "runs"}"'], log, server.env())
    try:
        def served() -> str | None:
            assert serve.poll() is None, log.read_text()[-3000:]
            return deployment_id(server.api, DEPLOYMENT)

        deployment = wait_until(served, 90, "the deployment to be served")
        scheduled = wait_until(lambda: [r for r in flow_runs(server.api, deployment) if r["auto_scheduled"]], 60,
                               "the scheduler to make runs")
        run = wait_until(started(server, serve, log, deployment, auto_scheduled=True), SCHEDULED_START_BOUND_S,
                         "a scheduled run to start", interval=2)
    finally:
        stop_tree(serve)
    assert "schedule: '* * * * *' in UTC (no --timezone given)" in log.read_text()
    assert run["expected_start_time"].endswith(":00Z"), run  # a minute boundary: the cron made it
    assert len(scheduled) > 1, "an every-minute cron schedules runs ahead"
    print(f"scheduled run {run['name']} {run['state_type']} after {time.monotonic() - began:.0f} s")


def test_prefect_yaml_deploys_the_flow_with_parameters_it_takes():
    deployments = {d["name"]: d for d in PREFECT_YAML["deployments"]}
    assert {"nightly-smoke", "weekly-local"} <= set(deployments)
    accepted = set(parameter_schema(full_suite).properties)
    for name, deployment in deployments.items():
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        assert flow.name == full_suite.name, name
        parameters = deployment["parameters"]
        assert set(parameters) <= accepted, name
        assert parameters["profile"] in shipped_profiles()
        load_profile(parameters["profile"], parameters.get("overrides"))  # raises on a bad profile or override
        for schedule in deployment["schedules"]:
            assert schedule["timezone"] and CronSchedule(**schedule), name
        assert deployment["work_pool"]["name"] == "t2v-bench", name
    assert deployments["nightly-smoke"]["parameters"]["profile"] == "smoke"
    assert deployments["weekly-local"]["parameters"]["profile"] == "local"


@pytest.mark.timeout(300)
def test_prefect_yaml_deployed_and_run_by_a_process_worker(server, tmp_path):
    def prefect(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=ROOT, env=server.env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    prefect("work-pool", "create", "--type", "process", "t2v-bench")
    prefect("deploy", "--all")
    for entry in PREFECT_YAML["deployments"]:
        deployed = httpx.get(f"{server.api}/deployments/name/full-suite/{entry['name']}", timeout=5).json()
        assert deployed["work_pool_name"] == "t2v-bench" and deployed["parameters"] == entry["parameters"]
        assert [s["schedule"]["cron"] for s in deployed["schedules"]] == [s["cron"] for s in entry["schedules"]]
        profile = deployed["parameter_openapi_schema"]["properties"]["profile"]
        assert list(shipped_profiles()) in [choice.get("enum") for choice in profile["anyOf"]]
        assert profile["description"]

    nightly = deployment_id(server.api, "nightly-smoke")
    answer = httpx.post(f"{server.api}/deployments/{nightly}/create_flow_run", timeout=10,
                        json={"parameters": {"overrides": [f'results_dir="{tmp_path / "runs"}"']}})
    assert answer.status_code == 201, answer.text
    log = tmp_path / "worker.log"
    worker = background([sys.executable, "-m", "prefect", "worker", "start", "--pool", "t2v-bench", "--limit", "1"],
                        log, server.env())
    try:
        run = wait_until(started(server, worker, log, nightly, auto_scheduled=False), WORKER_START_BOUND_S,
                         "the worker to start the run", interval=2)
    finally:
        stop_tree(worker)
    assert run["parameters"]["profile"] == "smoke"


@pytest.mark.parametrize(("argv", "error"), [
    (["--serve", "d", "--cron", "0 3 * *"], 'Invalid cron string: "0 3 * *"'),
    (["--serve", "d", "--cron", "0 3 * * *", "--timezone", "Mars/Olympus"], 'Invalid timezone: "Mars/Olympus"'),
    (["--timezone", "Europe/Berlin"], "--timezone goes with --cron"),
    (["--cron", "0 3 * * *"], "--cron goes with --serve"),
])
def test_a_bad_schedule_is_refused_before_anything_is_served(argv, error, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(argv)
    assert stop.value.code == 2 and error in capsys.readouterr().err


def test_a_cron_without_a_zone_is_utc_and_a_named_zone_is_kept():
    assert parse_args(["--serve", "d", "--cron", "0 3 * * *"]).schedule.timezone == "UTC"
    assert parse_args(["--serve", "d", "--cron", "0 3 * * *", "--timezone", "Europe/Berlin"]).schedule.timezone \
        == "Europe/Berlin"


def test_serve_without_a_prefect_server_says_what_to_set(monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    from prefect.settings import temporary_settings

    with temporary_settings(updates={"api.url": None}):
        assert main(["--profile", "smoke", "--serve", "d"]) == 2
    assert "set PREFECT_API_URL" in capsys.readouterr().err
