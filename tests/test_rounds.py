"""Campaigns of rounds against the real bundled stack: stages once or per round, resume after kill -9, waits for
services that went down between rounds; and the pure planning of rounds and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from analysis.rounds import campaign_rounds, kept_stages, parse_duration, resume_round
from flows.batch import round_line
from tasks.store import LEDGER
from tests.stackutil import wait_until

ROOT = Path(__file__).parent.parent
# the smallest campaign that has every stage: 1 + 2 + 1 jobs a round, 5 probes per endpoint, no faults unless asked
SMALLEST = ["workload.concurrency_levels=[2]", "workload.sequential_jobs=1", "workload.latency_probes=5",
            "timing.baseline_s=0.5"]
ROUND_TABLES = ("stages", "services", "samples", "status_trace", "jobs", "batches", "videos", "latency")


def planned(rounds: int) -> set[tuple]:
    """(round, stage, level, batch, slot) of every job a campaign of SMALLEST plans."""
    per_round = [("single", 1, 0, 0), ("concurrent", 2, 0, 0), ("concurrent", 2, 0, 1), ("sequential", 1, 0, 0)]
    return {(round_, *job) for round_ in range(1, rounds + 1) for job in per_round}


def job_keys(jobs: pl.DataFrame) -> list[tuple]:
    return jobs.select("round", "stage", "level", "batch", "slot").rows()


def last_outcomes(run: Path) -> dict[tuple[int, str], list[tuple[int, str]]]:
    """(round, stage) → [(attempt, outcome)] of its rows that are not "running"."""
    stages = pl.read_parquet(run / "stages.parquet").filter(pl.col("outcome") != "running")
    found: dict[tuple[int, str], list[tuple[int, str]]] = {}
    for row in stages.iter_rows(named=True):
        found.setdefault((row["round"], row["stage"]), []).append((row["attempt"], row["outcome"]))
    return found


def test_two_rounds_repeat_the_load_stages_and_run_the_others_once(prefect_server, tmp_path):
    from flows.full_suite import full_suite

    overrides = [f'results_dir="{tmp_path}"', *SMALLEST, 'faults.experiments=["llm.slow"]']
    started = time.monotonic()
    state = full_suite(profile="smoke", overrides=overrides, run_id="two", rounds=2, return_state=True)
    print(f"2-round smoke campaign: {time.monotonic() - started:.1f} s")
    assert state.is_completed(), state.message
    run = tmp_path / "two"

    for table in ROUND_TABLES:
        assert set(pl.read_parquet(run / f"{table}.parquet")["round"]) == {1, 2}, table
    stages = last_outcomes(run)
    assert stages == {
        (1, "verification"): [(1, "completed")], (1, "baseline"): [(1, "completed")],
        **{(round_, stage): [(1, "completed")] for round_ in (1, 2)
           for stage in ("single", "concurrent", "latency", "sequential")},
        (2, "verification"): [(1, "completed")],  # re-verified before round 2
        (2, "conformance"): [(1, "completed")], (2, "faults"): [(1, "completed")]}
    jobs = pl.read_parquet(run / "jobs.parquet")
    assert sorted(job_keys(jobs)) == sorted(planned(2)) and jobs["succeeded"].all()
    assert set(pl.read_parquet(run / "faults.parquet")["round"]) == {2}
    assert set(pl.read_parquet(run / "contract_probes.parquet")["round"]) == {2}
    assert set(pl.read_parquet(run / "samples.parquet").filter(pl.col("stage") == "baseline")["round"]) == {1}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["campaign"]["rounds"] == 2 and manifest["invocation"]["rounds"] == 2


def one_done_one_in_flight(run_root: Path, round_: int, stage: str) -> Path | None:
    """The run folder once its ledger shows a job of `round_`'s `stage` succeeded and another submitted and not yet
    ended: a kill then cuts a stage that had finished some of its jobs."""
    for ledger in run_root.glob(f"*/{LEDGER}"):
        jobs: dict[tuple, dict] = {}
        for line in ledger.read_text().splitlines():
            if line.endswith("}") and (row := json.loads(line))["table"] == "jobs":
                key = (row.get("round"), row["stage"], row["level"], row["batch"], row["slot"])
                jobs[key] = {**jobs.get(key, {}), **row}
        mine = [row for key, row in jobs.items() if key[:2] == (round_, stage)]
        if any(row["outcome"] == "succeeded" for row in mine) and \
                any(row.get("job_id") and row["outcome"] == "running" for row in mine):
            return ledger.parent
    return None


def test_resume_after_kill_9_mid_stage_counts_every_planned_job_once(prefect_server, tmp_path):
    """Killed in round 2's sequential stage after its first job succeeded, with its second in flight: the resume runs
    the stage again from its start, so the cut attempt's finished job and its interrupted one are both set aside
    (recorded, counted in words) and the re-run's two count, each planned job exactly once."""
    from prefect.settings import PREFECT_API_URL

    from analysis.metrics import metrics_of
    from analysis.rounds import set_aside_reruns
    from artifacts.console import console_summary
    from flows.full_suite import main
    from tasks.store import load_tables

    command = [sys.executable, "-m", "flows.full_suite", "--profile", "smoke", "--rounds", "2",
               "--set", f'results_dir="{tmp_path}"', "--set", "faults.enabled=false",
               *(arg for item in SMALLEST for arg in ("--set", item)), "--set", "workload.sequential_jobs=2"]
    console = tmp_path / "console.log"
    started = time.monotonic()
    with console.open("wb") as out:
        campaign = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()})
    try:
        run = wait_until(lambda: one_done_one_in_flight(tmp_path, 2, "sequential"), 240,
                         "round 2's first sequential job done and its second in flight", interval=0.05)
        os.killpg(campaign.pid, signal.SIGKILL)  # the campaign and its stack, at once: nothing is written after
        campaign.wait(timeout=30)
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, signal.SIGKILL)
    killed_after = time.monotonic() - started
    resumed = time.monotonic()
    assert main(["--resume", str(run)]) == 0, console.read_text()[-3000:]
    print(f"killed after {killed_after:.1f} s; the resume took {time.monotonic() - resumed:.1f} s")

    planned_jobs = {(round_, *job) for round_, *job in planned(2) if job[0] != "sequential"} | \
        {(round_, "sequential", 1, batch, 0) for round_ in (1, 2) for batch in (0, 1)}
    jobs = pl.read_parquet(run / "jobs.parquet")
    cut = jobs.filter((pl.col("round") == 2) & (pl.col("stage") == "sequential") & (pl.col("attempt") == 1))
    assert sorted(cut["outcome"]) == ["interrupted", "succeeded"]  # the cut attempt's rows stay recorded
    assert cut.filter(pl.col("outcome") == "interrupted")["failure"].str.contains("continued by attempt 2").all()
    counted, aside = set_aside_reruns(load_tables(run))
    assert sorted(job_keys(counted["jobs"])) == sorted(planned_jobs)  # every planned job counted exactly once ...
    assert counted["jobs"]["succeeded"].all()  # ... as a success
    assert sorted(job_keys(aside["jobs"])) == sorted(job_keys(cut))
    assert set(aside["batches"].select("round", "stage", "attempt").rows()) == {(2, "sequential", 1)}

    stages = last_outcomes(run)
    assert stages[(2, "sequential")] == [(1, "interrupted"), (2, "completed")]  # the cut stage ran again
    for key in [(1, "baseline"), (1, "single"), (1, "concurrent"), (1, "latency"), (1, "sequential"),
                (2, "single"), (2, "concurrent"), (2, "latency")]:
        assert stages[key] == [(1, "completed")], key  # kept: not run again
    assert stages[(2, "verification")] == [(1, "completed"), (2, "completed")]  # the new stack was verified
    assert stages[(2, "conformance")] == [(2, "completed")]

    metrics = metrics_of(run)
    assert metrics.sequential.jobs == 4 and (metrics.sequential.success.k, metrics.sequential.success.n) == (4, 4)
    assert metrics.all_jobs.n == len(planned_jobs) and metrics.interrupted_jobs == 0
    # the cut stage, and round 2's verification (a resume verifies its new stack again)
    assert [(run.round, run.stage, run.attempt, run.rerun_by) for run in metrics.cut_runs] == [
        (2, "verification", 1, 2), (2, "sequential", 1, 2)]
    assert sorted(metrics.cut_runs[1].outcomes.items()) == [("interrupted", 1), ("succeeded", 1)]
    checks = json.loads((run / "checks.json").read_text())
    assert checks and all(check["success"] for check in checks if check.get("fails_run", True)), checks
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"] == "measured" and [a["attempt"] for a in manifest["attempts"]] == [1, 2]
    report = (run / "reports" / "integration_reliability_report.md").read_text()
    assert "round 2 sequential: 2 jobs (" in report and "of the cut attempt 1 are not counted: the stage was run " \
        "again by attempt 2" in report
    assert "  sequential:       4 of 4 (100.0 %) verified" in console_summary(metrics, run)


