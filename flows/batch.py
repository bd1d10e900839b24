"""The one way jobs are run under test: a batch started together, then every video fetched and checked.

Single, concurrent and sequential stages differ only in how many jobs a batch holds and how many
batches follow each other. Videos are downloaded and decoded after the batch has ended, so checking
them never competes for CPU with the jobs being timed.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger
from prefect.futures import as_completed

from artifacts.publish import report_progress
from profiles.settings import Profile
from tasks.jobs import check_video_integrity, download_video, measure_job
from tasks.services import Services
from tasks.store import Ledger

VIDEO_STATUSES = ("completed", "completed_with_errors")


def run_batch(profile: Profile, services: Services, run_dir: str, stage: str, level: int, batch: int,
              documents: list[Path], progress_id: str | None, total_jobs: int,
              poll_interval_s: float | None = None) -> list[dict]:
    """Start one job per document at once; wait for all; check every video; return the jobs' rows.

    Jobs are polled every `poll_interval_s` (the profile's poll interval unless given)."""
    logger = get_run_logger()
    ledger = Ledger.of(run_dir)
    timing = profile.timing
    measure = measure_job.with_options(timeout_seconds=timing.job_timeout_s + timing.upload_timeout_s + 30)
    started_at = time.time()
    interval = poll_interval_s or timing.poll_interval_s
    futures = [measure.submit(profile, services, run_dir, str(doc), stage, level, batch, slot, interval)
               for slot, doc in enumerate(documents)]
    rows = []
    for future in as_completed(futures):
        row = future.result(raise_on_failure=False)
        if isinstance(row, BaseException):  # the task itself broke (e.g. its timeout): still a failed job
            row = {"stage": stage, "level": level, "batch": batch, "status": "not_finished", "succeeded": False,
                   "error": f"measure-job task failed: {row!r}"}
            ledger.record("jobs", **row)
        rows.append(row)
        report_progress(run_dir, progress_id, total_jobs)
    finished = [r["finished_at"] for r in rows if r.get("finished_at")]
    finished_at = max(finished) if finished else time.time()
    ledger.record("batches", stage=stage, level=level, batch=batch, jobs=len(documents), started_at=started_at,
                  finished_at=finished_at, wall_seconds=finished_at - started_at)
    for row in rows:
        if row.get("status") in VIDEO_STATUSES and row.get("job_id"):
            check_output(profile, services, run_dir, stage, row)
    ok = sum(1 for r in rows if r.get("succeeded"))
    logger.info("%s batch %s (level %s): %s/%s jobs completed in %.1f s wall", stage, batch, level, ok, len(rows),
                finished_at - started_at)
    return rows


def check_output(profile: Profile, services: Services, run_dir: str, stage: str, row: dict) -> None:
    """Download the job's video twice (the second only to hash it) and record its integrity."""
    job_id = row["job_id"]
    path = str(Path(run_dir) / "videos" / f"{job_id}.mp4")
    fetch = download_video.with_options(timeout_seconds=profile.timing.download_timeout_s + 10)
    first = fetch(profile, services, job_id, path, return_state=True)
    if first.is_failed():
        Ledger.of(run_dir).record("videos", job_id=job_id, stage=stage, path=path, ok=False,
                                  problems=f"download failed: {first.message}")
        return
    second_path = path + ".second"
    second = fetch(profile, services, job_id, second_path, return_state=True)
    second_sha = second.result() if second.is_completed() else None
    Path(second_path).unlink(missing_ok=True)
    check = check_video_integrity.with_options(timeout_seconds=profile.timing.check_video_timeout_s)
    checked = check(profile, run_dir, job_id, stage, path, row, second_sha, return_state=True)
    if not checked.is_completed():
        Ledger.of(run_dir).record("videos", job_id=job_id, stage=stage, path=path, ok=False, second_sha256=second_sha,
                                  problems=f"integrity check did not finish: {checked.message}")
