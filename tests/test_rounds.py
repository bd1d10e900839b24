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


def in_flight(run_root: Path, round_: int, stage: str) -> Path | None:
    """The run folder once its ledger shows a job of `round_`'s `stage` submitted and not yet ended."""
    for ledger in run_root.glob(f"*/{LEDGER}"):
        jobs: dict[tuple, dict] = {}
        for line in ledger.read_text().splitlines():
            if line.endswith("}") and (row := json.loads(line))["table"] == "jobs":
                key = (row.get("round"), row["stage"], row["level"], row["batch"], row["slot"])
                jobs[key] = {**jobs.get(key, {}), **row}
        if any(key[:2] == (round_, stage) and row.get("job_id") and row["outcome"] == "running"
               for key, row in jobs.items()):
            return ledger.parent
    return None


def test_resume_after_kill_9_mid_round_gives_every_planned_job_once(prefect_server, tmp_path):
    from prefect.settings import PREFECT_API_URL

    from flows.full_suite import main

    command = [sys.executable, "-m", "flows.full_suite", "--profile", "smoke", "--rounds", "2",
               "--set", f'results_dir="{tmp_path}"', "--set", "faults.enabled=false",
               *(arg for item in SMALLEST for arg in ("--set", item))]
    console = tmp_path / "console.log"
    started = time.monotonic()
    with console.open("wb") as out:
        campaign = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()})
    try:
        run = wait_until(lambda: in_flight(tmp_path, 2, "concurrent"), 180, "round 2's concurrent jobs in flight",
                         interval=0.05)
        os.killpg(campaign.pid, signal.SIGKILL)  # the campaign and its stack, at once: nothing is written after
        campaign.wait(timeout=30)
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, signal.SIGKILL)
    killed_after = time.monotonic() - started
    resumed = time.monotonic()
    assert main(["--resume", str(run)]) == 0, console.read_text()[-3000:]
    print(f"killed after {killed_after:.1f} s; the resume took {time.monotonic() - resumed:.1f} s")

    jobs = pl.read_parquet(run / "jobs.parquet")
    succeeded = jobs.filter(pl.col("succeeded"))
    assert sorted(job_keys(succeeded)) == sorted(planned(2))  # every planned job of every round once, a success
    cut = jobs.filter(pl.col("outcome") == "interrupted")
    assert cut.height >= 1 and set(cut.select("round", "attempt", "stage").rows()) == {(2, 1, "concurrent")}
    assert cut["failure"].str.contains("continued by attempt 2").all()
    assert jobs.height == succeeded.height + cut.height

    stages = last_outcomes(run)
    assert stages[(2, "concurrent")] == [(1, "interrupted"), (2, "completed")]  # the cut stage ran again
    for key in [(1, "baseline"), (1, "single"), (1, "concurrent"), (1, "latency"), (1, "sequential"),
                (2, "single")]:
        assert stages[key] == [(1, "completed")], key  # kept: not run again
    assert stages[(2, "verification")] == [(1, "completed"), (2, "completed")]  # the new stack was verified
    assert stages[(2, "sequential")] == [(2, "completed")] and stages[(2, "conformance")] == [(2, "completed")]
    services = pl.read_parquet(run / "services.parquet")
    assert services.filter((pl.col("round") == 2) & (pl.col("attempt") == 2))["ok"].to_list() == [True] * 4

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"] == "measured" and [a["attempt"] for a in manifest["attempts"]] == [1, 2]
    report = (run / "reports" / "integration_reliability_report.md").read_text()
    assert "interrupted" in report.lower()


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