def test_a_round_waits_for_a_service_that_went_down_and_records_the_downtime(prefect_server, tmp_path):
    from flows.lifecycle import StageLog
    from flows.verify import services_ready
    from profiles.settings import load_profile
    from stack import running_stack
    from tasks.run import open_run
    from tasks.services import Services
    from tasks.store import Ledger, read_ledger

    settings = load_profile("smoke", [f'results_dir="{tmp_path}"', "campaign.retries=1", "campaign.retry_wait_s=20",
                                      "campaign.retry_poll_s=0.5"])
    run_dir = open_run.fn(settings, "down")
    Ledger.of(run_dir).round = 2
    stages = StageLog(run_dir, __import__("logging").getLogger("test"))
    with running_stack() as stack:
        urls = stack.urls
        services = Services(server=urls.server, tts=urls.tts, llm=urls.llm, redis=urls.redis,
                            llm_model=settings.target.llm_model)
        stack.stop_service("tts")
        done = threading.Event()

        def start_tts_later() -> None:
            time.sleep(2.0)
            stack.start_service("tts")
            done.wait(60)  # a service dies with the thread that started it (PR_SET_PDEATHSIG): this one stays

        back = threading.Thread(target=start_tts_later, daemon=True)
        back.start()
        try:
            assert services_ready(stages, settings, services, run_dir, may_wait=True) is None
        finally:
            done.set()
            back.join()
        [wait] = read_ledger(Path(run_dir))["downtime"]
        assert wait["services"] == "tts" and wait["recovered"] and wait["round"] == 2
        assert 1.5 < wait["seconds"] < 20 and "tts" in wait["detail"]
        assert stages.failed == []  # the re-verification that failed was followed by one that passed

        stack.stop_service("tts")  # now for good: one wait of at most 1 s, then the round is given up
        short = settings.model_copy(update={"campaign": settings.campaign.model_copy(update={"retry_wait_s": 1.0})})
        why = str(services_ready(stages, short, services, run_dir, may_wait=True))
    assert why.startswith("services unreachable before round 2, after 1 wait(s) of at most 1 s") and "tts" in why
    last = read_ledger(Path(run_dir))["downtime"][-1]
    assert not last["recovered"] and last["detail"].startswith("still down after 1 s: tts")
    assert [failure.split(":")[0] for failure in stages.failed] == ["verification"]


