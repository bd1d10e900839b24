"""One job under test: submit a document, follow it to a terminal status, download and check its video.

A job under test is never retried (a retried job would hide a failure); the download is, because a
dropped connection on the way back says nothing about the service's ability to make the video.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import time
from pathlib import Path

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from analysis.tracking import TERMINAL, phase_durations, tracking_problems
from analysis.video import check_video, parse_resolution
from profiles.settings import Profile
from tasks import http
from tasks.http import BadResponse
from tasks.http import chunks_within as _chunks_until
from tasks.http import whole_answer as _answer
from tasks.services import Services
from tasks.store import Ledger

REQUIRED = {"job_id": str, "status": str}
OPTIONAL = {"phase": str, "message": str, "progress": int, "created_at": str, "updated_at": str,
            "completed_at": str, "result": dict, "errors": list}


def job_object(status_code: int, body: bytes) -> dict:
    """A job status object as the contract defines it, or BadResponse saying what is wrong with it."""
    try:
        job = json.loads(body)
    except ValueError:
        raise BadResponse(f"HTTP {status_code}, body is not JSON: {body[:120]!r}") from None
    if not isinstance(job, dict):
        raise BadResponse(f"HTTP {status_code}, not a job status object: {str(job)[:120]}")
    for field, kind in REQUIRED.items():
        if not isinstance(job.get(field), kind):
            raise BadResponse(f"HTTP {status_code}, job status object without a {kind.__name__} {field}: "
                              f"{str(job)[:160]}")
    for field, kind in OPTIONAL.items():
        value = job.get(field)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise BadResponse(f"HTTP {status_code}, job {field} is {value!r}, not a {kind.__name__} or null")
    return job


def _observation(job: dict, t: float) -> dict:
    fields = ("status", "phase", "progress", "created_at", "completed_at")
    return {"t": t, **{field: job.get(field) for field in fields}}


def _submit(client: httpx.Client, profile: Profile, document: Path) -> dict:
    endpoints = profile.target.endpoints
    content_type = mimetypes.guess_type(document.name)[0] or "application/octet-stream"
    with document.open("rb") as handle:
        upload = {endpoints.upload_field: (document.name, handle, content_type)}
        status_code, body = _answer(client, "POST", endpoints.generate, profile.timing.upload_timeout_s, files=upload)
    if status_code not in (200, 201, 202):
        raise BadResponse(f"upload answered HTTP {status_code}: {body[:200].decode(errors='replace')}")
    return job_object(status_code, body)


class Follower:
    """Polls one job's status, recording every observation as it is taken."""

    def __init__(self, client: httpx.Client, profile: Profile, ledger: Ledger, job_id: str, stage: str,
                 deadline: float) -> None:
        self.client, self.profile, self.ledger = client, profile, ledger
        self.job_id, self.stage, self.deadline = job_id, stage, deadline
        self.path = profile.target.endpoints.status.format(job_id=job_id)
        self.trace: list[dict] = []
        self.last: dict = {}

    def poll(self) -> dict:
        seconds = min(self.profile.timing.request_timeout_s, self.deadline - time.monotonic())
        job = job_object(*_answer(self.client, "GET", self.path, seconds))
        observation = _observation(job, time.time())
        self.trace.append(observation)
        self.ledger.record("status_trace", job_id=self.job_id, stage=self.stage, **observation)
        self.last = job
        return job

    def until_terminal(self, interval_s: float) -> str | None:
        """Poll until a terminal status (None) or the deadline or a target that stopped answering (why)."""
        failing_since, error = None, None
        while time.monotonic() < self.deadline:
            try:
                if self.poll()["status"] in TERMINAL:
                    return None
                failing_since = None
            except (httpx.HTTPError, BadResponse) as exc:
                failing_since, error = failing_since or time.monotonic(), f"status poll failed: {exc}"
                if time.monotonic() - failing_since >= self.profile.timing.poll_failure_s:
                    return f"{error} (for {self.profile.timing.poll_failure_s:.0f} s, gave up)"
            time.sleep(interval_s)
        seen = self.trace[-1]["status"] if self.trace else "never seen"
        return f"timed out after {self.profile.timing.job_timeout_s:.0f} s (last status: {seen})"


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _result_fields(job: dict) -> dict:
    result = job.get("result") if isinstance(job.get("result"), dict) else {}
    video = result.get("video") if isinstance(result.get("video"), dict) else {}
    errors = result.get("errors") or job.get("errors") or []
    return {
        "processing_seconds": _number(result.get("processing_time_seconds")),
        "video_seconds": _number(video.get("duration_seconds")),
        "size_bytes": _number(video.get("size_bytes")),
        "resolution": video.get("resolution") if isinstance(video.get("resolution"), str) else None,
        "scenes": _number(result.get("script_scenes")),
        "error": "; ".join(str(e) for e in (errors if isinstance(errors, list) else [errors]) if e) or None,
    }


