"""Reports, table artifacts and the console summary, formatted from a run's metrics only."""

import json
import re
from pathlib import Path

import pytest

from analysis.conformance import ConformanceRule
from analysis.faults import FaultResult
from analysis.metrics import compute_metrics
from analysis.resources import MB
from analysis.schema import frame
from artifacts.console import console_summary
from artifacts.figures import DrawnFigure
from artifacts.html import to_html
from artifacts.markdown import REPORTS, fmt, main_tables, measured, render_reports
from artifacts.publish import artifact_key, published_key

REPORT_NAMES = {
    "integration_performance_report.md", "integration_reliability_report.md", "integration_resources_report.md",
    "test_service_verification.md", "test_baseline_resources.md", "test_single_request.md",
    "test_concurrent_runs.md", "test_api_latency.md", "test_sequential_reliability.md", "test_video_integrity.md",
    "contract_conformance_report.md", "test_error_recovery.md",
}
NOT_A_FIGURE = re.compile(r"\b(None|nan|NaN|inf)\b")
SERVICES = ("server", "tts", "llm", "redis")


def manifest(**changes):
    return {
        "run_id": "20250101T000000-local",
        "profile_name": "local",
        "profile": {"name": "local", "description": "bundled stack",
                    "thresholds": {"success_rate": 0.95, "p95_job_seconds": 180.0, "p95_api_latency_ms": 100.0}},
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:02:03.5+00:00",
        "machine": {"hostname": "bench", "platform": "Linux-6.1", "python": "3.11.9", "cpu_count": 2,
                    "memory_bytes": 8 * 1024 * MB},
        "services": {name: {"url": f"http://127.0.0.1:{4000 + i}", "version": "1.0"}
                     for i, name in enumerate(SERVICES)} | {"llm_model": "extractive-planner"},
        "outcome": "measured",
        **changes,
    }


def job(job_id, stage, start, seconds, outcome="succeeded", level=None, batch=0, slot=0, **extra):
    ended = outcome != "running"
    return {
        "job_id": job_id, "stage": stage, "level": level, "batch": batch, "slot": slot,
        "document": "/docs/one_page.md", "submitted_at": start, "finished_at": start + seconds if ended else None,
        "total_seconds": seconds if ended else None, "server_status": "completed" if ended else None,
        "outcome": outcome, "succeeded": outcome == "succeeded", "processing_seconds": seconds - 0.5,
        "reported_video_seconds": 10.0, "scenes": 3, "queued_s": 0.5, "script_s": 1.0, "audio_s": 2.0,
        "visual_s": 3.0, "compose_s": seconds - 6.5, "tracking_problems": "", "observations": 8, **extra,
    }


NO_VIDEO = "server said completed but the download answered 404: No video found"
JOBS = [
    job("single-1", "single", 10.0, 10.0),
    job("conc-1a", "concurrent", 30.0, 10.0, level=1),
    job("conc-3a", "concurrent", 50.0, 10.0, level=3, slot=0),
    job("conc-3b", "concurrent", 50.0, 20.0, level=3, slot=1),
    job("conc-3c", "concurrent", 50.0, 40.0, outcome="failed", level=3, slot=2, failure=NO_VIDEO),
    job("seq-1", "sequential", 200.0, 10.0, batch=0),
    job("seq-2", "sequential", 210.0, 10.0, batch=1),
    job("seq-3", "sequential", 220.0, 10.0, batch=2, tracking_problems="progress went back from 50 to 40"),
]
DECODED = {"single-1": 10.0, "conc-1a": 10.0, "conc-3a": 8.0, "conc-3b": 12.0, "seq-1": 10.0, "seq-2": 10.0,
           "seq-3": 10.0}


def sample(stage, t, service, cpu, rss_mb):
    return {"stage": stage, "t": t, "service": service, "processes": 1, "cpu_percent": cpu,
            "rss_bytes": int(rss_mb * MB)}


def good_run():
    samples = [sample("baseline", 0.0, "server", 1.0, 60), sample("baseline", 0.0, "tts", 1.0, 40),
               sample("baseline", 0.0, "machine", 12.0, 2048),
               sample("single", 15.0, "server", 80.0, 100), sample("single", 15.0, "tts", 30.0, 50),
               sample("concurrent", 55.0, "server", 150.0, 200), sample("concurrent", 55.0, "tts", 20.0, 60),
               sample("concurrent", 65.0, "server", 40.0, 120), sample("concurrent", 65.0, "tts", 110.0, 90),
               sample("concurrent", 65.0, "machine", 199.0, 3000)]
    videos = [{"job_id": job_id, "stage": "x", "path": f"videos/{job_id}.mp4", "size_bytes": 123456,
               "sha256": "ab" * 32, "second_sha256": "ab" * 32, "hash_stable": True, "opens": True,
               "video_codec": "h264", "audio_codec": "aac", "width": 1280, "height": 720, "fps": 24.0,
               "frames_decoded": 240, "decode_errors": 0, "video_seconds": seconds, "audio_seconds": seconds,
               "reported_seconds": 10.0, "max_mean_luma": 120.0, "audio_rms_dbfs": -20.0, "ok": True, "problems": ""}
              for job_id, seconds in DECODED.items()]
    latency = [{"endpoint": "health", "i": i, "t": float(i), "ms": float(ms), "status_code": 200, "ok": True}
               for i, ms in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 200])]
    latency += [{"endpoint": "status", "i": i, "t": float(i), "ms": None, "ok": False, "error_kind": "timeout",
                 "error": "no answer within 15 s"} for i in range(3)]
    batches = [{"stage": "single", "level": None, "batch": 0, "jobs": 1, "wall_seconds": 10.0},
               {"stage": "concurrent", "level": 1, "batch": 0, "jobs": 1, "wall_seconds": 10.0},
               {"stage": "concurrent", "level": 3, "batch": 0, "jobs": 3, "wall_seconds": 50.0}]
    stages = [{"stage": s, "started_at": 0.0, "finished_at": 1.0, "outcome": "completed"}
              for s in ("verification", "baseline", "single", "concurrent", "latency")]
    stages.append({"stage": "sequential", "started_at": 0.0, "finished_at": 2.0, "outcome": "failed",
                   "detail": "RuntimeError: the tts stopped answering"})
    frames = {
        "services": frame("services", [{"service": s, "url": f"http://x/{s}", "ok": True} for s in SERVICES]),
        "samples": frame("samples", samples), "jobs": frame("jobs", JOBS), "batches": frame("batches", batches),
        "videos": frame("videos", videos), "latency": frame("latency", latency), "stages": frame("stages", stages),
        "incidents": frame("incidents", [  # recorded in the order the re-probes found them, not earliest first
            {"service": "server", "t": 3740.0, "since": 3730.0, "detail": "reports 'degraded' (tts_service: down)"},
            {"service": "tts", "t": 3740.0, "since": 3725.0, "exit_code": -9, "detail": "connection refused",
             "log_tail": "INFO tts ready\nKilled ``` mid-line"},
        ]),
    }
    checks = [
        {"suite": "job_results", "expectation": "expect_column_values_to_be_in_set", "column": "succeeded",
         "success": False, "observed": "1 of 8 unexpected", "expected": "≥ 95% of rows true", "details": "jobs table"},
        {"suite": "video_integrity", "expectation": "expect_column_values_to_be_in_set", "column": "ok",
         "success": True, "observed": "0 of 7 unexpected", "expected": "every video passed", "details": "videos"},
    ]
    return frames, manifest(), checks


