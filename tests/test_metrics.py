"""The figures of a run, from recorded observations: each rule of issue 7 on small hand-made tables."""

import polars as pl
import pytest

from analysis.metrics import compute_metrics
from analysis.resources import MB
from analysis.schema import TABLES, frame

SERVICES = ("server", "tts", "llm", "redis")
THRESHOLDS = {"success_rate": 0.95, "p95_job_seconds": 100.0, "p95_api_latency_ms": 250.0}


def manifest(**changes):
    return {"run_id": "r1", "profile_name": "smoke", "profile": {"name": "smoke", "thresholds": THRESHOLDS},
            "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:10:00+00:00",
            "machine": {"cpu_count": 2, "memory_bytes": 4096 * MB}, "outcome": "measured", **changes}


def job(job_id, stage="concurrent", level=2, slot=0, outcome="succeeded", seconds=10.0, start=0.0, **extra):
    succeeded = outcome == "succeeded"
    return {"job_id": job_id, "stage": stage, "level": level, "batch": 0, "slot": slot, "submitted_at": start,
            "finished_at": None if outcome == "running" else start + seconds,
            "total_seconds": None if outcome == "running" else seconds,
            "server_status": "completed" if outcome in ("succeeded", "failed") else None, "outcome": outcome,
            "succeeded": succeeded, **extra}


def video(job_id, seconds=10.0, ok=True):
    return {"job_id": job_id, "stage": "concurrent", "video_seconds": seconds, "ok": ok, "width": 1280, "height": 720}


def metrics(jobs=(), videos=(), latency=(), samples=(), batches=(), trace=(), checks=None, **changes):
    frames = {
        "jobs": frame("jobs", list(jobs)), "videos": frame("videos", list(videos)),
        "latency": frame("latency", list(latency)), "samples": frame("samples", list(samples)),
        "batches": frame("batches", list(batches)), "status_trace": frame("status_trace", list(trace)),
    }
    return compute_metrics(frames, manifest(**changes), checks or [])


def batch(level=2, wall=60.0):
    return {"stage": "concurrent", "level": level, "batch": 0, "jobs": level, "wall_seconds": wall}


# ---- jobs ---------------------------------------------------------------------------------------

def test_completed_without_a_verified_video_is_not_a_success():
    run = metrics(
        jobs=[job("a", slot=0), job("b", slot=1, outcome="failed", succeeded=False,
                                      failure="server said completed but the download answered 404: No video found")],
        videos=[video("a")], batches=[batch()],
    )
    level = run.levels[0]
    assert (level.success.k, level.success.n, level.success.value) == (1, 2, 0.5)
    assert level.jobs_per_minute == pytest.approx(1.0)  # 1 verified video in 60 s
    assert run.jobs[1].server_status == "completed" and run.jobs[1].outcome == "failed"
    assert not run.jobs[1].succeeded


def test_a_row_claiming_success_with_a_failed_outcome_is_not_counted():
    run = metrics(jobs=[job("a", outcome="failed", succeeded=True)], batches=[batch(1)])
    assert run.levels[0].success.k == 0


def test_video_seconds_per_wall_second_use_the_decoded_duration():
    run = metrics(jobs=[job("a", reported_video_seconds=None), job("b", slot=1, reported_video_seconds=0.0)],
                  videos=[video("a", 10.0), video("b", 11.5)], batches=[batch(wall=10.0)])
    assert run.levels[0].video_seconds_per_wall_second == pytest.approx(2.15)
    assert run.jobs[0].decoded_video_seconds == 10.0


def test_a_timed_out_job_adds_no_job_seconds_and_is_counted_as_timed_out():
    run = metrics(jobs=[job("a", seconds=10.0), job("b", slot=1, outcome="timed_out", seconds=330.0)],
                  videos=[video("a")], batches=[batch()])
    level = run.levels[0]
    assert level.seconds.n == 1 and level.seconds.max == 10.0
    assert level.outcomes == {"succeeded": 1, "timed_out": 1}


