"""The campaign end to end, as Prefect flows, against the real bundled stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from analysis.metrics import metrics_of
from artifacts.markdown import REPORTS
from flows.full_suite import full_suite, main, planned_jobs
from profiles.settings import load_profile
from stack import running_stack
from tasks.store import LEDGER
from tests.stackutil import proxy, wait_until

DOCS = Path(__file__).parent.parent / "profiles" / "documents"
# artifact keys carry the profile, so a smoke run never becomes another campaign's latest report
MAIN_KEYS = {"smoke-integration-performance-report", "smoke-integration-reliability-report",
             "smoke-integration-resources-report"}


def external_profile(tmp_path: Path, urls, **sections: str) -> Path:
    """A profile file aimed at services the test runs itself (smoke counts unless overridden)."""
    body = {
        "target": f'bundled_stack = false\nserver_url = "{urls.server}"\ntts_url = "{urls.tts}"\n'
                  f'llm_url = "{urls.llm}"\nredis_url = "{urls.redis}"\nllm_model = "extractive-planner"',
        "workload": f'documents = ["{DOCS / "short_note.txt"}"]\nconcurrency_levels = [1, 2]\nsequential_jobs = 3\n'
                    'latency_probes = 5',
        "timing": "job_timeout_s = 120\npoll_interval_s = 0.25\nbaseline_s = 1",
    } | sections
    text = f'name = "test"\nresults_dir = "{tmp_path / "runs"}"\n' + "".join(
        f"\n[{name}]\n{content}\n" for name, content in body.items())
    path = tmp_path / "profile.toml"
    path.write_text(text)
    return path


def artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {artifact.key for artifact in client.read_artifacts(limit=200) if artifact.key}


def test_smoke_profile_end_to_end(prefect_server, tmp_path):
    overrides = [f'results_dir="{tmp_path}"']
    state = full_suite(profile="smoke", overrides=overrides, run_id="smoke-run", return_state=True)
    assert state.is_completed(), state.message
    run = tmp_path / "smoke-run"

    jobs = pl.read_parquet(run / "jobs.parquet")
    assert jobs.height == planned_jobs(load_profile("smoke")) and jobs["succeeded"].all()
    assert set(jobs["stage"]) == {"single", "concurrent", "sequential"}
    videos = pl.read_parquet(run / "videos.parquet")
    assert videos.height == jobs.height and videos["ok"].all() and videos["hash_stable"].all()
    latency = pl.read_parquet(run / "latency.parquet")
    assert set(latency["endpoint"]) == {"health", "status", "jobs", "active"} and latency["ok"].all()
    samples = pl.read_parquet(run / "samples.parquet")
    assert {"baseline", "single", "concurrent"} <= set(samples["stage"])
    assert set(samples.filter(pl.col("stage") == "baseline")["service"]) >= {"redis", "llm", "tts", "server"}
    assert samples.filter((pl.col("service") == "server") & (pl.col("stage") == "baseline"))["rss_bytes"].min() > 0

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["profile_name"] == "smoke" and manifest["finished_at"] and manifest["services"]["redis"]["version"]
    checks = json.loads((run / "checks.json").read_text())
    assert checks and all(check["success"] for check in checks)
    reports = run / "reports"
    for name in ("integration_performance_report", "integration_reliability_report", "integration_resources_report"):
        assert (reports / f"{name}.md").read_text().startswith("# ")
        assert "<table>" in (reports / f"{name}.html").read_text()
    assert {path.name for path in reports.glob("*.md")} == set(REPORTS)
    assert list((reports / "figures").glob("*.svg")) and list((reports / "latex").glob("*.tex"))
    assert list((reports / "csv").glob("*.csv"))
    assert MAIN_KEYS <= artifact_keys()
    # the stages after the rounds: every contract rule checked holds, and every fault was measured and recovered
    conformance = pl.read_parquet(run / "conformance.parquet")
    assert conformance.height and conformance.filter(pl.col("observations") > 0)["violations"].sum() == 0
    faults = pl.read_parquet(run / "faults.parquet")
    assert faults.height == 8 and faults["recovered"].all() and faults["jobs_stuck"].sum() == 0
    assert {"latency", "sequential", "conformance", "faults"} <= set(samples["stage"])


def test_tts_stopped_mid_campaign_is_recorded_and_fails_the_success_rate(prefect_server, tmp_path):
    with running_stack(data_dir=tmp_path / "stack") as stack:
        profile = external_profile(tmp_path, stack.urls)
        ledger = tmp_path / "runs" / "tts-down" / LEDGER

        def stop_tts_after_first_job():
            wait_until(lambda: ledger.exists() and '"table": "jobs"' in ledger.read_text(), 120, "the first job")
            stack.stop_service("tts")

        stopper = threading.Thread(target=stop_tts_after_first_job, daemon=True)
        stopper.start()
        state = full_suite(profile=str(profile), run_id="tts-down", return_state=True)
        stopper.join(timeout=5)

    assert state.is_failed()
    assert "success rate" in state.message and "jobs with a verified video" in state.message
    run = tmp_path / "runs" / "tts-down"
    jobs = pl.read_parquet(run / "jobs.parquet")
    assert jobs.height == 1 + 1 + 2 + 3  # every planned job ran and was recorded
    failed = jobs.filter(~pl.col("succeeded"))
    assert failed.height >= 5 and failed["failure"].str.contains("tts").all()
    checks = json.loads((run / "checks.json").read_text())
    success_rate = [c for c in checks if c["column"] == "succeeded"]
    assert success_rate and not success_rate[0]["success"]
    reliability = (run / "reports" / "integration_reliability_report.md").read_text()
    assert "tts" in reliability and "failed" in reliability.lower()


def test_failing_services_are_all_reported_and_no_job_is_sent(prefect_server, tmp_path):
    with running_stack(data_dir=tmp_path / "stack") as stack:
        stack.stop_service("tts")
        wait_until(lambda: httpx.get(f"{stack.urls.server}/health").json()["status"] == "degraded", 15,
                   "the server to notice the tts is down")
        profile = external_profile(tmp_path, stack.urls)
        text = profile.read_text().replace('llm_model = "extractive-planner"', 'llm_model = "qwen3:4b"')
        profile.write_text(text)
        state = full_suite(profile=str(profile), run_id="broken", return_state=True)
        import redis

        submitted = redis.Redis.from_url(stack.urls.redis).zcard("t2v:jobs")

    assert state.is_failed() and "no job was submitted" in state.message
    llm_line = "llm: model qwen3:4b not listed (has: extractive-planner:latest) — run: ollama pull qwen3:4b"
    assert llm_line in state.message
    assert "tts: cannot reach" in state.message
    assert submitted == 0
    run = tmp_path / "runs" / "broken"
    services = {row["service"]: row for row in pl.read_parquet(run / "services.parquet").to_dicts()}
    assert services["redis"]["ok"]
    assert services["server"]["detail"] == "reports 'degraded' (tts_service: down)"
    assert services["llm"]["detail"] == "model qwen3:4b not listed (has: extractive-planner:latest)"
    assert services["llm"]["fix"] == "run: ollama pull qwen3:4b"
    assert "cannot reach" in services["tts"]["detail"] and services["tts"]["fix"]
    assert pl.read_parquet(run / "jobs.parquet").height == 0
    assert "qwen3:4b" in (run / "reports" / "test_service_verification.md").read_text()


@pytest.fixture
def silent_listener():
    """A TCP port that records whether anything connected to it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        yield listener


