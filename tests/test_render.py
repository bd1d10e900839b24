import json
import re

import pytest

from analysis.resources import MB
from analysis.schema import frame
from artifacts.render import REPORTS, fmt, main_tables, render_reports, to_html

REPORT_NAMES = {
    "integration_performance_report.md", "integration_reliability_report.md", "integration_resources_report.md",
    "test_service_verification.md", "test_baseline_resources.md", "test_single_request.md",
    "test_concurrent_runs.md", "test_api_latency.md", "test_sequential_reliability.md", "test_video_integrity.md",
}
NOT_A_FIGURE = re.compile(r"\b(None|nan|NaN)\b")
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


def job(job_id, stage, start, seconds, ok=True, level=None, batch=None, video=10.0, **extra):
    return {
        "job_id": job_id, "stage": stage, "level": level, "batch": batch, "document": "/docs/one_page.md",
        "submitted_at": start, "finished_at": start + seconds, "total_seconds": seconds,
        "status": "completed" if ok else "failed", "succeeded": ok, "processing_seconds": seconds - 0.5,
        "video_seconds": video if ok else None, "scenes": 3, "queued_s": 0.5, "script_s": 1.0, "audio_s": 2.0,
        "visual_s": 3.0, "compose_s": seconds - 6.5, "tracking_problems": "", "observations": 8,
        "error": None if ok else "TTS service down", **extra,
    }


JOBS = [
    job("single-1", "single", 10.0, 10.0),
    job("conc-1a", "concurrent", 30.0, 10.0, level=1, batch=0, video=10.0),
    job("conc-3a", "concurrent", 50.0, 10.0, level=3, batch=0, video=8.0),
    job("conc-3b", "concurrent", 50.0, 20.0, level=3, batch=0, video=12.0),
    job("conc-3c", "concurrent", 50.0, 40.0, ok=False, level=3, batch=0),
    job("seq-1", "sequential", 200.0, 10.0),
    job("seq-2", "sequential", 210.0, 10.0),
    job("seq-3", "sequential", 220.0, 10.0, tracking_problems="progress went back from 50 to 40"),
]


def sample(stage, t, cpu, rss_mb, service="total"):
    return {"stage": stage, "t": t, "service": service, "processes": 4, "cpu_percent": cpu,
            "rss_bytes": int(rss_mb * MB)}


def good_run():
    samples = [sample("baseline", 0.0, 2.0, 100), sample("baseline", 1.0, 2.0, 100),
               sample("baseline", 0.0, 1.0, 40, "server"), sample("baseline", 0.0, 12.0, 2048, "machine"),
               sample("single", 15.0, 80.0, 150), sample("concurrent", 35.0, 90.0, 160),
               sample("concurrent", 60.0, 150.0, 250), sample("concurrent", 85.0, 120.0, 220),
               sample("sequential", 205.0, 70.0, 140)]
    videos = [{"job_id": j["job_id"], "stage": j["stage"], "path": f"videos/{j['job_id']}.mp4", "size_bytes": 123456,
               "sha256": "ab" * 32, "second_sha256": "ab" * 32, "hash_stable": True, "opens": True,
               "video_codec": "h264", "audio_codec": "aac", "width": 1280, "height": 720, "fps": 24.0,
               "frames_decoded": 240, "decode_errors": 0, "video_seconds": 10.0, "audio_seconds": 10.0,
               "reported_seconds": 10.0, "max_mean_luma": 120.0, "audio_rms_dbfs": -20.0, "ok": True, "problems": ""}
              for j in JOBS if j["succeeded"]]
    videos[-1] |= {"ok": False, "problems": "audio is silent (-inf dBFS ≤ -60 dBFS)", "audio_rms_dbfs": float("-inf")}
    latency = [{"endpoint": "GET /health", "i": i, "ms": ms, "status_code": 200, "ok": True, "error": None}
               for i, ms in enumerate([1.0, 2.0, 3.0, 4.0, 100.0])]
    latency.append({"endpoint": "GET /api/v1/video/jobs", "i": 0, "ms": 5.0, "status_code": 500, "ok": False,
                    "error": "HTTP 500 | boom"})
    batch = {"jobs": 1, "batch": 0}
    frames = {
        "services": frame("services", [{"service": s, "url": f"http://x/{s}", "ok": True} for s in SERVICES]),
        "samples": frame("samples", samples),
        "status_trace": frame("status_trace", []),
        "jobs": frame("jobs", JOBS),
        "batches": frame("batches", [
            batch | {"stage": "single", "level": 1, "started_at": 10.0, "finished_at": 20.0, "wall_seconds": 10.0},
            batch | {"stage": "concurrent", "level": 1, "started_at": 30.0, "finished_at": 40.0, "wall_seconds": 10.0},
            batch | {"stage": "concurrent", "level": 3, "jobs": 3, "started_at": 50.0, "finished_at": 100.0,
                     "wall_seconds": 50.0},
        ]),
        "videos": frame("videos", videos),
        "latency": frame("latency", latency),
    }
    checks = [
        {"suite": "jobs", "expectation": "expect_column_values_to_be_in_set", "column": "status", "success": True,
         "observed": {"unexpected_count": 0}, "expected": ["completed"], "details": None},
        {"suite": "concurrency", "expectation": "expect_column_mean_to_be_between", "column": "succeeded",
         "success": False, "observed": 0.6666666, "expected": {"min_value": 0.95}, "details": {"level": 3}},
    ]
    return frames, manifest(), checks