@pytest.fixture(scope="module")
def good_metrics():
    return compute_metrics(*good_run())


@pytest.fixture(scope="module")
def good_reports(good_metrics):
    return render_reports(good_metrics)


def test_a_good_run_renders_every_report_with_its_header(good_reports):
    assert set(good_reports) == REPORT_NAMES == set(REPORTS)
    for name, text in good_reports.items():
        assert text.startswith("# "), name
        for line in ("**Run:** 20250101T000000-local", "**Profile:** local", "http://127.0.0.1:4000", "(123.50 s)",
                     "**Machine:** bench", "2 CPU cores", "llm model extractive-planner",
                     "**Verdict:** 1 of 2 checks FAILED: success rate 87.5 % (7 of 8 jobs with a verified video, "
                     "95 % CI 52.9–97.8 %) "
                     "< 95 %"):
            assert line in text, (name, line)
        assert not NOT_A_FIGURE.search(text), (name, NOT_A_FIGURE.search(text))


def test_concurrency_counts_verified_videos_only(good_reports):
    text = good_reports["integration_performance_report.md"]
    # level 3: 2 verified of 3; job seconds of the 2 successes 10, 20; 2 videos in 50 s; 8 + 12 s decoded / 50 s
    assert ("| 3 | 3 | 2 | 66.7 | — | 2 succeeded, 1 failed | 2 | 10.00 | 15.00 | — | — | 20.00 | — | 50.00 | 2.40 "
            "| 0.40 |") in text
    assert "A success is a job whose video was downloaded and passed every integrity check" in text
    assert "p95 is shown from n ≥ 20 values" in text


def test_latency_reports_answers_only_and_says_when_an_endpoint_did_not_answer(good_reports):
    text = good_reports["integration_performance_report.md"]
    assert "| health | 20 | 20 | 1.0 | 10.5 | 28.1 | — | 200.0 |" in text
    assert "- status did not answer: 0 of 3 probes answered as expected (3 timeout)." in text
    assert "| status | 3 | 0 | — | — | — | — | — | — | 3 | 3 timeout |" in text
    assert "p95 health 28.1 ms ≤ 100 ms (n=20)" in text


def test_paper_sentences_use_verified_successes_and_decoded_video(good_reports):
    paper = good_reports["integration_performance_report.md"].split("## For a paper", 1)[1]
    assert "A single video generation request delivered a verified video in 10.00 seconds (1 request)." in paper
    assert "With 3 concurrent jobs, 2 of 3 (66.7 %) jobs delivered a verified video" in paper
    assert ("throughput of 6.00 verified videos per minute at 1 concurrent job (1.00 seconds of decoded video per "
            "wall second, from 1 video)") in paper
    assert "status did not answer" in paper
    # the deployment: 200+60 at t=55 and 120+90 at t=65 → RSS peak 260; CPU 170 and 150 → peak 170 % of one core
    assert "peaked at 260.0 MB resident memory and its CPU peaked at 170.0 % of one core (the machine has 2 cores)" \
        in paper


def test_reliability_report_shows_failures_incidents_stages_and_thresholds(good_reports):
    text = good_reports["integration_reliability_report.md"]
    assert f"| conc-3c | concurrent | 3 | failed | completed | {NO_VIDEO} |" in text
    # one wording (analysis.incidents), earliest first; the dead process's log tail fenced below it
    assert ("What went wrong with the services, earliest first:\n\n"
            "- tts stopped answering at 01:02:05 UTC (exit -9); its log's last lines:\n\n"
            "  ````\n  INFO tts ready\n  Killed ``` mid-line\n  ````\n"
            "- server failing since 01:02:10 UTC: reports 'degraded' (tts_service: down)") in text
    assert "server stopped answering" not in text
    assert "Stage **sequential** failed: RuntimeError: the tts stopped answering." in text
    assert "- NOT met: success rate 87.5 % (7 of 8 jobs with a verified video, 95 % CI 52.9–97.8 %) < 95 %" in text
    assert ("Downloaded videos that passed every check: 7 of 7 (100.0 %, 95 % CI 64.6–100.0 %); 1 job ended without "
            "a downloaded video (see Failures).") in text