# --- pure parts ---

def test_a_stage_that_ran_to_its_end_is_kept_and_a_cut_one_is_not():
    rows = [{"round": 1, "stage": "single", "outcome": "running"},
            {"round": 1, "stage": "single", "outcome": "completed"},
            {"round": 1, "stage": "concurrent", "outcome": "running"},  # kill -9
            {"round": 1, "stage": "latency", "outcome": "failed"},
            {"round": 1, "stage": "verification", "outcome": "completed"},  # a resumed stack is verified again
            {"stage": "baseline", "outcome": "completed"}]  # stored before rounds: round 1
    assert kept_stages(rows) == {(1, "single"), (1, "latency"), (1, "baseline")}


@pytest.mark.parametrize(("kept", "rounds", "time_left", "first"), [
    (set(), 3, False, 1),  # nothing done
    ({(1, s) for s in ("single", "concurrent", "latency", "sequential")} | {(2, "single")}, 3, False, 2),
    ({(r, s) for r in (1, 2) for s in ("single", "concurrent", "latency", "sequential")}, 3, False, 3),
    ({(r, s) for r in (1, 2) for s in ("single", "concurrent", "latency", "sequential")}, 2, False, 2),  # all done
    ({(1, s) for s in ("single", "concurrent", "latency", "sequential")}, None, True, 2),  # a soak with time left
    ({(1, s) for s in ("single", "concurrent", "latency", "sequential")}, None, False, 1),  # its time is up
])
def test_a_resumed_campaign_starts_in_its_first_unfinished_round(kept, rounds, time_left, first):
    assert resume_round(kept, rounds, time_left) == first


def test_a_soak_runs_rounds_until_its_deadline_and_finishes_the_one_in_flight():
    now = [0.0]

    def clock() -> float:
        now[0] += 40.0  # each round takes 40 s
        return now[0]

    assert list(campaign_rounds(1, None, 100.0, clock, lambda: False)) == [1, 2, 3]  # round 3 starts at 80 s
    assert list(campaign_rounds(2, 3, None, clock, lambda: False)) == [2, 3]
    assert list(campaign_rounds(5, None, 0.0, clock, lambda: False)) == [5]  # past its deadline: the cut round only
    assert list(campaign_rounds(1, 3, None, clock, lambda: True)) == []