def test_jobs_in_flight_when_the_run_ended_are_interrupted_with_the_status_last_seen():
    trace = [{"job_id": "b", "stage": "concurrent", "t": 1.0, "status": "pending"},
             {"job_id": "b", "stage": "concurrent", "t": 2.0, "status": "processing"}]
    run = metrics(jobs=[job("a"), job("b", slot=1, outcome="running", observations=129)], videos=[video("a")],
                  trace=trace, batches=[batch()])
    interrupted = run.jobs[1]
    assert (interrupted.outcome, interrupted.server_status, interrupted.status_from_trace) == \
        ("interrupted", "processing", True)
    assert run.interrupted_jobs == 1 and run.levels[0].outcomes == {"succeeded": 1, "interrupted": 1}
    # cut off by the run's stop, neither a success nor a failure of the target: beside the rate, not in it
    assert (run.levels[0].success.k, run.levels[0].success.n) == (1, 1)


@pytest.mark.parametrize("batches", [[batch(4, wall=12.0)], []], ids=["SIGINT: wall recorded", "kill -9: no batch"])
def test_a_level_whose_jobs_were_all_interrupted_has_no_rate_per_wall_time(batches):
    run = metrics(jobs=[job(f"j{i}", level=4, slot=i, outcome="running") for i in range(4)], batches=batches)
    (level,) = run.levels
    assert (level.success.n, level.success.value, level.jobs_per_minute, level.video_seconds_per_wall_second) == \
        (0, None, None, None)


@pytest.mark.parametrize("changes", [{"finished_at": None}, {"outcome": "running"}, {"outcome": "interrupted"}])
def test_a_run_without_an_end_is_interrupted_and_the_verdict_says_so(changes):
    run = metrics(jobs=[job("a", stage="single", level=None, outcome="running")], **changes)
    assert run.interrupted
    assert run.verdict.startswith("INTERRUPTED: the run stopped before its end with 1 job in flight")


def test_verdicts():
    assert metrics().verdict == "not validated: no expectation results"
    assert metrics(outcome="stopped").verdict == "not validated: no expectation results (run stopped)"
    passed = [{"suite": "s", "expectation": "e", "success": True}]
    assert metrics(checks=passed).verdict == "all 1 checks passed"
    latency = [{"endpoint": "health", "i": i, "ms": None, "ok": False, "error_kind": "timeout"} for i in range(3)]
    failed = metrics(latency=latency, checks=passed + [{"suite": "t", "expectation": "q", "success": False}])
    assert failed.verdict.startswith("1 of 2 checks FAILED: ")
    assert "health: did not answer (3 probes: 3 timeout); no figure to compare with ≤ 250 ms" in failed.verdict


# ---- latency ------------------------------------------------------------------------------------

def test_latency_counts_only_answers_and_errors_by_kind():
    probes = [{"endpoint": "health", "i": i, "ms": 1.0 + i, "ok": True} for i in range(20)]
    probes += [{"endpoint": "health", "i": 20, "ms": None, "ok": False, "error_kind": "timeout"},
               {"endpoint": "health", "i": 21, "ms": None, "ok": False, "error_kind": "refused"},
               {"endpoint": "health", "i": 22, "ms": 3.0, "ok": False, "error_kind": "wrong_status"}]
    (health,) = metrics(latency=probes).latency
    assert health.probes == 23 and health.answered.n == 20 and health.answered.max == 20.0
    assert health.errors == {"timeout": 1, "refused": 1, "wrong_status": 1}
    assert health.answered.p95 == pytest.approx(19.05)