def test_resources_report_states_the_cpu_scale_and_per_job_memory(good_reports):
    text = good_reports["integration_resources_report.md"]
    assert "CPU is in % of one core (100 = one core busy; the machine has 2 cores, so at most 200 %)." in text
    assert "| deployment | 3 | 143.3 | 170.0 | 206.7 | 260.0 |" in text
    # idle 100 MB; level 3 jobs in flight at 55 (3 jobs: 260−100 / 3) and 65 (2 jobs: 210−100 / 2)
    assert "| concurrent | 3 | 2 | 100.0 | 260.0 | 54.2 | 55.0 | — | 18.62 |" in text


def test_an_interrupted_run_shows_its_jobs_in_flight():
    frames, _, _ = good_run()
    trace = [{"job_id": "single-2", "stage": "single", "t": 1.0 + i, "status": "processing"} for i in range(5)]
    frames = {**frames, "jobs": frame("jobs", [job("single-2", "single", 0.0, 0.0, outcome="running",
                                                   observations=2213)]),
              "status_trace": frame("status_trace", trace), "stages": frame("stages", [])}
    metrics = compute_metrics(frames, manifest(finished_at=None, outcome="running"), [])
    reports = render_reports(metrics)
    single = reports["test_single_request.md"]
    assert "No single request was run" not in single
    assert "The single request was **interrupted**: the status last seen was `processing` after 2213 status " \
           "observations." in single
    assert "| single-2 | one_page.md | interrupted | processing (last seen) |" in single
    assert "**finished:** never: the run was interrupted before its end" in single
    assert "**Verdict:** INTERRUPTED: the run stopped before its end with 1 job in flight" in single
    for name, text in reports.items():
        assert "> **Interrupted run.**" in text, name
        assert not NOT_A_FIGURE.search(text), (name, NOT_A_FIGURE.search(text))
    summary = console_summary(metrics, "/runs/x")
    assert "single request:   interrupted (last seen processing)" in summary
    assert "verdict: INTERRUPTED" in summary


@pytest.mark.parametrize("wall", [[{"stage": "concurrent", "level": 4, "batch": 0, "jobs": 4, "wall_seconds": 9.0}],
                                  []], ids=["SIGINT", "kill -9"])
def test_a_level_cut_off_by_the_stop_has_no_verified_figure(wall):
    jobs = [job("c2a", "concurrent", 0.0, 5.0, level=2), job("c2b", "concurrent", 0.0, 0.0, "running", level=2, slot=1),
            job("c4a", "concurrent", 9.0, 0.0, "running", level=4)]
    batches = [{"stage": "concurrent", "level": 2, "batch": 0, "jobs": 2, "wall_seconds": 6.0}, *wall]
    metrics = compute_metrics({"jobs": frame("jobs", jobs), "batches": frame("batches", batches)},
                              manifest(finished_at=None, outcome="interrupted"), [])
    summary = console_summary(metrics, "/runs/x")
    assert "concurrency 2:    1 of 1 (100.0 %) verified (1 interrupted, not counted); job time median 5.00 s" in summary
    assert "concurrency 4:    no verified figure: 1 job interrupted\n" in summary
    assert "0 of 0" not in summary
    text = render_reports(metrics)["integration_performance_report.md"]
    # jobs/min and video s per wall s: "—" for level 4 whether or not the stop left a wall time
    row = r"^\| 4 \| 1 \| 0 \| — \| — \| 1 interrupted \| 0 \|( — \|){6} [—0-9.]+ \| — \| — \|$"
    assert re.search(row, text, re.M), text
    assert "With 4 concurrent jobs, no success rate can be given: 1 job interrupted by the run's stop." in text
    assert "0 of 0" not in text


def test_when_no_video_was_downloaded_the_reports_say_so_rather_than_0_of_n():
    jobs = [job(f"j{i}", "concurrent", 0.0, 5.0, "failed", level=7, slot=i, failure=NO_VIDEO) for i in range(7)]
    metrics = compute_metrics({"jobs": frame("jobs", jobs)}, manifest(), [
        {"suite": "video_integrity", "expectation": "expect_table_row_count_to_be_between", "column": None,
         "success": False, "observed": "0", "expected": "at least 1 video"}])
    reports = render_reports(metrics)
    everything = "\n".join(reports.values())
    assert "videos passed" not in everything and "0 of 0 (" not in everything
    assert ("- No video was downloaded (7 jobs ended without one), so none could be checked for integrity."
            in reports["integration_reliability_report.md"] + reports["integration_performance_report.md"])
    assert "No video was downloaded (7 jobs ended without one), so none could be checked (see Failures)." \
        in reports["test_video_integrity.md"]
    assert "NOT met: no video was downloaded (7 jobs ended without one), so none could be checked" \
        in reports["integration_reliability_report.md"]
    # the GX row count says what the threshold says: stated once
    words = metrics.failures_in_words()
    assert "no video was downloaded (7 jobs ended without one), so none could be checked" in words
    assert not [line for line in words if line.startswith("video_integrity")]


def test_a_run_stopped_at_verification_publishes_no_performance_report():
    frames = {"services": frame("services", [{"service": "llm", "url": "http://127.0.0.1:1", "ok": False,
                                              "detail": "connection refused", "fix": "start the LLM"}])}
    for run_manifest in (manifest(services={}, outcome="stopped"), {}):
        metrics = compute_metrics(frames, run_manifest, [])
        reports = render_reports(metrics)
        assert set(reports) == REPORT_NAMES
        for name, text in reports.items():
            assert not NOT_A_FIGURE.search(text), (name, NOT_A_FIGURE.search(text))
            assert "not validated" in text or "INTERRUPTED" in text
            assert "llm `http://127.0.0.1:1` (version —, verification FAILED)" in text
        assert "No concurrent run was recorded" in reports["test_concurrent_runs.md"]
        assert "No single request was run, so no response time" in reports["integration_performance_report.md"]
        assert "0 of 1 services answered" in reports["test_service_verification.md"]
        assert all(not rows for rows in main_tables(metrics).values())
    published = {name for name, report in REPORTS.items() if measured(metrics, report)}
    assert published == {"integration_reliability_report.md", "test_service_verification.md"}
    assert "open first: /runs/x/reports/integration_reliability_report.md" in console_summary(metrics, "/runs/x")