def connected(listener: socket.socket) -> bool:
    time.sleep(0.2)
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


class URLs:
    def __init__(self, port: int) -> None:
        self.server = self.tts = self.llm = f"http://127.0.0.1:{port}"
        self.redis = f"redis://127.0.0.1:{port}/0"


def test_a_bad_profile_sends_no_traffic(silent_listener, tmp_path, capsys):
    port = silent_listener.getsockname()[1]
    profile = external_profile(tmp_path, URLs(port), thresholds="success_rate = 2\nsurprise = 1")
    assert main(["--profile", str(profile)]) == 2
    error = capsys.readouterr().err
    assert "thresholds.success_rate" in error and "thresholds.surprise: unknown key" in error
    assert main(["--profile", str(profile.with_name("missing.toml"))]) == 2
    assert main(["--profile", "smoke", "--set", "workload.concurrency_levels=[0]"]) == 2
    assert not connected(silent_listener)


def test_a_bad_profile_fails_the_flow_before_any_traffic(prefect_server, silent_listener, tmp_path):
    port = silent_listener.getsockname()[1]
    profile = external_profile(tmp_path, URLs(port), timing="poll_interval_s = 'fast'")
    state = full_suite(profile=str(profile), return_state=True)
    assert state.is_failed() and state.message.startswith("profile ") and "timing.poll_interval_s" in state.message
    assert not connected(silent_listener)