def test_an_endpoint_that_never_answered_has_no_latency_and_fails_its_threshold_in_words():
    probes = [{"endpoint": "health", "i": i, "ms": None, "ok": False, "error_kind": "timeout"} for i in range(20)]
    run = metrics(latency=probes)
    assert run.latency[0].answered.n == 0 and run.latency[0].answered.p95 is None
    (check,) = [c for c in run.thresholds if "health" in c.sentence]
    assert not check.passed and check.measured is None
    assert check.sentence == "health: did not answer (20 probes: 20 timeout); no figure to compare with ≤ 250 ms"


def test_a_failed_threshold_reads_as_measured_against_limit():
    probes = [{"endpoint": "health", "i": i, "ms": 15040.0 + i, "ok": True} for i in range(20)]
    (check,) = [c for c in metrics(latency=probes).thresholds if c.name == "p95 health"]
    assert check.sentence == "p95 health 15058.0 ms > 250 ms (n=20)" and not check.passed


def test_below_twenty_values_the_max_stands_in_for_the_p95_threshold():
    run = metrics(jobs=[job("a", seconds=50.0), job("b", slot=1, seconds=120.0)], videos=[video("a"), video("b")])
    (check,) = [c for c in run.thresholds if c.name.endswith("job time")]
    assert check.name == "max job time" and not check.passed
    assert check.sentence == "max job time 120.00 s > 100 s (n=2; too few for a p95, so the max stands in)"


# ---- resources ----------------------------------------------------------------------------------

def sample(stage, t, service, cpu, rss_mb):
    return {"stage": stage, "t": t, "service": service, "cpu_percent": cpu, "rss_bytes": int(rss_mb * MB)}


def test_deployment_cpu_peak_is_the_peak_of_the_sum_at_an_instant():
    samples = [sample("single", 1.0, "server", 150.0, 100), sample("single", 1.0, "tts", 10.0, 50),
               sample("single", 2.0, "server", 10.0, 100), sample("single", 2.0, "tts", 120.0, 50),
               sample("single", 1.0, "total", 999.0, 999), sample("single", 1.0, "machine", 190.0, 2000)]
    usage = {row.name: row for row in metrics(samples=samples).run_usage}
    assert usage["deployment"].cpu_peak == 160.0  # not 150 + 120
    assert usage["server"].cpu_peak == 150.0 and "total" not in usage and "machine" not in usage


def test_per_job_memory_is_the_share_above_idle_of_the_jobs_in_flight():
    samples = [sample("baseline", 0.0, "server", 1.0, 100), sample("baseline", 0.0, "tts", 1.0, 100),
               sample("concurrent", 5.0, "server", 50.0, 300), sample("concurrent", 5.0, "tts", 50.0, 100),  # 2 jobs
               sample("concurrent", 15.0, "server", 50.0, 200), sample("concurrent", 15.0, "tts", 50.0, 100),  # 1 job
               sample("concurrent", 30.0, "server", 1.0, 100), sample("concurrent", 30.0, "tts", 1.0, 100)]  # none
    run = metrics(jobs=[job("a", start=0.0, seconds=20.0), job("b", slot=1, start=1.0, seconds=9.0)], samples=samples)
    (row,) = run.per_job_memory
    assert (row.level, row.instants, row.baseline_rss_mb, row.deployment_peak_rss_mb) == (2, 2, 200.0, 400.0)
    assert sorted([row.per_job_mb.min, row.per_job_mb.max]) == [100.0, 100.0]  # (400−200)/2 and (300−200)/1


def test_an_interrupted_job_is_in_flight_until_the_run_ended():
    samples = [sample("baseline", 0.0, "server", 1.0, 100),
               sample("concurrent", 5.0, "server", 50.0, 300)]
    run = metrics(jobs=[job("a", outcome="running", start=0.0)], samples=samples)
    assert run.per_job_memory[0].per_job_mb.max == 200.0


