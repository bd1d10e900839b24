"""Waits for services found unreachable before a round, against the real bundled stack: a stop during the wait ends
it at once, recorded as cut by the stop, and starts no further wait."""

from __future__ import annotations

import logging
import threading
from pathlib import Path


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