def test_durations_and_round_lines():
    assert [parse_duration(text) for text in ("90m", "8h", "1d", "45s", "3600", "1.5h")] == [
        5400, 28800, 86400, 45, 3600, 5400]
    for bad in ("", "8x", "-1h", "0", "h"):
        with pytest.raises(ValueError, match="e.g. 90m, 8h, 1d"):
            parse_duration(bad)
    assert round_line(2, 3, None, 0.0) == "round 2 of 3"
    assert round_line(4, None, 4320.0, 0.0) == "round 4 of a soak ending in 1 h 12 min"
    assert round_line(9, None, 10.0, 20.0) == "round 9 of a soak whose time is up: its last"


def test_a_retried_flow_run_continues_its_own_folder_and_another_flow_run_is_refused(prefect_server, tmp_path):
    """What a retry from the Prefect UI does: the same flow run (same id, same parameters) starts the flow again."""
    from prefect import flow

    from flows.lifecycle import open_campaign
    from tasks.run import RunRefused, release_run

    overrides = [f'results_dir="{tmp_path}"']

    @flow
    def started_twice() -> tuple:
        first = open_campaign("smoke", overrides, "", None, "", "")
        release_run(first.run_dir)  # as when its process died
        again = open_campaign("smoke", overrides, "", None, "", "")
        release_run(again.run_dir)
        return first, again

    first, again = started_twice()
    assert again.run_dir == first.run_dir and (first.attempt, again.attempt) == (1, 2)
    manifest = json.loads((Path(first.run_dir) / "manifest.json").read_text())
    assert len({attempt["flow_run_id"] for attempt in manifest["attempts"]}) == 1

    @flow
    def another_flow_run() -> None:
        open_campaign("smoke", overrides, Path(first.run_dir).name, None, "", "")

    with pytest.raises(RunRefused, match="is taken"):
        another_flow_run()


def test_what_cannot_be_resumed_is_refused_in_one_line(tmp_path):
    from tasks.run import RunRefused, hold_run, release_run, resumable

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(RunRefused, match="not a run folder"):
        resumable(run)
    (run / LEDGER).write_text("")
    (run / "manifest.json").write_text(json.dumps({"outcome": "measured", "finished_at": "2026-11-27T03:00:00+00:00",
                                                   "invocation": {"profile": "smoke", "overrides": []}}))
    with pytest.raises(RunRefused, match="ended measured .* nothing to resume"):
        resumable(run)
    (run / "manifest.json").write_text(json.dumps({"outcome": "running"}))
    with pytest.raises(RunRefused, match="does not say how it was started"):
        resumable(run)
    (run / "manifest.json").write_text(json.dumps({"outcome": "running",
                                                   "invocation": {"profile": "smoke", "overrides": []}}))
    hold_run(run)  # its campaign still runs (here: this process)
    try:
        with pytest.raises(RunRefused, match="is running right now"):
            resumable(run)
    finally:
        release_run(run)
    assert resumable(run)["outcome"] == "running"  # killed: nothing holds it any more


def test_rounds_or_a_soak_come_from_the_profile_or_replace_its_plan_for_one_run():
    from profiles.settings import ProfileError, load_profile, with_campaign

    three = load_profile("smoke", ["campaign.rounds=3"])
    assert (three.campaign.rounds, three.campaign.duration_s) == (3, None)
    soak = with_campaign(three, None, 3600.0)  # --duration 1h on a profile of rounds: a soak, for this run
    assert (soak.campaign.rounds, soak.campaign.duration_s, soak.campaign.retries) == (1, 3600.0, 2)
    assert with_campaign(three, None, None) is three
    with pytest.raises(ProfileError, match="campaign: give rounds or duration_s, not both"):
        load_profile("smoke", ["campaign.rounds=2", "campaign.duration_s=60"])
    with pytest.raises(ProfileError, match="duration"):
        with_campaign(three, None, 30 * 24 * 3600.0)  # beyond the bound of any wait: a week