def test_an_interrupted_run_publishes_keyless_artifacts(good_metrics):
    assert published_key("integration_performance_report.md", good_metrics) == "local-integration-performance-report"
    interrupted = good_metrics.model_copy(update={"interrupted": True})
    assert published_key("integration_performance_report.md", interrupted) is None
    assert published_key("concurrency-summary", interrupted) is None


def test_the_summary_of_a_run_stopped_at_verification_names_each_failing_service_once():
    llm = "model qwen3:4b is not listed"
    frames = {
        "services": frame("services", [{"service": "llm", "url": "http://127.0.0.1:1", "ok": False, "detail": llm,
                                        "fix": "ollama pull qwen3:4b"},
                                       {"service": "redis", "url": "redis://127.0.0.1:2/0", "ok": True}]),
        "stages": frame("stages", [
            {"stage": "verification", "started_at": 0.0, "finished_at": 1.0, "outcome": "failed",
             "detail": f"1 of 2 services failed verification:\n  llm: {llm} — ollama pull qwen3:4b"},
            *({"stage": stage, "outcome": "skipped", "detail": "service verification failed"}
              for stage in ("baseline", "single", "concurrent", "latency", "sequential")),
        ]),
    }
    metrics = compute_metrics(frames, manifest(services={}, outcome="stopped"), [])
    summary = console_summary(metrics, "/runs/x")
    assert f"verdict: not validated: no expectation results (run stopped); service verification FAILED for llm " \
           f"({llm})\n" in summary
    assert summary.count(llm) == 1
    assert "failed:" not in summary and "success rate" not in summary  # no threshold was reached, none failed
    assert metrics.failures_in_words() == []
    assert "Thresholds, against what was measured before the run stopped (not validated):" in \
        render_reports(metrics)["integration_reliability_report.md"]


def test_artifact_keys_carry_the_profile():
    assert artifact_key("integration_performance_report.md", "smoke") == "smoke-integration-performance-report"
    assert artifact_key("api-latency-summary", "profiles/My Campaign.toml") == "my-campaign-api-latency-summary"
    assert artifact_key("campaign-progress", None) == "unnamed-campaign-progress"


def test_console_summary_has_headline_figures_and_failed_thresholds(good_metrics):
    summary = console_summary(good_metrics, "/runs/x")
    assert "single request:   10.00 s, verified video" in summary
    assert "concurrency 3:    2 of 3 (66.7 %) verified; job time median 15.00 s (min 10.00, max 20.00, n=2)" \
        in summary
    assert "API health: p95 28.1 ms (95 % CI" in summary
    assert "API status: did not answer (3 probes: 3 timeout)" in summary
    assert "failed:\n  success rate 87.5 % (7 of 8 jobs with a verified video, 95 % CI 52.9–97.8 %) < 95 %" in summary
    assert "stage sequential failed: RuntimeError: the tts stopped answering" in summary
    assert ("what went wrong:\n  tts stopped answering at 01:02:05 UTC (exit -9)\n"
            "  server failing since 01:02:10 UTC: reports 'degraded' (tts_service: down)\n") in summary
    assert "INFO tts ready" not in summary  # the log tail is for the report, never the console
    assert summary.endswith("open first: /runs/x/reports/integration_performance_report.md")


def test_fmt_one_format_per_unit():
    assert [fmt(1.234, "s"), fmt(1.26, "ms"), fmt(0.6666, "rate"), fmt(50.04, "pct"), fmt(1.25, "mb")] == \
        ["1.23", "1.3", "66.7", "50.0", "1.2"]
    assert {fmt(None, "s"), fmt(float("nan"), "ms"), fmt("", "text"), fmt(None)} == {"—"}
    assert fmt(True) == "yes" and fmt(3, "int") == "3" and fmt("f" * 64, "hash") == "f" * 12


def test_html_is_a_complete_page_with_tables_and_no_raw_markup(good_reports):
    page = to_html(good_reports["integration_performance_report.md"] + "\n<script>x</script>\n", "Perf & co")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<title>Perf &amp; co</title>" in page and "<style>" in page
    assert "<table>" in page and "<td>health</td>" in page
    assert "<script>" not in page


def test_main_tables_for_prefect_artifacts(good_metrics):
    tables = main_tables(good_metrics)
    assert set(tables) == {"concurrency-summary", "api-latency-summary", "video-integrity", "resource-usage",
                           "per-job-memory", "contract-conformance", "fault-recovery", "rounds", "round-trends"}
    assert tables["rounds"] == tables["round-trends"] == []  # one round: nothing per round (published only with rows)
    level3 = tables["concurrency-summary"][1]
    assert level3["level"] == 3 and level3["success %"] == 66.7 and level3["median s"] == 15.0
    assert level3["p95 s"] is None
    assert tables["api-latency-summary"][0]["p95 ms"] == 28.1
    assert tables["video-integrity"][0]["sha256"] == "ab" * 6
    assert [row["service"] for row in tables["resource-usage"]] == ["server", "tts", "deployment"]
    json.dumps(tables, allow_nan=False)


