"""Schedules fire: a real `prefect server start`, the campaign served with an every-minute cron, and a run
the scheduler made starting on its own, with nothing wrong in the server's log.

With SQLAlchemy 2.1 the server's scheduler failed every minute ("Can't evaluate bulk DML statement") and
no scheduled run was ever made; pyproject pins the version seen to work.
"""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from tests.prefectutil import background, prefect_server, stop_tree
from tests.stackutil import wait_until

DEPLOYMENT = "campaign-every-minute"
# the next minute boundary (<= 60 s), the runner's poll (10 s) and the run's own start, on a busy machine
SCHEDULED_START_BOUND_S = 150
STARTED = ["RUNNING", "COMPLETED", "FAILED"]


def deployment_id(api: str, name: str) -> str | None:
    answer = httpx.get(f"{api}/deployments/name/full-suite/{name}", timeout=5)
    return answer.json()["id"] if answer.status_code == 200 else None


def flow_runs(api: str, deployment: str) -> list[dict]:
    answer = httpx.post(f"{api}/flow_runs/filter", timeout=5,
                        json={"deployments": {"id": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_ASC"})
    answer.raise_for_status()
    return answer.json()


@pytest.mark.timeout(300)
def test_a_served_cron_schedule_starts_a_run_on_its_own(tmp_path):
    began = time.monotonic()
    with prefect_server(tmp_path) as server:
        serve = background([sys.executable, "-m", "flows.full_suite", "--profile", "smoke", "--serve", DEPLOYMENT,
                            "--cron", "* * * * *", "--set", f'results_dir="{tmp_path / "runs"}"'],
                           tmp_path / "serve.log", server.env())
        try:
            def served() -> str | None:
                assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                return deployment_id(server.api, DEPLOYMENT)

            deployment = wait_until(served, 90, "the deployment to be served")
            scheduled = wait_until(lambda: [r for r in flow_runs(server.api, deployment) if r["auto_scheduled"]], 60,
                                   "the scheduler to make runs")

            def started() -> dict | None:
                assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                return next((r for r in flow_runs(server.api, deployment)
                             if r["auto_scheduled"] and r["state_type"] in STARTED and r["start_time"]), None)

            run = wait_until(started, SCHEDULED_START_BOUND_S, "a scheduled run to start", interval=2)
        finally:
            stop_tree(serve)
        errors = server.errors()
    serve_log = (tmp_path / "serve.log").read_text()
    assert "schedule: '* * * * *' in UTC (no --timezone given)" in serve_log
    assert run["expected_start_time"].endswith(":00Z"), run  # a minute boundary: the cron, not a manual run
    assert len(scheduled) > 1, "an every-minute cron schedules runs ahead"
    assert not errors, errors[:20]
    print(f"scheduled run {run['name']} {run['state_type']} after {time.monotonic() - began:.0f} s")
