"""The run's GX suites on small synthetic tables: each kind of bad row fails exactly its expectation."""

import json

import polars as pl
import pytest

from analysis.schema import frame
from analysis.stats import percentile
from expectations.suites import validate_run
from profiles.settings import Thresholds

ROWS = 20
GOOD_JOB = {"server_status": "completed", "outcome": "succeeded", "succeeded": True, "tracking_problems": None}
GOOD_VIDEO = {
    "ok": True, "opens": True, "hash_stable": True, "video_codec": "h264", "audio_codec": "aac", "width": 1280,
    "height": 720, "frames_decoded": 240, "decode_errors": 0, "video_seconds": 10.0, "audio_seconds": 10.02,
    "reported_seconds": 10.0, "max_mean_luma": 120.0, "audio_rms_dbfs": -18.0,
}
ENDPOINTS = ("health", "jobs")


def passed_all(outcomes: list[dict]) -> bool:
    return all(outcome["success"] for outcome in outcomes)


def jobs(*changed: dict):
    """ROWS good jobs (total 10..29 s), the first ones updated with `changed`."""
    rows = [{"job_id": f"job-{i}", **GOOD_JOB, "total_seconds": 10.0 + i} for i in range(ROWS)]
    return frame("jobs", [row | change for row, change in zip(rows, changed, strict=False)] + rows[len(changed):])


def videos(*changed: dict):
    rows = [{"job_id": f"job-{i}", **GOOD_VIDEO} for i in range(ROWS)]
    return frame("videos", [row | change for row, change in zip(rows, changed, strict=False)] + rows[len(changed):])


def latency(ms: float = 5.0):
    return frame("latency", [
        {"endpoint": endpoint, "i": i, "ms": ms + i, "status_code": 200, "ok": True}
        for endpoint in ENDPOINTS for i in range(ROWS)
    ])


def run(thresholds: Thresholds | None = None, **tables) -> list[dict]:
    frames = {"jobs": jobs(), "videos": videos(), "latency": latency()} | tables
    return validate_run(frames, thresholds or Thresholds())


def failed(outcomes: list[dict]) -> set[tuple[str, str | None]]:
    return {(outcome["suite"], outcome["column"]) for outcome in outcomes if not outcome["success"]}


def outcome_for(outcomes: list[dict], suite: str, column: str | None) -> dict:
    (found,) = [o for o in outcomes if o["suite"] == suite and o["column"] == column]
    return found


def test_a_good_run_passes_every_expectation():
    outcomes = run()
    assert passed_all(outcomes), failed(outcomes)
    assert json.loads(json.dumps(outcomes)) == outcomes  # stored as JSON in the run folder
    assert {o["suite"] for o in outcomes} == {"video_integrity", "job_results", "time_thresholds"}
    time_columns = {o["column"] for o in outcomes if o["suite"] == "time_thresholds"}
    assert time_columns == {None, "total_seconds", "health_ms", "jobs_ms"}
    keys = {"suite", "expectation", "column", "success", "observed", "expected", "details"}
    assert all(set(o) == keys for o in outcomes)
    rate = outcome_for(outcomes, "job_results", "succeeded")
    assert rate["expectation"] == "expect_column_values_to_be_in_set"
    assert rate["expected"] == "≥ 95% of jobs delivered a verified video"


@pytest.mark.parametrize(("failures", "passes"), [(2, False), (1, True)])  # 90 % and exactly 95 %
def test_success_rate_below_the_threshold_fails_only_succeeded(failures, passes):
    outcomes = run(jobs=jobs(*[{"succeeded": False, "outcome": "failed"}] * failures))
    assert failed(outcomes) == (set() if passes else {("job_results", "succeeded")})
    assert outcome_for(outcomes, "job_results", "succeeded")["observed"].startswith(f"{failures} of {ROWS} unexpected")


def test_success_rate_threshold_comes_from_the_profile():
    two_failed = jobs(*[{"succeeded": False, "outcome": "failed"}] * 2)
    assert passed_all(run(Thresholds(success_rate=0.9), jobs=two_failed))


