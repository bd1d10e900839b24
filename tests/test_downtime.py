"""Waits for services found unreachable before a round, against the real bundled stack: a stop during the wait ends
it at once, recorded as cut by the stop, and starts no further wait."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from urllib.parse import urlsplit


def test_a_stop_during_a_wait_for_services_ends_it_and_starts_no_other(prefect_server, tmp_path):
    from flows.lifecycle import StageLog
    from flows.verify import services_ready
    from profiles.settings import load_profile
    from stack import running_stack
    from tasks.interrupt import request_stop, reset
    from tasks.run import open_run
    from tasks.services import Services
    from tasks.store import Ledger, read_ledger

    settings = load_profile("smoke", [f'results_dir="{tmp_path}"', "campaign.retries=3", "campaign.retry_wait_s=30",
                                      "campaign.retry_poll_s=0.5"])
    run_dir = open_run.fn(settings, "stopped")
    Ledger.of(run_dir).round = 2
    stages = StageLog(run_dir, logging.getLogger("test"))
    with running_stack() as stack:
        urls = stack.urls
        services = Services(server=urls.server, tts=urls.tts, llm=urls.llm, redis=urls.redis,
                            llm_model=settings.target.llm_model)
        stack.stop_service("tts")
        stopper = threading.Timer(2.0, request_stop)
        stopper.start()
        try:
            why = services_ready(stages, settings, services, run_dir, may_wait=True)
        finally:
            stopper.cancel()
            reset()
    recorded = read_ledger(Path(run_dir))
    [wait] = recorded["downtime"]  # one wait, not one per retry left
    assert wait["recovered"] is None and wait["detail"].startswith("cut by the run's stop: tts")
    assert wait["seconds"] < 10  # ended by the stop, not by its 30 s bound
    assert str(why).startswith("stopped while the services were verified or waited for") and "tts" in str(why)
    assert [row["stage"] for row in recorded["stages"] if row["outcome"] != "running"] == ["verification"]


def test_a_campaign_that_gives_up_at_round_2_checks_round_1_and_says_so(prefect_server, tmp_path):
    """tts is killed once round 1's last job has succeeded and never comes back: round 2 waits once, gives up, and
    the verdict says where the campaign stopped and that the checks cover round 1's jobs."""
    import json
    import os
    import signal
    import time

    import psutil

    from flows.full_suite import full_suite
    from tasks.store import read_ledger

    run = tmp_path / "gives-up"
    killed: list[int] = []

    def kill_tts_after_round_1() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            recorded = read_ledger(run) if run.exists() else {"jobs": [], "services": []}
            if any(row.get("stage") == "sequential" and row.get("succeeded") for row in recorded["jobs"]):
                port = urlsplit(next(row["url"] for row in recorded["services"] if row["service"] == "tts")).port
                for connection in psutil.net_connections(kind="tcp"):
                    if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                        os.kill(connection.pid, signal.SIGKILL)
                        killed.append(connection.pid)
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_tts_after_round_1, daemon=True)
    watcher.start()
    overrides = [f'results_dir="{tmp_path}"', "workload.concurrency_levels=[1]", "workload.sequential_jobs=1",
                 "workload.latency_probes=5", "timing.baseline_s=0.5", "faults.enabled=false", "campaign.retries=1",
                 "campaign.retry_wait_s=1", "campaign.retry_poll_s=0.5"]
    state = full_suite(profile="smoke", overrides=overrides, run_id=run.name, rounds=2, return_state=True)
    watcher.join(5)
    assert killed, "tts was never killed"
    assert state.is_failed()
    assert state.message.startswith("campaign stopped at round 2: services unreachable before round 2, after 1 wait")
    assert "the campaign STOPPED at round 2, so the checks cover the jobs measured before it" in state.message
    assert json.loads((run / "checks.json").read_text())  # the round measured was checked
    assert json.loads((run / "manifest.json").read_text())["outcome"] == "stopped"