def resumed_campaign_frames() -> dict:
    """Two rounds of 1 single, 2 concurrent and 1 sequential job; killed in round 2's concurrent stage after its
    first job had succeeded (its second in flight), then resumed: attempt 2 verified again and ran that stage again
    from its start, then the rest."""
    from analysis.schema import frame

    stages, jobs, batches, videos, samples, trace = [], [], [], [], [], []
    t = 1000.0

    def stage(round_, name, attempt, span, cut=False):
        nonlocal t
        stages.append({"round": round_, "attempt": attempt, "stage": name, "started_at": t, "outcome": "running"})
        if cut:
            stages.append({"round": round_, "attempt": attempt, "stage": name, "started_at": t, "finished_at": None,
                           "outcome": "interrupted", "detail": "cut"})
        else:
            stages.append({"round": round_, "attempt": attempt, "stage": name, "started_at": t,
                           "finished_at": t + span, "outcome": "completed"})
        for i, service in enumerate(("server", "tts")):
            samples.append({"round": round_, "attempt": attempt, "stage": name, "t": t + i, "service": service,
                            "processes": 1, "cpu_percent": 10.0, "rss_bytes": (100 + 10 * attempt) * 2**20})
        t += span + 5  # a gap between stages: in no stage's span

    def job(round_, name, attempt, level, batch, slot, outcome="succeeded"):
        job_id = f"r{round_}a{attempt}{name}{level}{batch}{slot}"
        ok = outcome == "succeeded"
        jobs.append({"round": round_, "attempt": attempt, "job_id": job_id, "stage": name, "level": level,
                     "batch": batch, "slot": slot, "outcome": outcome, "succeeded": ok,
                     "total_seconds": 10.0 + round_ if ok else None, "server_status": "completed" if ok else None})
        trace.append({"round": round_, "attempt": attempt, "job_id": job_id, "stage": name, "t": t,
                      "status": "completed" if ok else "processing"})
        if ok:
            videos.append({"round": round_, "attempt": attempt, "job_id": job_id, "stage": name, "ok": True,
                           "video_seconds": 5.0, "width": 1280, "height": 720})

    def batch(round_, name, attempt, level, number):
        batches.append({"round": round_, "attempt": attempt, "stage": name, "level": level, "batch": number,
                        "jobs": level, "wall_seconds": 12.0})

    def load_round(round_, attempt, cut_concurrent=False, skip=()):
        for name in ("single", "concurrent", "latency", "sequential"):
            if name in skip:
                continue
            if name == "single":
                job(round_, name, attempt, 1, 0, 0)
                batch(round_, name, attempt, 1, 0)
            elif name == "concurrent":
                job(round_, name, attempt, 2, 0, 0)
                job(round_, name, attempt, 2, 0, 1, "interrupted" if cut_concurrent else "succeeded")
                if not cut_concurrent:
                    batch(round_, name, attempt, 2, 0)
            elif name == "sequential":
                job(round_, name, attempt, 1, 0, 0)
                batch(round_, name, attempt, 1, 0)
            stage(round_, name, attempt, 20.0, cut=cut_concurrent and name == "concurrent")
            if cut_concurrent and name == "concurrent":
                return

    stage(1, "verification", 1, 1.0)
    load_round(1, 1)
    stage(2, "verification", 1, 1.0)
    load_round(2, 1, cut_concurrent=True)
    t += 3600  # an hour between the crash and the resume: in no round's seconds
    stage(2, "verification", 2, 1.0)
    load_round(2, 2, skip=("single",))
    stage(2, "conformance", 2, 1.0)
    latency = [{"round": r, "attempt": r, "endpoint": "health", "i": i, "t": 1.0, "ms": 5.0, "ok": True}
               for r in (1, 2) for i in range(5)]
    rows = {"stages": stages, "jobs": jobs, "batches": batches, "videos": videos, "samples": samples,
            "status_trace": trace, "latency": latency}
    return {name: frame(name, part) for name, part in rows.items()}