@pytest.mark.parametrize("outcome", ["timed_out", "running", "not_submitted"])
def test_a_job_that_did_not_reach_its_end_fails_outcome(outcome):
    outcomes = run(jobs=jobs({"outcome": outcome, "succeeded": False}))
    assert failed(outcomes) == {("job_results", "outcome")}
    shown = "interrupted" if outcome == "running" else outcome  # still running in a stored run: cut off
    assert shown in outcome_for(outcomes, "job_results", "outcome")["observed"]


def test_completed_without_a_verified_video_is_not_a_success():
    # the server said completed, the download answered 404: 2 of 20 is below 95 %
    no_video = {"server_status": "completed", "outcome": "failed", "succeeded": False,
                "failure": "server said completed but the download answered 404: No video found"}
    assert failed(run(jobs=jobs(no_video, no_video))) == {("job_results", "succeeded")}
    # a row whose flag says succeeded while its outcome does not is not counted as a success either
    assert failed(run(jobs=jobs(*[{"outcome": "failed"}] * 2))) == {("job_results", "succeeded")}


def test_status_tracking_problems_fail_and_an_empty_string_means_none():
    outcomes = run(jobs=jobs({"tracking_problems": "completed_at before created_at"}, {"tracking_problems": ""}))
    assert failed(outcomes) == {("job_results", "tracking_problems")}
    assert outcome_for(outcomes, "job_results", "tracking_problems")["observed"].startswith("1 of")


@pytest.mark.parametrize(("change", "failing"), [
    ({"decode_errors": 3}, {"decode_errors"}),
    ({"width": 1920, "height": 1080}, {"width", "height"}),
    ({"video_codec": "hevc"}, {"video_codec"}),
    ({"audio_codec": None}, {"audio_codec"}),
    ({"audio_rms_dbfs": float("-inf")}, {"audio_rms_dbfs"}),  # digital silence
    ({"audio_rms_dbfs": -50.0}, {"audio_rms_dbfs"}),  # at the threshold is silent
    ({"max_mean_luma": 20.0}, {"max_mean_luma"}),  # at the threshold is black
    ({"audio_seconds": 9.0}, {"av_duration_delta"}),
    ({"reported_seconds": 11.0}, {"reported_duration_delta"}),
    ({"hash_stable": False}, {"hash_stable"}),
    ({"hash_stable": None}, {"hash_stable"}),  # never compared is not stable
    # a file that does not open: its unmeasured (null) columns are not checked again
    ({"opens": False, "video_codec": None, "audio_codec": None, "width": None, "height": None, "frames_decoded": 0,
      "video_seconds": None, "audio_seconds": None, "max_mean_luma": None, "audio_rms_dbfs": None},
     {"opens", "audio_codec", "frames_decoded"}),
])
def test_a_bad_video_fails_its_expectation(change, failing):
    outcomes = run(videos=videos(change))
    assert failed(outcomes) == {("video_integrity", column) for column in failing}


def test_null_values_are_reported_as_not_checked():
    outcomes = run(videos=videos({"opens": False, "width": None, "frames_decoded": 0}))
    assert outcome_for(outcomes, "video_integrity", "width")["details"] == "videos table: 20 rows, 1 null not checked"


def test_resolution_and_duration_tolerance_come_from_the_profile():
    big = videos(*[{"width": 1920, "height": 1080, "audio_seconds": 10.8}] * ROWS)
    assert passed_all(run(Thresholds(expected_resolution="1920x1080", duration_tolerance=0.1), videos=big))


def test_p95_job_time_over_the_limit_fails_only_total_seconds():
    outcomes = run(Thresholds(p95_job_seconds=28.0))
    assert failed(outcomes) == {("time_thresholds", "total_seconds")}
    p95 = percentile([10.0 + i for i in range(ROWS)], 95)  # same interpolation as the reports
    assert outcome_for(outcomes, "time_thresholds", "total_seconds")["observed"] == f"p95 = {p95:.5g}"


def test_p95_latency_over_the_limit_fails_each_endpoint():
    outcomes = run(latency=latency(ms=240.0))
    assert failed(outcomes) == {("time_thresholds", "health_ms"), ("time_thresholds", "jobs_ms")}