@pytest.fixture(scope="module")
def good_reports():
    return render_reports(*good_run())


def test_a_good_run_renders_every_report_with_its_header(good_reports):
    assert set(good_reports) == REPORT_NAMES == set(REPORTS)
    for name, text in good_reports.items():
        assert text.startswith("# "), name
        for line in ("**Run:** 20250101T000000-local", "**Profile:** local", "http://127.0.0.1:4000", "(123.50 s)",
                     "**Machine:** bench", "llm model extractive-planner", "**Verdict:** 1 of 2 checks FAILED"):
            assert line in text, (name, line)
        assert not NOT_A_FIGURE.search(text), (name, NOT_A_FIGURE.search(text))


def test_performance_figures_are_the_hand_computed_ones(good_reports):
    text = good_reports["integration_performance_report.md"]
    # level 3: job seconds 10, 20, 40 → p50 20.00; 2 of 3 succeeded; 2 jobs in 50 s → 2.40/min; 20 s video / 50 s
    assert "| 3 | 3 | 2 | 66.7 | 20.00 | 38.00 | 39.60 | 50.00 | 2.40 | 0.40 |" in text
    # /health probes 1, 2, 3, 4, 100 ms → p50 3.0, p95 80.8; the failing endpoint counts its error
    assert "| GET /health | 5 | 1.0 | 3.0 | 80.8 | 96.2 | 100.0 | 0 |" in text
    assert "| GET /api/v1/video/jobs | 1 | 5.0 | 5.0 | 5.0 | 5.0 | 5.0 | 1 |" in text
    assert "Profile thresholds: success rate ≥ 95.0 %, p95 job time ≤ 180.00 s." in text
    # single request: end-to-end next to the server's processing time
    assert "| single-1 | one_page.md | completed | 10.00 | 0.50 | 1.00 | 2.00 | 3.00 | 3.50 | 9.50 | 10.00 | 3 |" \
        in text


def test_paper_sentences_carry_the_measured_figures(good_reports):
    paper = good_reports["integration_performance_report.md"].split("## For a paper", 1)[1]
    assert "average response time of 10.00 seconds for single video generation requests" in paper
    assert "100.0% success rate when processing 1 concurrent job (1 of 1)" in paper
    assert "66.7% success rate when processing 3 concurrent jobs (2 of 3)" in paper
    assert "throughput of 6.00 videos per minute at 1 concurrent job" in paper
    assert "p95 API latency of 80.8 ms for GET /health, 5.0 ms for GET /api/v1/video/jobs" in paper
    # peak total RSS within each job's window: 150, 160, 250, 250, 250, 140, 0 samples (x2) → mean 200
    assert "average memory footprint of 200.0 MB per video generation task" in paper
    assert "peak CPU utilization of 150.0%" in paper


