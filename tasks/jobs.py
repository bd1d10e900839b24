"""One job under test: submit a document, follow it to a terminal status, download and check its video.

A job under test is never retried (a retried job would hide a failure); the download is, because a
dropped connection on the way back says nothing about the service's ability to make the video.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import time
from pathlib import Path

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from analysis.tracking import TERMINAL, phase_durations, tracking_problems
from analysis.video import check_video
from profiles.settings import Profile
from tasks import http
from tasks.services import Services
from tasks.store import Ledger

MAX_POLL_FAILURES = 20  # consecutive failed polls before the target is declared gone for this job


class BadResponse(ValueError):
    """The target answered something the contract does not allow."""


def _job_object(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise BadResponse(f"HTTP {response.status_code}, body is not JSON: {response.text[:120]!r}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("job_id"), str) or not isinstance(body.get("status"), str):
        raise BadResponse(f"HTTP {response.status_code}, not a job status object: {str(body)[:160]}")
    return body


def _observation(job: dict, t: float) -> dict:
    progress = job.get("progress")
    return {
        "t": t, "status": job["status"], "phase": job.get("phase"),
        "progress": progress if isinstance(progress, int) else None,
        "created_at": job.get("created_at"), "completed_at": job.get("completed_at"),
    }


def _submit(client: httpx.Client, profile: Profile, document: Path) -> dict:
    endpoints = profile.target.endpoints
    content_type = mimetypes.guess_type(document.name)[0] or "application/octet-stream"
    with document.open("rb") as handle:
        upload = {endpoints.upload_field: (document.name, handle, content_type)}
        response = client.post(endpoints.generate, files=upload, timeout=profile.timing.upload_timeout_s)
    if response.status_code not in (200, 201, 202):
        raise BadResponse(f"upload answered HTTP {response.status_code}: {response.text[:200]}")
    return _job_object(response)


def _follow(client: httpx.Client, profile: Profile, ledger: Ledger, job_id: str, stage: str,
            deadline: float, poll_interval_s: float) -> tuple[list[dict], str | None]:
    """Poll until terminal, deadline or the target stops answering; every observation is recorded."""
    trace: list[dict] = []
    failures, last_error = 0, None
    path = profile.target.endpoints.status.format(job_id=job_id)
    while time.monotonic() < deadline:
        try:
            job = _job_object(client.get(path, timeout=profile.timing.request_timeout_s))
            failures = 0
        except (httpx.HTTPError, BadResponse) as exc:
            failures, last_error = failures + 1, f"status poll failed: {exc}"
            if failures >= MAX_POLL_FAILURES:
                return trace, f"{last_error} ({failures} times in a row, gave up)"
        else:
            observation = _observation(job, time.time())
            trace.append(observation)
            ledger.record("status_trace", job_id=job_id, stage=stage, **observation)
            if job["status"] in TERMINAL:
                return trace, None
        time.sleep(poll_interval_s)
    seen = trace[-1]["status"] if trace else "never seen"
    return trace, f"timed out after {profile.timing.job_timeout_s:.0f} s (last status: {seen})"


def _result_fields(job: dict) -> dict:
    result = job.get("result") if isinstance(job.get("result"), dict) else {}
    video = result.get("video") if isinstance(result.get("video"), dict) else {}
    errors = [str(e) for e in (result.get("errors") or job.get("errors") or []) if e]
    return {
        "processing_seconds": result.get("processing_time_seconds"),
        "video_seconds": video.get("duration_seconds"),
        "size_bytes": video.get("size_bytes"),
        "resolution": video.get("resolution"),
        "scenes": result.get("script_scenes"),
        "error": "; ".join(errors) or None,
    }


@task(name="measure-job", cache_policy=NO_CACHE, task_run_name="measure-job-{stage}-{level}-{batch}-{slot}")
def measure_job(profile: Profile, services: Services, run_dir: str, document: str, stage: str,
                level: int, batch: int, slot: int, poll_interval_s: float) -> dict:
    """Submit one document and follow the job to its end, polling its status every `poll_interval_s`;
    returns (and records) its `jobs` row."""
    logger = get_run_logger()
    ledger = Ledger.of(run_dir)
    document_path = Path(document)
    row = {"job_id": None, "stage": stage, "level": level, "batch": batch, "document": document_path.name,
           "status": "not_submitted", "succeeded": False, "observations": 0}
    submitted_at = time.time()
    deadline = time.monotonic() + profile.timing.job_timeout_s
    with http.client(base_url=services.server) as client:
        try:
            job = _submit(client, profile, document_path)
        except (httpx.HTTPError, BadResponse, OSError) as exc:
            row.update(submitted_at=submitted_at, finished_at=time.time(), error=f"submit failed: {exc}")
            ledger.record("jobs", **row)
            logger.warning("%s job %s/%s: submit failed: %s", stage, batch, slot, exc)
            return row
        row["job_id"] = job["job_id"]
        trace, problem = _follow(client, profile, ledger, job["job_id"], stage, deadline, poll_interval_s)
        final = job if not trace else None
        if trace:
            last_path = profile.target.endpoints.status.format(job_id=job["job_id"])
            try:
                final = _job_object(client.get(last_path, timeout=profile.timing.request_timeout_s))
            except (httpx.HTTPError, BadResponse):
                final = {"status": trace[-1]["status"]}
    finished_at = trace[-1]["t"] if trace and trace[-1]["status"] in TERMINAL else time.time()
    status = trace[-1]["status"] if trace else job["status"]
    fields = _result_fields(final)
    durations = phase_durations(trace, submitted_at, finished_at if status in TERMINAL else None)
    problems = tracking_problems(trace)
    row.update(
        submitted_at=submitted_at, finished_at=finished_at, total_seconds=finished_at - submitted_at,
        status=status, succeeded=status == "completed", observations=len(trace),
        tracking_problems="; ".join(problems) or None,
        **{f"{name}_s": seconds for name, seconds in durations.items()},
        **fields,
    )
    if problem:
        row["error"] = "; ".join(filter(None, [problem, row.get("error")]))
    ledger.record("jobs", **row)
    logger.info("%s job %s (level %s, batch %s): %s in %.1f s%s", stage, row["job_id"], level, batch, status,
                row["total_seconds"], f" — {row['error']}" if row.get("error") else "")
    return row


@task(name="download-video", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2,
      task_run_name="download-{job_id}")
def download_video(profile: Profile, services: Services, job_id: str, destination: str) -> str:
    """Stream the job's video to `destination`; returns its SHA-256. Retried: a transfer is not the test."""
    url = services.server + profile.target.endpoints.download.format(job_id=job_id)
    digest = hashlib.sha256()
    partial = Path(destination + ".part")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with http.client(timeout=profile.timing.download_timeout_s) as session, session.stream("GET", url) as response:
        if response.status_code != 200:
            response.read()
            raise BadResponse(f"download of {job_id} answered HTTP {response.status_code}: {response.text[:200]}")
        with partial.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    partial.replace(destination)
    return digest.hexdigest()