def test_served_deployment_runs_the_campaign(prefect_server, tmp_path):
    """The scheduled-deployment way: `--serve` in its own process, a run started through the API."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    root = Path(__file__).parent.parent
    command = [sys.executable, "-m", "flows.full_suite", "--profile", "smoke", "--serve", "served-test"]
    for override in (f'results_dir="{tmp_path}"', "workload.concurrency_levels=[1]", "workload.sequential_jobs=0",
                     "workload.latency_probes=2", "timing.baseline_s=0.5"):
        command += ["--set", override]
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()})
    try:
        def deployed():
            with get_client(sync_client=True) as client:
                try:
                    return client.read_deployment_by_name("full-suite/served-test")
                except Exception:
                    return None

        wait_until(deployed, 90, "the deployment to be served")
        flow_run = run_deployment("full-suite/served-test", timeout=240)
        assert flow_run.state.is_completed(), (flow_run.state.message, (tmp_path / "serve.log").read_text()[-3000:])
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(list(tmp_path.glob("*/reports/integration_performance_report.md"))) == 1


def upstream_answer(job: dict) -> dict:
    """A job status object as the upstream server gives it: `phase` always null, `completed` with result.video
    null (its composer failed)."""
    result = job.get("result")
    return {**job, "phase": None, "result": {**result, "video": None} if isinstance(result, dict) else result}


def test_completed_without_a_video_is_no_success_anywhere_in_the_reports(prefect_server, tmp_path):
    """The upstream server's failure modes: jobs end `completed` without a video (result.video null, every
    download answers 404) and no answer names a phase; its LLM is reached only as OpenAI's API. The run fails
    on its success rate alone: the contract's broken rules are named and warned about (thresholds.conformance
    is "warn" by default), and the missing phases are said in words."""
    with running_stack(data_dir=tmp_path / "stack") as stack, \
            proxy(stack.urls.server, (404, {"detail": "No video found"}), rewrite_job=upstream_answer) as front:
        urls = type("URLs", (), {"server": front, "tts": stack.urls.tts, "llm": stack.urls.llm,
                                 "redis": stack.urls.redis})
        profile = external_profile(tmp_path, urls)
        state = full_suite(profile=str(profile), overrides=['target.llm_api="openai"'], run_id="no-video",
                           return_state=True)

    assert state.is_failed() and "success rate 0.0 % (0 of 7 jobs with a verified video, 95 % CI 0.0–35.4 %) < 95 %" \
        in state.message
    run = tmp_path / "runs" / "no-video"
    jobs = pl.read_parquet(run / "jobs.parquet")
    assert jobs.height == 7 and set(jobs["server_status"]) == {"completed"} and not jobs["succeeded"].any()
    assert set(jobs["failure"]) == {"server said completed but the download answered 404: No video found"}
    checks = json.loads((run / "checks.json").read_text())
    assert not [c for c in checks if c["column"] == "succeeded"][0]["success"]
    reports = "\n".join(path.read_text() for path in (run / "reports").glob("*.md"))
    assert "100.0 %" not in reports and "No job failed" not in reports
    paper = (run / "reports" / "integration_performance_report.md").read_text().split("## For a paper")[1]
    assert "0 of 2 (0.0 %) jobs delivered a verified video" in paper
    assert "No throughput can be given" in paper

    assert pl.read_parquet(run / "services.parquet").filter(pl.col("service") == "llm")["ok"].to_list() == [True]
    conformance = {row["rule"]: row for row in pl.read_parquet(run / "conformance.parquet").iter_rows(named=True)}
    phase = conformance["a processing job names its phase (upload, script, audio, visual, compose, done)"]
    assert phase["violations"] > 0 and "with phase null" in phase["example"]
    video = next(row for rule, row in conformance.items() if rule.startswith("a completed job's result.video"))
    assert video["observations"] == video["violations"] == 7 and video["example"].endswith("result.video null")
    assert conformance["an empty upload answers 400"]["violations"] == 0  # the probes ran, through the proxy
    (warned,) = [c for c in checks if c["suite"] == "conformance"]
    assert not warned["success"] and warned["fails_run"] is False and "conformance" not in state.message
    metrics = metrics_of(run)
    assert metrics.unreported["phase"] == "the server reports no phases: time per phase not measured"
    assert "failed as a warning only (conformance" in metrics.verdict