def test_probes_answered_wrongly_are_not_counted_as_unanswered():
    latency = [{"endpoint": "status", "i": i, "ms": 2.0, "status_code": 500, "ok": False, "error_kind": "wrong_status"}
               for i in range(5)]
    latency += [{"endpoint": "health", "i": i, "ms": 1.0 + i, "status_code": 200, "ok": True} for i in range(20)]
    latency += [{"endpoint": "health", "i": 20, "ms": None, "ok": False, "error_kind": "timeout"},
                {"endpoint": "health", "i": 21, "ms": 3.0, "status_code": 503, "ok": False,
                 "error_kind": "wrong_status"}]
    metrics = compute_metrics({"latency": frame("latency", latency)}, manifest(), [])
    summary = console_summary(metrics, "/runs/x")
    assert "API status: gave no expected answer (5 probes: 5 wrong_status)" in summary
    assert ", 2 of 22 probes without the expected answer (1 timeout, 1 wrong_status)" in summary
    assert "unanswered" not in summary and "did not answer" not in summary
    text = render_reports(metrics)["test_api_latency.md"]
    assert "- status gave no expected answer: 0 of 5 probes answered as expected (5 wrong_status)." in text
    assert "2 without the expected answer (1 timeout, 1 wrong_status)." in text
    assert "status: gave no expected answer (5 probes: 5 wrong_status); no figure to compare with ≤ 100 ms" in text


def test_small_wording_an_instant_an_interrupted_stage_no_service_checked():
    samples = [sample("baseline", 0.0, "server", 1.0, 100), sample("concurrent", 5.0, "server", 50.0, 102.1)]
    stages = [{"stage": "single", "started_at": 0.0, "finished_at": 1.0, "outcome": "completed"},
              {"stage": "concurrent", "started_at": 1.0, "finished_at": 2.0, "outcome": "interrupted"},
              {"stage": "latency", "started_at": 2.0, "outcome": "running"}]
    frames = {"samples": frame("samples", samples), "stages": frame("stages", stages),
              "jobs": frame("jobs", [job("c1", "concurrent", 0.0, 10.0, level=1)])}
    reports = render_reports(compute_metrics(frames, manifest(), []))
    paper = reports["integration_performance_report.md"]
    assert "(median 2.1 MB over 1 instant)" in paper
    assert "Stage **concurrent** was interrupted by the run's stop." in paper
    assert "Stage **latency** was interrupted by the run's stop (no end recorded: the process ended while it ran)." \
        in paper
    assert "no detail was recorded" not in paper
    assert "0 of 0 services" not in reports["test_service_verification.md"]
    assert "No service was checked." in reports["test_service_verification.md"]


# ---- issue 9, 11 and 12 sections: contract conformance, missing fields, cache hits, faults, notes, environment ----

def _rule(rule, observations, violations, example=None, source="observed"):
    return ConformanceRule(rule=rule, source=source, observations=observations, violations=violations,
                           example=example)


def test_contract_conformance_says_not_checked_never_passed(good_metrics):
    metrics = good_metrics.model_copy(update={"conformance": [
        _rule("progress never decreases", 40, 0),
        _rule("created_at stays as the 202 answer gave it", 12, 3, "job conc-3a: created_at rewritten"),
        _rule("cancelling a finished job answers 409", 0, 0, "no job finished before the probes", "probe"),
    ]})
    reports = render_reports(metrics)
    report = reports["contract_conformance_report.md"]
    assert "1 of 2 checked contract rules hold; 1 rule not checked (no observation)." in report
    assert "| progress never decreases | observed | 40 | 0 | holds | — |" in report
    assert "| created_at stays as the 202 answer gave it | observed | 12 | 3 | VIOLATED | job conc-3a: " in report
    assert "| cancelling a finished job answers 409 | probe | 0 | 0 | not checked | no job finished" in report
    for main in ("integration_performance_report.md", "integration_reliability_report.md"):
        assert "## Contract conformance\n\n1 of 2 checked contract rules hold" in reports[main]
        assert ("- VIOLATED (3 of 12): created_at stays as the 202 answer gave it; e.g. job conc-3a: created_at "
                "rewritten") in reports[main]
    assert "  contract:         1 of 2 checked contract rules hold; 1 rule not checked (no observation).\n" in \
        console_summary(metrics, "/runs/x")
    assert main_tables(metrics)["contract-conformance"][2] == {
        "rule": "cancelling a finished job answers 409", "source": "probe", "observations": 0, "violations": 0,
        "result": "not checked", "example": "no job finished before the probes"}
    assert measured(metrics, REPORTS["contract_conformance_report.md"])
    unchecked = good_metrics.model_copy(update={"conformance": [_rule("cancelling a finished job answers 409", 0, 0)]})
    assert not measured(unchecked, REPORTS["contract_conformance_report.md"])
    assert "No contract rule could be checked (0 observations of each of the 1 rules)." in \
        render_reports(unchecked)["contract_conformance_report.md"]


def test_fields_the_server_never_reports_are_named_instead_of_dashed():
    bare = {"script_s": None, "audio_s": None, "visual_s": None, "compose_s": None, "processing_seconds": None}
    frames = {"jobs": frame("jobs", [job("s1", "single", 0.0, 10.0, **bare)])}
    phases = "the server reports no phases: time per phase not measured"
    processing = "the server reports no processing time: only the time seen from outside is measured"
    metrics = compute_metrics(frames, manifest(), []).model_copy(
        update={"unreported": {"phase": phases, "processing_time_seconds": processing,
                               "script_scenes": "the server reports no scene count"}})
    text = render_reports(metrics)["test_single_request.md"]
    # the job's row: queued measured; phases and server s "not reported"; scenes were reported, so no claim
    assert "| s1 | one_page.md | succeeded | completed | 10.00 | 0.50 | not reported | not reported | not reported " \
           "| not reported | not reported | 10.00 | — | 3 | — |" in text
    assert ("The server reports no phases: time per phase not measured. The server reports no processing time: only "
            "the time seen from outside is measured.") in text
    assert "scene count" not in text
    # when phases are reported, an unseen phase is explained, not blamed on the server
    seen = compute_metrics({"jobs": frame("jobs", [job("s1", "single", 0.0, 10.0, script_s=None)])}, manifest(), [])
    assert "An empty phase cell (—): no status poll saw the job in that phase" in \
        render_reports(seen)["test_single_request.md"]


