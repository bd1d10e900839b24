"""The one way jobs are run under test: a batch started together, then every video fetched and checked.

Single, concurrent and sequential stages differ only in how many jobs a batch holds and how many
batches follow each other. Videos are downloaded and decoded after the batch has ended, so checking
them never competes for CPU with the jobs being timed; a job's verdict (succeeded, or why not) is
recorded once its video was checked. When jobs failed, the four services are re-probed and the cause
(a service that stopped answering, since when, how it died) goes in front of each job's failure.

After a stop request no new batch starts; the jobs in flight end as interrupted within about
tasks.http.STOP_CHECK_S, and the stage returns what it has (flows.lifecycle records it interrupted).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger
from prefect.futures import as_completed

from analysis.incidents import cause, explained
from artifacts.publish import report_progress
from profiles.settings import Profile
from tasks.incidents import reprobe
from tasks.interrupt import stop_requested
from tasks.jobs import check_video_integrity, download_video, measure_job, record_job, update_job, verified_outcome
from tasks.services import Services
from tasks.store import Ledger

# outcomes a service may explain (not interrupted ones)
FAILED = ("failed", "timed_out", "stuck_pending", "not_submitted")


@dataclass
class Progress:
    """Jobs finished in this start of a campaign so far, the wall time spent running batches to finish them, and
    the campaign's plan: rounds, or a soak (rounds None) running rounds until its deadline (unix seconds)."""

    done: int = 0
    busy_s: float = 0.0
    rounds: int | None = 1
    deadline: float | None = None
    duration_s: float | None = None
    batch_started_at: float | None = None  # the batch under way, whose time counts toward the estimate
    campaign: bool = False  # a campaign's (track_campaign), not batches run on their own (the fault experiments')


_progress: dict[str, Progress] = {}  # per run folder, while its campaign runs
_progress_lock = threading.Lock()


def _run_key(run_dir: str) -> str:
    return str(Path(run_dir).resolve())


def _progress_of(run_dir: str) -> Progress:
    with _progress_lock:
        return _progress.setdefault(_run_key(run_dir), Progress())


def track_campaign(run_dir: str, rounds: int | None, deadline: float | None, duration_s: float | None) -> None:
    """Start counting a campaign's progress (its flow calls this once per start, resumed or not)."""
    with _progress_lock:
        _progress[_run_key(run_dir)] = Progress(rounds=rounds, deadline=deadline, duration_s=duration_s,
                                                campaign=True)


def forget_progress(run_dir: str) -> None:
    """Drop a run's progress once it ends, so a long-lived process (a served deployment) does not keep every run's."""
    with _progress_lock:
        _progress.pop(_run_key(run_dir), None)


def seconds_left(busy_s: float, done: int, total: int) -> float | None:
    """Time the jobs left will take at the mean batch time per finished job so far (None before the first has
    finished). Only jobs: the stages without any (baseline, latency, conformance, faults) are not counted, so it
    is not the time to the campaign's end."""
    return busy_s / done * max(0, total - done) if done > 0 else None


