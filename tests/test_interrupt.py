"""Ctrl-C in the middle of a campaign, as a terminal sends it: to the whole process group."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import polars as pl

from tasks.store import LEDGER
from tests.stackutil import wait_until

ROOT = Path(__file__).parent.parent


def concurrent_job_submitted(run_root: Path) -> bool:
    rows = (json.loads(line) for path in run_root.glob(f"*/{LEDGER}") for line in path.read_text().splitlines()
            if line.endswith("}"))
    return any(row["table"] == "jobs" and row.get("stage") == "concurrent" and row.get("job_id") for row in rows)


def listening(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((parsed.hostname, parsed.port)) == 0


def test_ctrl_c_during_the_concurrent_stage_ends_the_run_cleanly(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    command = [sys.executable, "-m", "flows.full_suite", "--profile", "smoke", "--set", f'results_dir="{tmp_path}"',
               "--set", "workload.concurrency_levels=[2]", "--set", "timing.baseline_s=0.5"]
    console = tmp_path / "console.log"
    with console.open("wb") as out:
        campaign = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()})
    try:
        wait_until(lambda: concurrent_job_submitted(tmp_path), 180, "a concurrent job to be submitted")
        signalled = time.monotonic()
        os.killpg(campaign.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        code = campaign.wait(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, signal.SIGKILL)
    text = console.read_text()
    print(f"ended {took:.1f} s after SIGINT")
    assert took < 20, text[-3000:]  # the target is 10 s; a busy shared machine gets slack
    assert code == 130, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    [run] = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert f"run:     {run}" in text and "Cancelled" in text

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"] == "interrupted" and manifest["finished_at"]
    jobs = pl.read_parquet(run / "jobs.parquet")
    interrupted = jobs.filter(pl.col("outcome") == "interrupted")
    assert interrupted.height >= 1 and set(interrupted["stage"]) == {"concurrent"}
    stages = pl.read_parquet(run / "stages.parquet")
    assert stages.filter(pl.col("stage") == "concurrent")["outcome"].to_list() == ["running", "interrupted"]
    assert set(stages.filter(pl.col("stage").is_in(["latency", "sequential"]))["outcome"]) == {"interrupted"}
    assert "interrupted" in (run / "reports" / "integration_performance_report.md").read_text().lower()
    assert not any(listening(entry["url"]) for entry in manifest["services"].values() if isinstance(entry, dict))

    with get_client(sync_client=True) as client:
        [flow_run] = [r for r in client.read_flow_runs(limit=50) if r.parameters.get("run_id") == run.name]
    assert flow_run.state.is_cancelled(), flow_run.state