def test_identical_videos_are_flagged_as_a_possible_cache_hit(good_metrics):
    metrics = good_metrics.model_copy(update={"identical_videos": [["conc-3a", "conc-3b", "seq-1"]]})
    text = render_reports(metrics)["test_video_integrity.md"]
    assert "Jobs conc-3a, conc-3b and seq-1 produced byte-identical videos (the same SHA-256): a server-side cache " \
           "hit?" in text
    distinct = good_metrics.model_copy(update={"identical_videos": []})
    assert "byte-identical" not in render_reports(distinct)["test_video_integrity.md"]


def _fault(service, fault, **changes):
    return FaultResult(**{"service": service, "fault": fault, "recovered": True, "recovery_s": 2.1,
                          "first_success_s": 9.8, "jobs_failed_during": 1, "jobs_stuck": 0,
                          "health_during": "degraded (tts_service: down)", "job_error_during": "TTS unreachable",
                          "named_dependency": True, "hung": False, "detail": None, **changes})


def test_error_handling_and_recovery_table_and_paper_sentences(good_metrics):
    faults = [_fault("tts", "killed"),
              _fault("llm", "frozen", injected_by="launcher", recovered=False, recovery_s=None, first_success_s=None,
                     jobs_stuck=2, named_dependency=False, hung=True, health_during=None),
              _fault("redis", "restarted_with_jobs", state="not_run", recovered=None, recovery_s=None,
                     first_success_s=None, jobs_failed_during=0, health_during=None, job_error_during=None,
                     named_dependency=None, detail="no redis restart action in the profile")]
    reports = render_reports(good_metrics.model_copy(update={"faults": faults}))
    text = reports["test_error_recovery.md"]
    assert "The deployment recovered from 1 of 2 measured faults; 1 experiment could not be run." in text
    assert "| tts | killed | yes | 2.10 | 9.80 | 1 | 0 | 0 | no | degraded (tts_service: down) | yes |\n" in text
    sentence = ("After tts was killed and restarted, the server reported healthy again after 2.10 s and the first new "
                "job succeeded after 9.80 s.")
    assert (f"- {sentence} While the fault lasted, health said 'degraded (tts_service: down)' and 1 job failed and "
            "the job error named tts; no job was left stuck. A job's error under the fault: “TTS unreachable”.") in text
    assert ("- After llm was frozen (SIGSTOP) and resumed, the deployment did not recover: the server never reported "
            "healthy again and no new job succeeded. While the fault lasted, health said nothing and 1 job failed and "
            "the job error did not name llm; a job under the fault hung (no terminal status within its bound); 2 jobs "
            "stayed stuck after recovery.") in text
    assert ("The experiment where redis was restarted with jobs in flight could not be run: no redis restart action "
            "in the profile.") in text
    with_faults = good_metrics.model_copy(update={"faults": faults})
    assert main_tables(with_faults)["fault-recovery"][0]["healthy again s"] == 2.1
    summary = console_summary(with_faults, "/runs/x")
    assert "  faults:           The deployment recovered from 1 of 2 measured faults; 1 experiment could not be run." \
        in summary
    assert "## Error handling and recovery" in reports["integration_reliability_report.md"]
    server = render_reports(good_metrics.model_copy(update={"faults": [
        _fault("server", "killed_with_jobs", jobs_failed_during=0, named_dependency=None)]}))["test_error_recovery.md"]
    assert "After the server was killed with jobs in flight and restarted, the server reported healthy" in server
    assert "health said 'degraded (tts_service: down)' and no job failed; no job was left stuck." in server
    assert f"- {sentence}\n" in reports["integration_performance_report.md"].split("## For a paper", 1)[1]
    skipped = render_reports(good_metrics.model_copy(update={"faults_skipped": "the target names no fault actions"}))
    assert "No fault was injected: the target names no fault actions." in skipped["test_error_recovery.md"]
    assert "- No fault was injected, so no recovery figure can be given: the target names no fault actions." in \
        skipped["integration_performance_report.md"]


def test_jobs_stuck_pending_are_named_beside_the_rate():
    stuck = "never started (stuck pending 30 s)"
    jobs = [job("c1", "concurrent", 0.0, 5.0, level=2), job("c2", "concurrent", 0.0, 30.0, "stuck_pending", level=2,
                                                             slot=1, failure=stuck)]
    metrics = compute_metrics({"jobs": frame("jobs", jobs)}, manifest(), [])
    text = render_reports(metrics)["integration_performance_report.md"]
    assert "| 1 succeeded, 1 never started (stuck pending) |" in text
    assert ("With 2 concurrent jobs, 1 of 2 (50.0 %) jobs delivered a verified video; job time median 5.00 s (min "
            "5.00, max 5.00, n=1); 1 never started (stuck pending).") in text
    assert "concurrency 2:    1 of 2 (50.0 %) verified; 1 never started (stuck pending); job time" in \
        console_summary(metrics, "/runs/x")


def test_levels_above_the_bundled_stacks_limit_are_said_to_measure_queueing(good_metrics):
    bundled = manifest(profile={**manifest()["profile"], "target": {"bundled_stack": True, "max_concurrent_jobs": 2}})
    text = render_reports(compute_metrics(*good_run()[:1], bundled, []))["test_concurrent_runs.md"]
    assert ("The bundled stack runs at most 2 jobs at once (profile `target.max_concurrent_jobs`): levels above 2 (3) "
            "measure queueing") in text
    external = manifest(profile={**manifest()["profile"], "target": {"bundled_stack": False, "max_concurrent_jobs": 2}})
    assert "queueing" not in render_reports(compute_metrics(*good_run()[:1], external, []))["test_concurrent_runs.md"]
    assert "queueing" not in render_reports(good_metrics)["test_concurrent_runs.md"]  # no target in the profile
    # why a percentile cell is empty
    assert "An empty p95, p99 or 95 % CI cell means too few values for that statistic (p95 from n ≥ 20" in text