def test_a_stage_run_again_counts_its_re_run_only_and_the_cut_attempt_is_told_in_words():
    from analysis.metrics import compute_metrics
    from analysis.rounds import set_aside_reruns
    from artifacts.console import console_summary
    from artifacts.markdown import render_reports

    frames = resumed_campaign_frames()
    counted, aside = set_aside_reruns(frames)
    assert sorted(job_keys(counted["jobs"])) == sorted(planned(2))  # every planned job exactly once
    assert counted["jobs"]["succeeded"].all()
    # the cut attempt's finished job as well as its interrupted one, and every row of its stage
    assert sorted(aside["jobs"].select("round", "attempt", "slot", "outcome").rows()) == [
        (2, 1, 0, "succeeded"), (2, 1, 1, "interrupted")]
    assert set(aside) == {"stages", "jobs", "videos", "samples", "status_trace"}
    # round 2's verification too: a resume verifies its new stack again
    assert set(aside["stages"].select("round", "stage").rows()) == {(2, "concurrent"), (2, "verification")}

    manifest = {"attempts": [{"attempt": 1}, {"attempt": 2}], "profile": {"target": {"bundled_stack": True}}}
    metrics = compute_metrics(frames, manifest, [])
    [level] = metrics.levels
    assert (level.jobs, level.success.k, level.success.n, level.interrupted) == (4, 4, 4, 0)
    assert metrics.interrupted_jobs == 0 and metrics.all_jobs.n == 8
    assert [figures.jobs for figures in metrics.rounds.per_round] == [4, 4]
    # a round's seconds: its four stages' own spans (20 s each), no verification, conformance, gap or crash hour
    assert [figures.seconds for figures in metrics.rounds.per_round] == [80.0, 80.0]
    sentences = [run.sentence for run in metrics.cut_runs]
    assert ("round 2 concurrent: 2 jobs (1 succeeded, 1 interrupted), 1 video, 2 status answers and 2 resource samples "
            "of the cut attempt 1 are not counted: the stage was run again by attempt 2") in sentences
    reports = render_reports(metrics)
    assert sentences[-1] in reports["integration_reliability_report.md"]
    single = reports["test_single_request.md"]
    assert "Pooled over 2 rounds (one single request each), 2 of 2 (100.0 %) delivered a verified video in a " \
           "median of 11.50 s (min 11.00, max 12.00, n=2)." in single
    assert "| round | attempt | job |" in single  # jobs of two rounds and two starts: each says which
    assert "| round | attempt | level | batch | job |" in reports["test_concurrent_runs.md"]
    one_round = render_reports(compute_metrics({name: table.filter(pl.col("round") == 1)
                                                for name, table in frames.items()}, {}, []))
    assert "\n| job | document |" in one_round["test_single_request.md"]  # one round, one start: as before
    summary = console_summary(metrics, "/runs/x")
    assert "  single request:   2 of 2 (100.0 %) verified; median 11.50 s (n=2), pooling 2 rounds" in summary
    assert "  concurrency 2:    4 of 4 (100.0 %) verified" in summary


def test_a_resume_whose_single_request_was_cut_counts_its_re_run_once():
    from analysis.metrics import compute_metrics
    from analysis.schema import frame

    def row(attempt, outcome, t):
        return {"round": 1, "attempt": attempt, "stage": "single", "started_at": t, "finished_at": t + 10,
                "outcome": outcome}

    frames = {"stages": frame("stages", [row(1, "running", 0.0), row(1, "interrupted", 0.0), row(2, "running", 50.0),
                                         row(2, "completed", 50.0)]),
              "jobs": frame("jobs", [
                  {"round": 1, "attempt": 1, "job_id": "cut", "stage": "single", "level": 1, "batch": 0, "slot": 0,
                   "outcome": "interrupted"},
                  {"round": 1, "attempt": 2, "job_id": "again", "stage": "single", "level": 1, "batch": 0, "slot": 0,
                   "outcome": "succeeded", "succeeded": True, "total_seconds": 9.0}])}
    metrics = compute_metrics(frames, {"attempts": [{"attempt": 1}, {"attempt": 2}]}, [])
    assert [job.job_id for job in metrics.jobs_of("single")] == ["again"] and metrics.single.success.n == 1
    assert metrics.cut_runs[0].sentence == ("round 1 single: 1 job (1 interrupted) of the cut attempt 1 is not "
                                            "counted: the stage was run again by attempt 2")


def test_an_rss_trend_across_a_resume_says_it_spans_a_restarted_stack():
    from analysis.metrics import RoundFigures, restarted_note

    def rounds(*attempts):
        return [RoundFigures.model_construct(round=number, attempts=list(of)) for number, of in
                enumerate(attempts, start=1)]

    assert restarted_note(rounds([1], [1], [1], [1])) == ""
    assert restarted_note(rounds([1], [1], [2], [2])) == \
        "; round 3 onwards (attempt 2) measured a restarted stack (resume), so the slope spans 2 starts of it"
    # round 2 cut mid-way: its samples are of both stacks
    assert restarted_note(rounds([1], [1, 2], [2], [3])) == ("; round 2 onwards (attempt 2) and round 4 onwards "
                                                             "(attempt 3) measured a restarted stack (resume), so the "
                                                             "slope spans 3 starts of it")