def test_a_table_from_an_older_run_without_the_new_columns_still_renders():
    import polars as pl

    old_jobs = pl.DataFrame({"job_id": ["a"], "stage": ["single"], "status": ["completed"], "total_seconds": [4.0]})
    old_checks = [{"suite": "s", "expectation": "e", "success": True, "observed": {"unexpected_count": 0}}]
    run = compute_metrics({"jobs": old_jobs}, manifest(), old_checks)
    assert run.jobs[0].outcome == "unknown" and not run.jobs[0].succeeded  # no verified outcome recorded
    assert run.checks[0].observed == '{"unexpected_count": 0}'


def test_a_run_that_recorded_no_latency_probe_says_so_in_its_thresholds():
    run = metrics(jobs=[job("a")], videos=[video("a")])
    (check,) = [c for c in run.thresholds if c.name == "p95 API latency"]
    assert not check.passed and check.sentence.startswith("API latency: no probe was recorded")


def test_a_run_stopped_at_verification_names_the_failing_service_in_its_verdict():
    services = frame("services", [{"service": "llm", "ok": False, "detail": "model qwen3:4b is not listed"},
                                  {"service": "redis", "ok": True}])
    run = compute_metrics({"services": services}, manifest(outcome="stopped"), [])
    assert run.verdict == ("not validated: no expectation results (run stopped); service verification FAILED for "
                           "llm (model qwen3:4b is not listed)")


def test_failures_in_words_state_thresholds_then_the_checks_no_threshold_states():
    checks = [{"suite": "job_results", "expectation": "e", "column": "succeeded", "success": False},
              {"suite": "job_results", "expectation": "expect_column_values_to_be_in_set", "column": "outcome",
               "success": False, "observed": "1 of 2 unexpected, e.g. timed_out",
               "expected": "every job reached its end: outcome one of succeeded, failed"},
              {"suite": "video_integrity", "expectation": "e", "column": "width", "success": True}]
    run = metrics(jobs=[job("a"), job("b", slot=1, outcome="timed_out", succeeded=False)], videos=[video("a")],
                  latency=[{"endpoint": "health", "i": 0, "ms": 1.0, "ok": True}], checks=checks)
    assert run.failures_in_words() == [
        "success rate 50.0 % (1 of 2 jobs with a verified video) < 95 %",
        "job_results outcome: 1 of 2 unexpected, e.g. timed_out (expected every job reached its end: outcome one "
        "of succeeded, failed)",
    ]


def test_a_stage_under_way_when_the_process_died_is_shown_interrupted():
    stages = pl.DataFrame([
        {"stage": "single", "started_at": 1.0, "finished_at": None, "outcome": "running", "detail": None},
        {"stage": "single", "started_at": 1.0, "finished_at": 3.0, "outcome": "completed", "detail": None},
        {"stage": "concurrent", "started_at": 3.0, "finished_at": None, "outcome": "running", "detail": None},
    ], schema=TABLES["stages"])
    run = compute_metrics({"stages": stages}, {"started_at": "2026-11-27T00:00:00+00:00"}, [])
    assert [(stage.stage, stage.outcome) for stage in run.stages] == [("single", "completed"),
                                                                     ("concurrent", "interrupted")]


def test_incidents_read_in_the_one_wording_earliest_first():
    incidents = frame("incidents", [
        {"service": "server", "t": 20.0, "since": 12.0, "detail": "reports 'degraded' (tts_service: down)"},
        {"service": "tts", "t": 20.0, "since": 10.0, "exit_code": -9, "detail": "connection refused",
         "log_tail": "Killed"},
        {"service": "llm", "t": 11.0, "since": None, "detail": "timed out"},  # no since: when it was found
        {"service": "redis", "t": 15.0, "since": 12.0, "detail": "refused"},  # same since as server, found earlier
    ])
    run = compute_metrics({"incidents": incidents}, manifest(), [])
    assert [incident.sentence for incident in run.incidents] == [
        "tts stopped answering at 00:00:10 UTC (exit -9)",
        "llm failing since 00:00:11 UTC: timed out",
        "redis failing since 00:00:12 UTC: refused",
        "server failing since 00:00:12 UTC: reports 'degraded' (tts_service: down)",
    ]
    assert run.incidents[0].log_tail == "Killed"