def test_every_header_carries_the_environment():
    machine = {**manifest()["machine"], "cpu_model": "AMD EPYC 7B13", "cpu_physical_cores": 1,
               "os": "Debian GNU/Linux 12 (bookworm)", "kernel": "Linux 6.1.0", "architecture": "x86_64",
               "python_implementation": "CPython"}
    environment = {"packages": {"prefect": "3.8.8", "polars": "1.20.0", "httpx": None}, "pyav_ffmpeg": "7.1",
                   "espeak_ng": {"version": "1.51", "source": "/usr/bin/espeak-ng"}, "stack_ffmpeg": "n7.1",
                   "project": {"version": "0.1.0", "commit": "0123456789abcdef" * 2 + "01234567", "dirty": True},
                   "profile_sha256": "fe" * 32}
    services = {**manifest()["services"], "llm_digest": "sha256:" + "ab" * 32}
    metrics = compute_metrics({}, manifest(machine=machine, environment=environment, services=services), [])
    for name, text in render_reports(metrics).items():
        assert ("- **Machine:** bench: AMD EPYC 7B13, 2 CPU cores (1 physical), 8192.0 MB memory; Debian GNU/Linux 12 "
                "(bookworm), Linux 6.1.0, x86_64; Python 3.11.9 (CPython)") in text, name
        assert ("- **Software:** prefect 3.8.8, polars 1.20.0, httpx not installed, PyAV's FFmpeg 7.1, the bundled "
                "tts's eSpeak NG 1.51 (/usr/bin/espeak-ng), the bundled server's ffmpeg n7.1 (the server itself is "
                "this project's stack/: see Project), Redis 1.0, LLM model extractive-planner (digest sha256:ababa)") \
            in text, name
        # the server's and tts's health answers name them, they give no version
        assert "server `http://127.0.0.1:4000` (version not reported, health names it 1.0, " in text, name
        assert ("- **Project:** t2v-bench 0.1.0 at commit 0123456789ab (with uncommitted changes); profile sha256 "
                "fefefefefefe") in text, name
    older = render_reports(compute_metrics({}, manifest(), []))["test_api_latency.md"]
    assert "- **Software:** not recorded (the run was made by a version that did not record its environment)" in older


def test_the_project_line_reads_for_a_commit_a_dirty_tree_and_no_checkout():
    from analysis.metrics import Environment
    from artifacts.markdown import project_version

    commit = "0123456789abcdef" * 2 + "01234567"
    assert project_version(Environment(project_version="0.1.0", git_commit=commit, git_dirty=False)) == \
        "t2v-bench 0.1.0 at commit 0123456789ab"
    assert project_version(Environment(project_version="0.1.0", git_commit=commit, git_dirty=True)) == \
        "t2v-bench 0.1.0 at commit 0123456789ab (with uncommitted changes)"
    assert project_version(Environment(project_version="0.1.0")) == \
        "t2v-bench 0.1.0, not run from a git checkout (no commit recorded)"
    assert project_version(Environment()) == \
        "t2v-bench (version not recorded), not run from a git checkout (no commit recorded)"


def test_figures_are_linked_from_markdown_and_shown_in_html(good_metrics):
    drawn = [DrawnFigure(name="job_time_vs_concurrency", title="Job time vs concurrency",
                         png="figures/job_time_vs_concurrency.png", svg="figures/job_time_vs_concurrency.svg",
                         caption="End-to-end seconds per level (level 1 n=1, level 3 n=2)."),
             DrawnFigure(name="resources", title="CPU and memory per service", png="figures/resources.png",
                         svg="figures/resources.svg", caption="CPU and RSS per service.")]
    reports = render_reports(good_metrics, drawn)
    performance = reports["integration_performance_report.md"]
    item = ("- [Job time vs concurrency](figures/job_time_vs_concurrency.png) ([SVG](figures/job_time_vs_concurrency"
            ".svg)): End-to-end seconds per level (level 1 n=1, level 3 n=2).")
    assert item in performance and performance.endswith(item + "\n")
    assert "resources.png" not in performance and "figures/resources.png" in reports["integration_resources_report.md"]
    assert "## Figures" not in reports["test_service_verification.md"]
    page = to_html(performance, "Performance")
    assert '<img src="figures/job_time_vs_concurrency.png" alt="Job time vs concurrency" />' in page
    assert '<a href="figures/job_time_vs_concurrency.svg">SVG</a>' in page
    # Prefect serves no local file: its artifacts name each figure by its absolute path instead of a dead link
    artifact = render_reports(good_metrics, drawn, reports_dir=Path("/runs/x/reports"))
    folder = "/runs/x/reports/figures"
    assert (f"- Job time vs concurrency, on the machine that ran it: `{folder}/job_time_vs_concurrency.png` "
            f"(SVG: `{folder}/job_time_vs_concurrency.svg`): End-to-end seconds per level") in \
        artifact["integration_performance_report.md"]
    assert "](figures/" not in artifact["integration_performance_report.md"]


# ---- rounds ---------------------------------------------------------------------------------------

def test_one_round_shows_no_rounds_section_figure_or_console_line(good_metrics):
    reports = render_reports(good_metrics)
    assert not any("## Rounds" in text or "**Rounds:**" in text or "per round" in text for text in reports.values())
    assert "- **Stages:** verification completed, baseline completed, single completed" in \
        reports["integration_performance_report.md"]
    assert "| stage | outcome | seconds | detail |" in reports["integration_performance_report.md"]  # no round column
    summary = console_summary(good_metrics, "/runs/x")
    assert "rounds:" not in summary and "trend" not in summary