@task(name="check-video", cache_policy=NO_CACHE, task_run_name="check-video-{job_id}")
def check_video_integrity(profile: Profile, run_dir: str, job_id: str, stage: str, path: str, reported: dict,
                          second_sha256: str | None) -> dict:
    """Decode the whole video and record its integrity row (with whether a second download hashed the same).

    `reported` is the job's row: the video must match the duration and resolution the target reported
    (the profile's expected resolution when the target reported none).
    """
    thresholds = profile.thresholds
    seconds = reported.get("video_seconds")
    reported_seconds = float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None
    resolution = reported.get("resolution") or thresholds.expected_resolution
    malformed = not re.fullmatch(r"\d+x\d+", str(resolution))
    verdict = check_video(path, expected_resolution=thresholds.expected_resolution if malformed else resolution,
                          reported_seconds=reported_seconds, duration_tolerance=thresholds.duration_tolerance)
    problems = [verdict.as_row()["problems"]]
    if malformed:
        problems.append(f"target reported resolution {resolution!r}, not WIDTHxHEIGHT")
    if reported_seconds is None:
        problems.append(f"target reported duration {seconds!r}, not a positive number")
    stable = second_sha256 is not None and second_sha256 == verdict.sha256
    if not stable:
        problems.append("second download failed" if second_sha256 is None else "second download hashed differently")
    row = verdict.as_row() | {"problems": "; ".join(filter(None, problems))}
    row["ok"] = not row["problems"]
    row.update(job_id=job_id, stage=stage, second_sha256=second_sha256, hash_stable=stable,
               reported_seconds=reported_seconds)
    Ledger.of(run_dir).record("videos", **row)
    return row