def test_endpoints_with_different_probe_counts_are_checked_apart_and_below_twenty_by_their_max():
    slow_health = frame("latency", [{"endpoint": "health", "ms": 400.0, "ok": True}] * 3
                        + [{"endpoint": "jobs", "ms": 5.0 + i, "ok": True} for i in range(7)])
    outcomes = run(latency=slow_health)
    assert failed(outcomes) == {("time_thresholds", "health_ms")}
    jobs_ms = outcome_for(outcomes, "time_thresholds", "jobs_ms")
    assert jobs_ms["details"].endswith("7 values") and jobs_ms["expectation"] == "expect_column_max_to_be_between"
    assert jobs_ms["observed"] == "11"


def test_only_answered_probes_have_a_latency():
    # 20 answers in 5..24 ms, and 20 probes that timed out at the 15 s bound: p95 stays within the limit
    timed_out = [{"endpoint": "health", "i": 20 + i, "ms": 15000.0, "ok": False, "error_kind": "timeout"}
                 for i in range(20)]
    outcomes = run(latency=pl.concat([latency(), frame("latency", timed_out)]))
    assert passed_all(outcomes), failed(outcomes)
    never = frame("latency", [{"endpoint": "health", "i": i, "ms": None, "ok": False, "error_kind": "refused"}
                              for i in range(5)])
    outcomes = run(latency=never)
    assert failed(outcomes) == {("time_thresholds", "health_ms")}
    assert outcome_for(outcomes, "time_thresholds", "health_ms")["details"].endswith("no values, so no p95 to compare")


def test_a_run_without_any_latency_probe_fails():
    outcomes = run(latency=frame("latency", []))
    assert failed(outcomes) == {("time_thresholds", None)}


def test_a_timed_out_job_adds_no_job_seconds():
    # 2 jobs timed out at 330 s: they fail the success rate and outcome, not the p95 job time
    timed_out = {"outcome": "timed_out", "succeeded": False, "total_seconds": 330.0}
    outcomes = run(Thresholds(success_rate=0.5), jobs=jobs(timed_out, timed_out))
    assert failed(outcomes) == {("job_results", "outcome")}


@pytest.mark.parametrize("tables", [
    {"jobs": frame("jobs", []), "videos": frame("videos", []), "latency": frame("latency", [])},
    {},  # none written at all
], ids=["empty", "missing"])
def test_no_jobs_and_no_videos_fail_the_row_counts_without_raising(tables):
    outcomes = validate_run(tables, Thresholds())
    assert failed(outcomes) == {
        ("video_integrity", None), ("job_results", None), ("time_thresholds", None),  # no probe either
        ("time_thresholds", "total_seconds"),  # no p95 without jobs
    }
    per_row = [o for o in outcomes if o["success"]]
    assert per_row and all("passes vacuously" in o["details"] for o in per_row)
    assert outcome_for(outcomes, "time_thresholds", "total_seconds")["observed"] == "p95 = none"


def test_a_video_with_any_integrity_problem_fails_the_ok_expectation():
    # e.g. the target reported no duration: every measured column is fine, the integrity check is not
    outcomes = run(videos=videos({"ok": False, "problems": "target reported duration None, not a positive number"}))
    assert failed(outcomes) == {("video_integrity", "ok")}


def test_no_downloaded_video_fails_only_the_video_row_count():
    # a failed download records no videos row (the job's failure says why): the videos table is empty
    no_video = "server said completed but the download answered 404: No video found"
    failed_downloads = jobs(*[{"succeeded": False, "outcome": "failed", "failure": no_video}] * ROWS)
    outcomes = run(jobs=failed_downloads, videos=frame("videos", []))
    assert {failure for failure in failed(outcomes) if failure[0] == "video_integrity"} == {("video_integrity", None)}
    count = outcome_for(outcomes, "video_integrity", None)
    assert (count["observed"], count["expected"]) == ("0 rows", "at least 1 video")
    per_video = [o for o in outcomes if o["suite"] == "video_integrity" and o["column"] is not None]
    assert per_video and all(o["details"] == "videos table: no rows, nothing to check (passes vacuously)"
                             for o in per_video)