def _follow_job(row: dict, client: httpx.Client, profile: Profile, ledger: Ledger, document: Path,
                deadline: float, poll_interval_s: float) -> None:
    """Submit, follow to the end and fill `row` in as facts arrive (so a failure keeps what is known)."""
    job = _submit(client, profile, document)
    row.update(job_id=job["job_id"], status=job["status"])
    follower = Follower(client, profile, ledger, job["job_id"], row["stage"], deadline)
    problem = follower.until_terminal(poll_interval_s)
    trace = follower.trace
    status = trace[-1]["status"] if trace else job["status"]
    finished_at = trace[-1]["t"] if status in TERMINAL else time.time()
    if status in TERMINAL:
        # Look once more, a poll later: a terminal status must stay terminal.
        time.sleep(poll_interval_s)
        with contextlib.suppress(httpx.HTTPError, BadResponse):
            follower.poll()
    durations = phase_durations(trace, row["submitted_at"], finished_at if status in TERMINAL else None)
    row.update(
        finished_at=finished_at, total_seconds=finished_at - row["submitted_at"], status=status,
        succeeded=status == "completed", observations=len(trace),
        tracking_problems="; ".join(tracking_problems(trace)) or None,
        **{f"{name}_s": seconds for name, seconds in durations.items()},
        **_result_fields(follower.last or job),
    )
    if problem:
        row["error"] = "; ".join(filter(None, [problem, row.get("error")]))


@task(name="measure-job", cache_policy=NO_CACHE, retries=0,
      task_run_name="measure-job-{stage}-{level}-{batch}-{slot}")
def measure_job(profile: Profile, services: Services, run_dir: str, document: str, stage: str,
                level: int, batch: int, slot: int, poll_interval_s: float) -> dict:
    """Submit one document and follow the job to its end, polling its status every `poll_interval_s`;
    returns (and records) its `jobs` row. Never retried (retries=0 explicitly, whatever Prefect's
    default): a retried job under test would hide a failure."""
    ledger = Ledger.of(run_dir)
    row = {"job_id": None, "stage": stage, "level": level, "batch": batch, "document": Path(document).name,
           "status": "not_submitted", "succeeded": False, "observations": 0, "submitted_at": time.time()}
    deadline = time.monotonic() + profile.timing.job_timeout_s
    try:
        with http.client(base_url=services.server) as client:
            _follow_job(row, client, profile, ledger, Path(document), deadline, poll_interval_s)
    except (httpx.HTTPError, BadResponse, OSError) as exc:
        step = "submit failed" if row["job_id"] is None else "measurement failed"
        row["error"] = f"{step}: {exc}"
    except Exception as exc:  # a target answering the unforeseen must not lose what is known of the job
        row["error"] = f"measurement failed: {type(exc).__name__}: {exc}"
    if row.get("error") and "finished_at" not in row:
        row["finished_at"] = time.time()
        row["total_seconds"] = row["finished_at"] - row["submitted_at"]
    ledger.record("jobs", **row)
    get_run_logger().info("%s job %s (level %s, batch %s): %s in %.1f s%s", stage, row["job_id"], level, batch,
                          row["status"], row["total_seconds"], f" — {row['error']}" if row.get("error") else "")
    return row


@task(name="download-video", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2,
      task_run_name="download-{job_id}")
def download_video(profile: Profile, services: Services, job_id: str, destination: str) -> str:
    """Stream the job's video to `destination` within the download timeout (the whole transfer, not
    each read); returns its SHA-256. Retried: a dropped transfer is not the test."""
    url = services.server + profile.target.endpoints.download.format(job_id=job_id)
    seconds = profile.timing.download_timeout_s
    ends = time.monotonic() + seconds
    digest = hashlib.sha256()
    partial = Path(destination + ".part")
    partial.parent.mkdir(parents=True, exist_ok=True)
    late = f"download of {job_id} not complete within {seconds:.0f} s"
    try:
        with http.client(timeout=seconds) as session, session.stream("GET", url) as response:
            chunks = _chunks_until(response, ends, late)
            if response.status_code != 200:
                head = next(chunks, b"")[:200].decode(errors="replace")
                raise BadResponse(f"download of {job_id} answered HTTP {response.status_code}: {head}")
            with partial.open("wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    out.write(chunk)
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest()


@task(name="check-video", cache_policy=NO_CACHE, task_run_name="check-video-{job_id}")
def check_video_integrity(profile: Profile, run_dir: str, job_id: str, stage: str, path: str, reported: dict,
                          second_sha256: str | None) -> dict:
    """Decode the whole video and record its integrity row (with whether a second download hashed the same).

    `reported` is the job's row: the video must match the duration and resolution the target reported
    (the profile's expected resolution when the target reported none).
    """
    thresholds = profile.thresholds
    seconds = _number(reported.get("video_seconds"))
    reported_seconds = seconds if seconds and seconds > 0 else None
    resolution = reported.get("resolution") or thresholds.expected_resolution
    try:
        parse_resolution(resolution)
        malformed = False
    except ValueError:
        malformed = True
    verdict = check_video(path, expected_resolution=thresholds.expected_resolution if malformed else resolution,
                          reported_seconds=reported_seconds, duration_tolerance=thresholds.duration_tolerance,
                          black_luma=thresholds.black_luma, silent_dbfs=thresholds.silent_dbfs)
    problems = [verdict.as_row()["problems"]]
    if malformed:
        problems.append(f"target reported resolution {resolution!r}, not WIDTHxHEIGHT")
    if reported_seconds is None:
        problems.append(f"target reported duration {reported.get('video_seconds')!r}, not a positive number")
    stable = second_sha256 is not None and second_sha256 == verdict.sha256
    if not stable:
        problems.append("second download failed" if second_sha256 is None else "second download hashed differently")
    row = verdict.as_row() | {"problems": "; ".join(filter(None, problems))}
    row["ok"] = not row["problems"]
    row.update(job_id=job_id, stage=stage, second_sha256=second_sha256, hash_stable=stable,
               reported_seconds=reported_seconds)
    Ledger.of(run_dir).record("videos", **row)
    return row