def in_words(seconds: float) -> str:
    """45 s, 3 min 20 s, 1 h 05 min."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_line(done: int, total: int, left: float | None) -> str:
    """'7/18 jobs done; the 11 jobs left: about 3 min 10 s': the time is the jobs', not the campaign's end."""
    line = f"{done}/{total} jobs done"
    if left is None or left < 1 or done >= total:  # below a second the estimate says nothing ("about 0 s")
        return line
    return line + f"; the {total - done} {'job' if total - done == 1 else 'jobs'} left: about {in_words(left)}"


def round_line(round_: int, rounds: int | None, deadline: float | None, now: float) -> str:
    """'round 2 of 3', or for a soak 'round 4 of a soak ending in 1 h 12 min' ('round 9 of a soak whose time is
    up: its last' once past its deadline: the round in flight finishes)."""
    if rounds is not None:
        return f"round {round_} of {rounds}"
    if deadline is None or now >= deadline:
        return f"round {round_} of a soak whose time is up: its last"
    return f"round {round_} of a soak ending in {in_words(deadline - now)}"


def report_where(run_dir: str, stage: str, progress_id: str | None, total_jobs: int) -> str:
    """Where the campaign of this run folder is and what is left, e.g. 'round 2 of 3, concurrent: 7/18 jobs done;
    the 11 jobs left: about 3 min 10 s', logged and put on the progress artifact; returns the line. A campaign of
    rounds counts its progress in jobs, a soak in time (its rounds are not counted ahead)."""
    progress = _progress_of(run_dir)
    now = time.time()
    where = f"{round_line(Ledger.of(run_dir).round, progress.rounds, progress.deadline, now)}, {stage}" \
        if progress.campaign else stage
    if progress.rounds is not None:
        busy_s = progress.busy_s + (now - progress.batch_started_at if progress.batch_started_at else 0.0)
        left = seconds_left(busy_s, progress.done, total_jobs)
        line = f"{where}: {progress_line(progress.done, total_jobs, left)}"
        share = progress.done / total_jobs if total_jobs > 0 else 0.0
    else:
        line = f"{where}: {progress.done} {'job' if progress.done == 1 else 'jobs'} done"
        share = 1 - max(0.0, progress.deadline - now) / progress.duration_s if progress.duration_s else 0.0
    get_run_logger().info("%s", line)
    report_progress(progress_id, 100.0 * share, line)
    return line


def run_batch(profile: Profile, services: Services, run_dir: str, stage: str, level: int, batch: int,
              documents: list[Path], progress_id: str | None, total_jobs: int,
              poll_interval_s: float | None = None) -> list[dict]:
    """Start one job per document at once; wait for all; check every video; return the jobs' rows.

    Jobs are polled every `poll_interval_s` (the profile's poll interval unless given)."""
    logger = get_run_logger()
    ledger = Ledger.of(run_dir)
    progress = _progress_of(run_dir)
    started_at = progress.batch_started_at = time.time()
    interval = poll_interval_s or profile.timing.poll_interval_s
    futures = {measure_job.submit(profile, services, run_dir, str(doc), stage, level, batch, slot, interval): slot
               for slot, doc in enumerate(documents)}
    rows: list[dict] = [{} for _ in documents]
    for future in as_completed(futures):
        slot = futures[future]
        row = future.result(raise_on_failure=False)
        if isinstance(row, BaseException):  # the task itself broke: still a failed job, with what it recorded
            row = {"stage": stage, "level": level, "batch": batch, "slot": slot, "document": documents[slot].name,
                   "outcome": "failed", "succeeded": False, "finished_at": time.time(),
                   "failure": f"measure-job task failed: {type(row).__name__}: {row}"}
            record_job(ledger, row)
        rows[slot] = row
        progress.done += 1
        report_where(run_dir, stage, progress_id, total_jobs)
    finished = [r["finished_at"] for r in rows if r.get("finished_at")]
    finished_at = max(finished) if finished else time.time()
    ledger.record("batches", stage=stage, level=level, batch=batch, jobs=len(documents), started_at=started_at,
                  finished_at=finished_at, wall_seconds=finished_at - started_at)
    for row in rows:
        if row.get("outcome") == "running":  # the server said it has a video: the verdict is the video's
            try:
                check_output(profile, services, run_dir, stage, row)
            except Exception as exc:  # a defect of the check must not leave the job without a verdict
                update_job(ledger, row, outcome="failed", failure=f"its video could not be checked: "
                        f"{type(exc).__name__}: {exc}")
    explain_failures(profile, services, run_dir, rows)
    progress.busy_s += time.time() - started_at
    progress.batch_started_at = None
    if not progress.campaign and progress.done >= total_jobs:  # batches on their own: forgotten once all are done
        forget_progress(run_dir)
    ok = sum(1 for r in rows if r.get("succeeded"))
    logger.info("%s batch %s (level %s): %s/%s jobs succeeded (video downloaded and verified), %.1f s wall",
                stage, batch, level, ok, len(rows), finished_at - started_at)
    return rows


def _download(profile: Profile, services: Services, job_id: str, path: str) -> dict:
    """{"sha256": ...} or {"problem": ...}; a transfer whose connection kept failing is a problem too."""
    got = download_video.submit(profile, services, job_id, path).result(raise_on_failure=False)
    if isinstance(got, BaseException):
        return {"problem": f"the download failed: {type(got).__name__}: {got}"}
    return got


def check_output(profile: Profile, services: Services, run_dir: str, stage: str, row: dict) -> None:
    """Download the job's video twice (the second only to hash it), check its integrity, record its verdict."""
    ledger = Ledger.of(run_dir)
    job_id = row["job_id"]
    path = str(Path(run_dir) / "videos" / f"{job_id}.mp4")
    integrity = None
    download_problem = None if stop_requested() else _download(profile, services, job_id, path).get("problem")
    if stop_requested():
        update_job(ledger, row, outcome="interrupted", failure="the run was stopped before its video was checked")
        return
    if not download_problem:  # only a downloaded video has a `videos` row; the job's failure says why there is none
        second_path = path + ".second"
        second_sha = _download(profile, services, job_id, second_path).get("sha256")
        Path(second_path).unlink(missing_ok=True)
        checked = check_video_integrity(profile, run_dir, job_id, stage, path, row, second_sha, return_state=True)
        if checked.is_completed():
            integrity = checked.result()["problems"] or None
        else:
            integrity = f"the check did not finish: {checked.message}"
            ledger.record("videos", job_id=job_id, stage=stage, path=path, ok=False, second_sha256=second_sha,
                          problems=integrity)
    if stop_requested():
        update_job(ledger, row, outcome="interrupted", failure="the run was stopped while its video was checked")
        return
    outcome, failure = verified_outcome(row["server_status"], row.get("server_errors"), download_problem, integrity)
    update_job(ledger, row, outcome=outcome, succeeded=outcome == "succeeded", failure=failure)


def explain_failures(profile: Profile, services: Services, run_dir: str, rows: list[dict]) -> None:
    """When jobs failed, re-probe the services; a service found failing goes in front of each failure."""
    failed = [row for row in rows if row.get("outcome") in FAILED]
    if not failed or stop_requested():
        return
    unanswered = [row["server_unanswered_at"] for row in rows if row.get("server_unanswered_at")]
    incidents = reprobe(profile, services, run_dir, {"server": min(unanswered)} if unanswered else {})
    why = cause(incidents)
    if why is None:
        return
    get_run_logger().warning("%s of %s jobs failed; %s", len(failed), len(rows), why)
    ledger = Ledger.of(run_dir)
    for row in failed:
        update_job(ledger, row, failure=explained(row["failure"], why))