def test_the_rounds_section_shows_each_round_the_pooled_line_trends_and_downtime():
    from tests.rounds_run import rounds_metrics

    metrics = rounds_metrics()
    reports = render_reports(metrics)
    for name in ("integration_performance_report.md", "integration_reliability_report.md"):
        text = reports[name]
        rounds = text.split("## Rounds\n", 1)[1].split("\n## ", 1)[0]
        assert "The campaign ran 4 rounds" in rounds
        assert ("Pooled over 4 rounds, 7 of 8 (87.5 %, 95 % CI 52.9–97.8 %) jobs delivered a verified video; per round "
                "100.0 %, 100.0 %, 100.0 % and 50.0 % (n = 2, 2, 2 and 2).") in rounds
        assert "| round | seconds | jobs | verified successes | success % |" in rounds
        assert "| level 2 median s | health median ms | deployment RSS mean MB | downtime before s |" in rounds
        assert "| 4 | 80.00 | 2 | 1 | 50.0 | — | 0 | 14.00 (n=1) | 18.1 (95 % CI 17.8–18.3, n=5) | 170.2 | — |" \
            in rounds
        assert "- server RSS grew 5.1 MB per round, 95 % CI 4.9–5.2, p < 0.001 (n = 4 rounds)." in rounds
        assert "- No significant trend in the success rate (Cochran–Armitage trend test z = −1.43, p = 0.15;" in rounds
        assert "- tts was unreachable for 12.5 s before round 3; it answered again." in rounds
        assert "- **Rounds:** 4; every figure pools them" in text
        assert "- **Stages:** verification completed; concurrent completed in 4 rounds; latency completed in 4 rounds" \
            in text
        assert NOT_A_FIGURE.search(rounds) is None
    paper = reports["integration_performance_report.md"].split("## For a paper", 1)[1]
    assert "- Pooled over 4 rounds, 7 of 8" in paper and "- server RSS grew 5.1 MB per round" in paper
    resources = reports["integration_resources_report.md"].split("## Resources per round\n", 1)[1]
    assert "- server RSS grew 5.1 MB per round" in resources and "| round | service | samples (n) |" in resources
    assert "| 4 | server | 2 | 40.0 | 40.0 | 120.1 | 120.2 |" in resources


def test_the_console_gives_success_per_round_and_the_significant_trends():
    from tests.rounds_run import rounds_metrics

    summary = console_summary(rounds_metrics(), "/runs/x")
    assert "  rounds:           4, the figures above pool them; verified per round: 100.0 %, 100.0 %, 100.0 % and " \
           "50.0 % (n = 2, 2, 2 and 2)" in summary
    assert "  trend:            server RSS grew 5.1 MB per round, 95 % CI 4.9–5.2, p < 0.001 (n = 4 rounds)" in summary
    assert "tts RSS" not in summary  # not significant: only the significant trends are printed
    assert "  downtime:         tts was unreachable for 12.5 s before round 3; it answered again" in summary
    two = console_summary(rounds_metrics(2), "/runs/x")
    assert "  trends:           too few rounds for a trend (2; a trend needs at least 3)" in two


def test_a_failed_stage_of_a_round_is_named_with_its_round():
    import polars as pl

    from tests.rounds_run import rounds_frames, rounds_manifest

    frames = rounds_frames()
    frames["stages"] = pl.concat([frames["stages"], frame("stages", [
        {"stage": "latency", "round": 4, "started_at": 4060.0, "finished_at": 4070.0, "outcome": "failed",
         "detail": "RuntimeError: boom"}])])
    text = render_reports(compute_metrics(frames, rounds_manifest(), []))["integration_performance_report.md"]
    assert "latency completed in rounds 1, 2 and 3 and failed in round 4" in text
    assert "Stage **latency** in round 4 failed: RuntimeError: boom." in text
    assert "| round | stage | outcome | seconds | detail |" in text


def test_downtime_of_a_single_round_is_still_reported():
    metrics = compute_metrics({"downtime": frame("downtime", [
        {"round": 1, "started_at": 0.0, "ended_at": 30.0, "services": "redis", "recovered": True}])}, manifest(), [])
    text = render_reports(metrics)["integration_reliability_report.md"]
    assert "## Rounds\n\nThe campaign ran one round." in text
    assert "- redis was unreachable for 30.0 s before round 1; it answered again." in text
    assert "  downtime:         redis was unreachable for 30.0 s before round 1" in console_summary(metrics, "/x")


def test_a_resumed_campaign_says_so_and_counts_the_jobs_cut():
    from tests.rounds_run import rounds_frames, rounds_manifest

    frames = rounds_frames()
    frames["jobs"] = frame("jobs", [*frames["jobs"].to_dicts(), {
        "job_id": "cut", "stage": "concurrent", "round": 2, "attempt": 1, "level": 2, "batch": 0, "slot": 0,
        "outcome": "interrupted"}])
    manifest = {**rounds_manifest(), "attempts": [{"attempt": 1}, {"attempt": 2}]}
    metrics = compute_metrics(frames, manifest, [])
    assert metrics.rounds.attempts == 2 and metrics.rounds.per_round[1].interrupted_jobs == 1
    assert ("- **Resumed:** started 2 times (resumed once); 1 job in flight when it was cut is shown interrupted "
            "(not run again); the figures cover the whole campaign") in \
        render_reports(metrics)["integration_performance_report.md"]
    assert "Resumed" not in render_reports(compute_metrics(frames, rounds_manifest(), []))["test_api_latency.md"]


def test_many_rounds_are_said_as_a_range():
    from tests.rounds_run import rounds_metrics

    metrics = rounds_metrics(12)
    assert "per round from 50.0 % (round 4) to 100.0 % (n = 2 each, 12 rounds)." in \
        render_reports(metrics)["integration_performance_report.md"]