def test_reliability_report(good_reports):
    text = good_reports["integration_reliability_report.md"]
    assert "3 of 3 jobs submitted one after another succeeded (success rate 100.0 %)." in text
    assert "| sequential | 3 | 2 | 66.7 | 24 |" in text
    assert "| seq-3 | sequential | completed | 8 | progress went back from 50 to 40 |" in text
    assert "6 of 7 downloaded videos passed every check." in text
    assert "| seq-3 | sequential | no | 240 | 0 | 10.00 | 10.00 | 10.00 | 1280x720 | 123456 | abababababab | yes " \
           "| audio is silent" in text
    assert "| conc-3c | concurrent | 3 | failed | TTS service down |" in text
    assert "| concurrency | expect_column_mean_to_be_between | succeeded | FAIL | 0.6667 |" in text
    assert "1 passed, 1 failed." in text


def test_resources_report(good_reports):
    text = good_reports["integration_resources_report.md"]
    assert "| server | 1 | 1.0 | 1.0 | 40.0 | 40.0 |" in text
    assert "| total | 2 | 2.0 | 2.0 | 100.0 | 100.0 |" in text
    # level 3 window 50..90: peak 250 MB − baseline 100 MB = 150 MB over 3 jobs = 50 MB → 20.48 per GiB
    assert "| 3 | 2 | 250.0 | 100.0 | 50.0 | 20.48 |" in text
    assert "Jobs per GiB = 1024 / that margin" in text
    assert "| baseline | 1 | 12.0 | 12.0 | 2048.0 | 2048.0 |" in text
    assert "8192.0 MB memory" in text


def test_an_empty_run_renders_every_report_saying_no_data():
    frames = {"services": frame("services", [{"service": "llm", "url": "http://127.0.0.1:1", "ok": False,
                                              "detail": "connection refused", "fix": "start the LLM"}])}
    stopped = "service verification failed for llm: no job was submitted"
    for run_manifest in (manifest(finished_at=None, services={}, outcome=stopped), {}):
        reports = render_reports(frames, run_manifest, [])
        assert set(reports) == REPORT_NAMES
        for name, text in reports.items():
            assert not NOT_A_FIGURE.search(text), (name, NOT_A_FIGURE.search(text))
            assert "not validated" in text
            assert "llm `http://127.0.0.1:1` (version —, verification FAILED)" in text
    assert "No concurrent run was recorded" in reports["test_concurrent_runs.md"]
    performance = reports["integration_performance_report.md"]
    assert "No single video generation request succeeded, so no average response time" in performance
    assert "0 of 1 services answered" in reports["test_service_verification.md"]
    assert f"not validated (no expectation results: {stopped})" in render_reports(
        frames, manifest(outcome=stopped), [])["test_video_integrity.md"]
    assert "No video was checked." in reports["test_video_integrity.md"]
    assert "Not validated" in reports["integration_reliability_report.md"]
    assert all(not table for table in main_tables(frames).values())


def test_fmt_one_format_per_unit():
    assert [fmt(1.234, "s"), fmt(1.26, "ms"), fmt(0.6666, "rate"), fmt(50.04, "pct"), fmt(1.25, "mb")] == \
        ["1.23", "1.3", "66.7", "50.0", "1.2"]
    assert {fmt(None, "s"), fmt(float("nan"), "ms"), fmt("", "text"), fmt(None)} == {"—"}
    assert fmt(True) == "yes" and fmt(3, "int") == "3" and fmt("f" * 64, "hash") == "f" * 12


def test_html_is_a_complete_page_with_tables_and_no_raw_markup(good_reports):
    page = to_html(good_reports["integration_performance_report.md"] + "\n<script>x</script>\n", "Perf & co")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<title>Perf &amp; co</title>" in page and "<style>" in page
    assert "<table>" in page and "<td>GET /health</td>" in page
    assert "<script>" not in page


def test_main_tables_for_prefect_artifacts():
    tables = main_tables(good_run()[0])
    assert set(tables) == {"concurrency-summary", "api-latency-summary", "video-integrity", "resource-usage"}
    assert all(re.fullmatch(r"[a-z0-9-]+", key) for key in tables)
    level3 = tables["concurrency-summary"][1]
    assert level3["level"] == 3 and level3["success %"] == 66.7 and level3["p50 s"] == 20.0
    assert tables["api-latency-summary"][0]["p95 ms"] == 80.8
    assert tables["video-integrity"][0]["sha256"] == "ab" * 6
    assert [row["service"] for row in tables["resource-usage"]] == ["total"]
    json.dumps(tables, allow_nan=False)