def test_the_success_rate_threshold_carries_its_wilson_interval_from_five_jobs():
    six = [job(f"j{i}", slot=i) for i in range(6)]
    (check,) = [c for c in metrics(jobs=six, videos=[video(j["job_id"]) for j in six]).thresholds
                if c.name == "success rate"]
    assert check.sentence == "success rate 100.0 % (6 of 6 jobs with a verified video, 95 % CI 61.0–100.0 %) ≥ 95 %"
    four = [job(f"j{i}", slot=i) for i in range(4)]  # below n = 5: no interval
    (check,) = [c for c in metrics(jobs=four).thresholds if c.name == "success rate"]
    assert check.sentence == "success rate 100.0 % (4 of 4 jobs with a verified video) ≥ 95 %"


def test_videos_hold_downloads_only_and_jobs_without_one_are_counted_beside():
    jobs = [job("a"), job("b", slot=1, outcome="failed", succeeded=False,
                          failure="server said completed but the download answered 404: No video found"),
            job("c", slot=2, outcome="timed_out"), job("d", slot=3, outcome="running")]
    run = metrics(jobs=jobs, videos=[video("a")])
    assert (run.videos_passed.k, run.videos_passed.n, run.jobs_without_video) == (1, 1, 2)  # d was interrupted
    (check,) = [c for c in run.thresholds if c.name == "video integrity"]
    assert check.passed and check.sentence == \
        "1 of 1 downloaded videos passed every integrity check (2 jobs ended without a downloaded video)"
    none = metrics(jobs=jobs[1:2])
    (check,) = [c for c in none.thresholds if c.name == "video integrity"]
    assert not check.passed and check.sentence == "no video was downloaded (1 job ended without one), so none could " \
                                                  "be checked"


# ---- rounds: per-round and pooled figures, trends, downtime -----------------------------------------

def test_each_round_has_its_own_figures_and_the_groups_pool_every_round():
    from tests.rounds_run import ROUNDS, rounds_metrics

    run = rounds_metrics()
    assert run.rounds.count == ROUNDS and [figures.round for figures in run.rounds.per_round] == [1, 2, 3, 4]
    fourth = run.rounds.per_round[3]
    assert (fourth.jobs, fourth.success.k, fourth.success.n) == (2, 1, 2)
    assert fourth.levels[0].seconds.n == 1 and fourth.levels[0].seconds.median == 14.0  # verified successes only
    assert [figures.latency[0].answered.n for figures in run.rounds.per_round] == [5] * ROUNDS
    assert [usage.name for usage in fourth.usage] == ["server", "tts", "deployment"]
    # pooled: every round's jobs as one sample, with its n and interval
    assert run.levels[0].jobs == 2 * ROUNDS and run.levels[0].seconds.n == 7 and run.levels[0].seconds.ci
    assert (run.rounds.pooled_success.k, run.rounds.pooled_success.n) == (7, 8)
    assert run.latency[0].probes == 5 * ROUNDS


def test_trends_across_rounds_find_the_leak_and_the_drift_in_words():
    from tests.rounds_run import LEAK_MB, rounds_metrics

    rounds = rounds_metrics().rounds
    server, tts, deployment = rounds.rss_trends
    assert server.significant and server.ci.low < LEAK_MB < server.ci.high and server.n == 4
    assert server.sentence.startswith("server RSS grew 5.") and server.sentence.endswith("(n = 4 rounds)")
    assert not tts.significant and tts.sentence.startswith("No significant drift in tts RSS (slope ")
    assert rounds.latency_trends[0].sentence.startswith("health median latency rose 2.")
    assert rounds.job_time_trends[0].what == "median job time at concurrency 2"
    assert not rounds.success_trend.significant and rounds.success_trend.n == 8
    assert rounds.significant[0].startswith("median job time at concurrency 2 rose")


def test_downtime_before_a_round_reads_in_words_and_is_given_to_its_round():
    from tests.rounds_run import rounds_metrics

    run = rounds_metrics()
    (wait,) = run.rounds.downtime
    assert wait.sentence == "tts was unreachable for 12.5 s before round 3; it answered again"
    assert [figures.downtime_s for figures in run.rounds.per_round] == [None, None, 12.5, None]
    assert [(s.service, s.ok) for s in run.services] == [("server", True), ("tts", True)]  # the first verification
    assert "unreachable" not in run.verdict


def test_services_that_did_not_answer_again_are_in_the_verdict_with_the_round_of_a_failed_stage():
    from tests.rounds_run import rounds_frames, rounds_manifest

    frames = rounds_frames()
    frames["downtime"] = frame("downtime", [{"round": 3, "started_at": 2990.0, "ended_at": None,
                                             "services": "tts, llm", "recovered": False}])
    frames["stages"] = pl.concat([frames["stages"], frame("stages", [
        {"stage": "latency", "round": 2, "started_at": 2060.0, "finished_at": 2070.0, "outcome": "failed",
         "detail": "RuntimeError: boom"}])])
    run = compute_metrics(frames, rounds_manifest(), [])
    assert run.rounds.downtime[0].sentence == ("tts and llm were unreachable for an unknown time (the wait has no "
                                               "recorded end) before round 3 and did not answer again within the wait")
    assert run.verdict == ("not validated: no expectation results; stage latency failed in round 2: RuntimeError: "
                           "boom; " + run.rounds.downtime[0].sentence)


@pytest.mark.parametrize("rounds", [1, 2])
def test_one_round_has_nothing_per_round_and_two_are_too_few_for_a_trend(rounds):
    from tests.rounds_run import rounds_metrics

    run = rounds_metrics(rounds)
    assert run.rounds.count == rounds
    if rounds == 1:
        assert run.rounds.per_round == [] and run.rounds.trends == [] and run.rounds.success_trend is None
    else:
        assert all("too few rounds for a trend" in trend.sentence for trend in run.rounds.trends)
        assert "too few rounds" in run.rounds.success_trend.sentence


def test_a_run_stored_before_rounds_is_one_round():
    run = metrics(jobs=[job("a"), job("b", slot=1)], videos=[video("a"), video("b")], batches=[batch()])
    assert run.rounds.count == 1 and run.rounds.per_round == [] and run.rounds.downtime == []
    assert (run.rounds.pooled_success.k, run.rounds.pooled_success.n) == (2, 2)


def test_a_campaign_stopped_before_its_last_round_says_what_its_checks_cover():
    from analysis.metrics import Check, StageOutcome, downtime_sentence, stopped_round, verdict

    stages = [StageOutcome(stage="single", round=1, outcome="completed", seconds=1.0, detail=None),
              StageOutcome(stage="single", round=2, outcome="skipped", seconds=None, detail="services unreachable"),
              StageOutcome(stage="faults", round=1, outcome="skipped", seconds=None, detail="not planned")]
    assert stopped_round("stopped", stages) == 2 and stopped_round("measured", stages) is None
    checks = [Check(suite="job_results", expectation="x", column=None, success=True, observed=None, expected=None,
                    details=None)]
    words = verdict(interrupted=False, outcome="stopped", interrupted_jobs=0, checks=checks, failed_thresholds=[],
                    stage_failures=[], stopped_at=2)
    assert words.startswith("all 1 checks passed, but the campaign STOPPED at round 2, so the checks cover")
    # a wait the run's stop cut has a length but no verdict on the services
    assert downtime_sentence(["tts"], 1.2, 2, None).endswith("before round 2; the run's stop cut the wait")
    assert downtime_sentence(["tts"], None, 2, None).endswith("(the wait has no recorded end) before round 2")
