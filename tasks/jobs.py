"""One job under test: submit a document, follow it to a terminal status, download and check its video.

A job SUCCEEDS only when the server said `completed` AND its video was downloaded AND passed every
integrity check; the server's word alone is `server_status`. A job's `jobs` row is recorded when it is
submitted (outcome "running") and again as each fact arrives, so a run that stops keeps it.

The job's requests are coroutines (`tasks.http.within`): a deadline cancels a request in flight, body
included, and so does a stop request — a blocked worker thread could be stopped by neither, which is also
why no task here has a Prefect `timeout_seconds`: the deadlines below are the bound.

A job under test is never retried (a retried job would hide a failure); a download is, when its connection
dropped, because that says nothing about the service's ability to make the video.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from analysis.schema import TABLES
from analysis.tracking import TERMINAL, phase_durations, tracking_problems
from analysis.video import check_video, parse_resolution
from profiles.settings import Profile
from profiles.uploads import unique_upload
from tasks import http
from tasks.http import BadResponse, LateAnswer, pause_async, whole_answer_async, within
from tasks.interrupt import Interrupted, stop_requested
from tasks.services import Services
from tasks.store import JOB_KEY, Ledger

REQUIRED = {"job_id": str, "status": str}
OPTIONAL = {"phase": str, "message": str, "progress": int, "created_at": str, "updated_at": str,
            "completed_at": str, "result": dict, "errors": list}
VIDEO_STATUSES = ("completed", "completed_with_errors")
# given up while the server still has the job: it is cancelled there, or it could start later and load the stages
# after this one
ABANDONED = ("stuck_pending", "timed_out")
JOB_COLUMNS = frozenset(TABLES["jobs"])


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


def refusal(status_code: int, body: bytes) -> str:
    """A non-200 answer in words: the contract's `{"detail": ...}` when there is one, else the body's start."""
    text = body[:200].decode(errors="replace").strip()
    with contextlib.suppress(ValueError):
        detail = json.loads(body).get("detail") if body.lstrip().startswith(b"{") else None
        if isinstance(detail, str) and detail:
            text = detail
    return f"{status_code}: {text}" if text else str(status_code)


def no_answer(exc: Exception) -> str:
    """A request that got no usable answer, in words ("ConnectError: [Errno 111] Connection refused")."""
    return str(exc) if isinstance(exc, BadResponse) else f"{type(exc).__name__}: {exc}"


def record_job(ledger: Ledger, row: dict) -> None:
    """Record what is known of a job now (the `jobs` columns only; the table merges a job's rows)."""
    ledger.record("jobs", **{name: value for name, value in row.items() if name in JOB_COLUMNS})


def update_job(ledger: Ledger, row: dict, **fields) -> None:
    """Change fields of a job's row and record just them, beside the job's key."""
    row.update(fields)
    ledger.record("jobs", **{name: row.get(name) for name in JOB_KEY}, **fields)


# --- outcomes: what the facts of a job make of it (pure) ---

def measured_outcome(server_status: str | None, gave_up: tuple[str, str] | None,
                     server_errors: str | None) -> tuple[str, str | None]:
    """(outcome, failure) once a job was followed to its end. A job with a video stays "running": its
    verdict waits for the video (`verified_outcome`)."""
    if gave_up:
        return gave_up
    if server_status in VIDEO_STATUSES:
        return "running", None
    return "failed", f"server reported {server_status}" + (f": {server_errors}" if server_errors else "")


def verified_outcome(server_status: str, server_errors: str | None, download_problem: str | None,
                     integrity_problems: str | None) -> tuple[str, str | None]:
    """(outcome, failure) of a job the server said finished with a video, from its download and integrity."""
    if download_problem:
        return "failed", f"server said {server_status} but {download_problem}"
    if integrity_problems:
        return "failed", f"video failed integrity: {integrity_problems}"
    if server_status != "completed":
        errors = f": {server_errors}" if server_errors else ""
        return "failed", f"server reported {server_status}{errors} (its video passed every check)"
    return "succeeded", None


def server_duration(reported) -> tuple[float | None, str | None]:
    """(seconds to compare the decoded video with, problem) from the duration the server reported. A server
    that reported none (result.video.duration_seconds missing or null) gives nothing to compare with and no
    problem: the video is judged on what was decoded (video against audio). A reported duration that is not
    positive is a wrong claim, and a problem."""
    seconds = _number(reported)
    if seconds is None:
        return None, None
    if seconds <= 0:
        return None, f"server reported a duration of {seconds:g} s, not a positive number"
    return seconds, None


def stuck_pending_failure(pending_s: float) -> str:
    """Why a job given up while still `pending` (the server answering all along) has no outcome."""
    return f"never started (stuck pending {pending_s:.0f} s)"


def stopped_failure(uploading: bool, job_id: str | None, server_status: str | None) -> str:
    """Why an interrupted job has no outcome, from what had been seen of it."""
    if job_id is None:
        return "the run was stopped while the document was being uploaded" if uploading \
            else "the run was stopped before the job was submitted"
    return f"the run was stopped while the job was {server_status or 'not yet seen'}"


def job_line(row: dict) -> str:
    """The log line of a job once followed: what the server said, or why it was never submitted."""
    slot = f"(level {row['level']}, batch {row['batch']}, slot {row['slot']})"
    if row.get("job_id") is None:
        return f"{row['stage']} job {slot} not submitted: {row.get('failure')}"
    failure = f" — {row['outcome']}: {row['failure']}" if row.get("failure") else ""
    return (f"{row['stage']} job {row['job_id']} {slot}: server said {row.get('server_status') or 'nothing'} "
            f"after {row['total_seconds']:.1f} s{failure}")


# --- following a job ---

def _observation(job: dict, t: float, answer: str) -> dict:
    """A status answer as `status_trace` keeps it: its fields as given (`result` and `errors` as JSON text) and
    which answer it was ("submit": the 202 to the upload; "poll")."""
    fields = ("status", "phase", "progress", "created_at", "completed_at", "updated_at", "message")
    return {"t": t, "answer": answer, **{field: job.get(field) for field in fields},
            **{field: None if job.get(field) is None else json.dumps(job[field]) for field in ("result", "errors")}}


def _readable(status_code: int, body: bytes) -> dict | None:
    """What can be read of a 200 status answer that is not a job status object: its fields of the right type
    (the others null); None for an answer that is no status answer at all (an error status)."""
    if status_code != 200:
        return None
    try:
        raw = json.loads(body)
    except ValueError:
        raw = None
    raw = raw if isinstance(raw, dict) else {}
    kinds = REQUIRED | OPTIONAL
    return {field: value for field, value in raw.items()
            if field in kinds and isinstance(value, kinds[field]) and not isinstance(value, bool)}


def document_upload(profile: Profile, document: Path) -> dict:
    """The multipart `files` of an upload of `document` as the profile sends it: with a nonce line of its own
    unless workload.unique_documents is off (no job may be a server cache hit of another job's document)."""
    content_type = mimetypes.guess_type(document.name)[0] or "application/octet-stream"
    data = document.read_bytes()
    if profile.workload.unique_documents:
        data = unique_upload(document.name, data, uuid.uuid4().hex)
    return {profile.target.endpoints.upload_field: (document.name, data, content_type)}


def record_status_answer(ledger: Ledger, job_id: str, stage: str, status_code: int, body: bytes,
                         answer: str = "poll") -> tuple[dict, dict]:
    """(job status object, its `status_trace` row) of one status answer (`answer`: "poll", or "submit" for the
    upload's), recorded as it came; BadResponse when it is no job status object (a 200 one breaking the contract's
    types is recorded too, with why: it is a conformance observation)."""
    try:
        job = job_object(status_code, body)
    except BadResponse as exc:
        if (readable := _readable(status_code, body)) is not None:
            ledger.record("status_trace", job_id=job_id, stage=stage, rejected=str(exc),
                          **_observation(readable, time.time(), answer))
        raise
    observation = _observation(job, time.time(), answer)
    ledger.record("status_trace", job_id=job_id, stage=stage, **observation)
    return job, observation


async def _submit(client: httpx.AsyncClient, profile: Profile, document: Path) -> dict:
    endpoints = profile.target.endpoints
    status_code, body = await whole_answer_async(client, "POST", endpoints.generate, profile.timing.upload_timeout_s,
                                                 files=document_upload(profile, document))
    if status_code not in (200, 201, 202):
        raise BadResponse(f"upload answered HTTP {refusal(status_code, body)}")
    return job_object(status_code, body)


async def _cancel_abandoned(client: httpx.AsyncClient, profile: Profile, job_id: str) -> str:
    """Cancel a job given up while the server still has it: one request within timing.request_timeout_s, never
    retried, ended by a stop request; what came of it in words, for the job's `failure`."""
    path = profile.target.endpoints.cancel.format(job_id=job_id)
    try:
        status_code, body = await whole_answer_async(client, "POST", path, profile.timing.request_timeout_s)
    except Interrupted:
        return "not cancelled on the server: the run was stopped"
    except (httpx.HTTPError, BadResponse) as exc:
        return f"not cancelled on the server: the cancel got no answer ({no_answer(exc)})"
    if 200 <= status_code < 300:
        return f"cancelled on the server ({status_code})"
    return f"the cancel answered {refusal(status_code, body)}"


class Follower:
    """Polls one job's status, recording every observation as it is taken and keeping `row` up to date."""

    def __init__(self, client: httpx.AsyncClient, profile: Profile, ledger: Ledger, row: dict,
                 deadline: float) -> None:
        self.client, self.profile, self.ledger, self.row, self.deadline = client, profile, ledger, row, deadline
        self.path = profile.target.endpoints.status.format(job_id=row["job_id"])
        self.trace: list[dict] = []
        self.last: dict = {}
        # from the 202 answer on; a job that answered `pending` every time since has not started
        self.pending_since = time.monotonic() if row.get("server_status") == "pending" else None

    async def poll(self) -> dict:
        seconds = min(self.profile.timing.request_timeout_s, self.deadline - time.monotonic())
        asked_at = time.time()
        try:
            status_code, body = await whole_answer_async(self.client, "GET", self.path, seconds)
        except (httpx.TransportError, LateAnswer):
            if seconds > 0:  # asked, and no whole answer came (none, or one trickling in): since when, for the cause
                self.row.setdefault("server_unanswered_at", asked_at)
            raise
        job, observation = record_status_answer(self.ledger, self.row["job_id"], self.row["stage"], status_code, body)
        self.trace.append(observation)
        self.last = job
        if job["status"] != "pending":
            self.pending_since = None
        if job["status"] != self.row.get("server_status"):  # on record at once: a killed run keeps the last seen
            update_job(self.ledger, self.row, server_status=job["status"], observations=len(self.trace))
        self.row["observations"] = len(self.trace)
        return job

    async def until_terminal(self, interval_s: float) -> tuple[str, str] | None:
        """Poll until a terminal status (None), else (outcome, failure): the deadline passed, the target
        stopped answering, or it answers but the job stays `pending` past timing.pending_timeout_s (a stall, given
        up without waiting the whole job timeout). Interrupted at a stop request."""
        timing = self.profile.timing
        failing_since, error = None, None
        while time.monotonic() < self.deadline:
            try:
                if (await self.poll())["status"] in TERMINAL:
                    return None
                failing_since = None
                pending_s = None if self.pending_since is None else time.monotonic() - self.pending_since
                if pending_s is not None and pending_s > timing.pending_timeout_s:  # the server answers: a stall
                    return "stuck_pending", stuck_pending_failure(pending_s)
            except (httpx.HTTPError, BadResponse) as exc:
                failing_since, error = failing_since or time.monotonic(), f"status poll failed: {no_answer(exc)}"
                if time.monotonic() - failing_since >= timing.poll_failure_s:
                    return "failed", f"{error} (for {timing.poll_failure_s:g} s, gave up)"
            if await pause_async(interval_s):
                raise Interrupted("the job")
        seen = self.trace[-1]["status"] if self.trace else "never seen"
        return "timed_out", f"timed out after {timing.job_timeout_s:g} s (last status: {seen})"

    def submitted(self, job: dict) -> None:
        """Record the 202 answer to the upload as the job's first status answer (its created_at is the one the
        contract says must stay); not a poll, so not in `trace`."""
        self.ledger.record("status_trace", job_id=self.row["job_id"], stage=self.row["stage"],
                           **_observation(job, time.time(), "submit"))

    def terminal_at(self) -> float | None:
        return next((obs["t"] for obs in self.trace if obs["status"] in TERMINAL), None)


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _result_fields(job: dict) -> dict:
    result = job.get("result") if isinstance(job.get("result"), dict) else {}
    video = result.get("video") if isinstance(result.get("video"), dict) else {}
    errors = result.get("errors") or job.get("errors") or []
    return {
        "processing_seconds": _number(result.get("processing_time_seconds")),
        "reported_video_seconds": _number(video.get("duration_seconds")),
        "size_bytes": _number(video.get("size_bytes")),
        "resolution": video.get("resolution") if isinstance(video.get("resolution"), str) else None,
        "scenes": _number(result.get("script_scenes")),
        # not a column: the server's own errors go into `failure` when the job is not a success
        "server_errors": "; ".join(str(e) for e in (errors if isinstance(errors, list) else [errors]) if e) or None,
    }


def _summarise(row: dict, follower: Follower, first_answer: dict) -> None:
    """What the polls saw: time per phase, tracking problems, the server's result fields."""
    terminal_at = follower.terminal_at()
    durations = phase_durations(follower.trace, row["submitted_at"], terminal_at)
    row.update(observations=len(follower.trace), tracking_problems="; ".join(tracking_problems(follower.trace)) or None,
               **{f"{name}_s": seconds for name, seconds in durations.items()},
               **_result_fields(follower.last or first_answer))
    if terminal_at is not None:
        row.update(finished_at=terminal_at, total_seconds=terminal_at - row["submitted_at"])


async def _follow_job(row: dict, client: httpx.AsyncClient, profile: Profile, ledger: Ledger, document: Path,
                      deadline: float, poll_interval_s: float) -> tuple[str, str] | None:
    """Submit, follow to the end and fill `row` in as facts arrive (so a failure keeps what is known);
    None when a terminal status was seen, else (outcome, failure)."""
    job = await _submit(client, profile, document)
    row.update(job_id=job["job_id"], server_status=job["status"])
    record_job(ledger, row)
    follower = Follower(client, profile, ledger, row, deadline)
    follower.submitted(job)
    try:
        gave_up = await follower.until_terminal(poll_interval_s)
        if gave_up is not None and gave_up[0] in ABANDONED:
            outcome, failure = gave_up
            gave_up = outcome, f"{failure}; {await _cancel_abandoned(client, profile, row['job_id'])}"
        if gave_up is None and not await pause_async(poll_interval_s):
            # Look once more, a poll later: a terminal status must stay terminal (tracking_problems says if not).
            with contextlib.suppress(httpx.HTTPError, BadResponse, Interrupted):
                await follower.poll()
        return gave_up
    finally:
        _summarise(row, follower, job)


@task(name="measure-job", cache_policy=NO_CACHE, retries=0,
      task_run_name="measure-job-{stage}-{level}-{batch}-{slot}")
async def measure_job(profile: Profile, services: Services, run_dir: str, document: str, stage: str,
                      level: int, batch: int, slot: int, poll_interval_s: float) -> dict:
    """Submit one document and follow the job to its end, polling its status every `poll_interval_s`;
    returns its row (recorded at submission and again at the end; a job with a video stays "running"
    until `flows.batch` has checked it). Never retried (retries=0 explicitly, whatever Prefect's default):
    a retried job under test would hide a failure."""
    ledger = Ledger.of(run_dir)
    row = {"job_id": None, "stage": stage, "level": level, "batch": batch, "slot": slot,
           "document": Path(document).name, "outcome": "running", "succeeded": False, "observations": 0,
           "submitted_at": time.time()}
    deadline = time.monotonic() + profile.timing.job_timeout_s
    uploading = False
    try:
        if stop_requested():
            raise Interrupted("the job")
        record_job(ledger, row)
        uploading = True
        async with http.async_client(base_url=services.server) as client:
            gave_up = await _follow_job(row, client, profile, ledger, Path(document), deadline, poll_interval_s)
        outcome, failure = measured_outcome(row["server_status"], gave_up, row.get("server_errors"))
    except Interrupted:
        outcome, failure = "interrupted", stopped_failure(uploading, row["job_id"], row.get("server_status"))
    except (httpx.HTTPError, BadResponse, OSError) as exc:
        if row["job_id"] is None:
            if isinstance(exc, httpx.TransportError | LateAnswer):
                row["server_unanswered_at"] = row["submitted_at"]
            outcome, failure = "not_submitted", f"submit failed: {no_answer(exc)}"
        else:
            outcome, failure = "failed", f"measurement failed: {no_answer(exc)}"
    except Exception as exc:  # a target answering the unforeseen must not lose what is known of the job
        outcome, failure = "failed", f"measurement failed: {type(exc).__name__}: {exc}"
    row.update(outcome=outcome, failure=failure)
    if "finished_at" not in row:
        row["finished_at"] = time.time()
        row["total_seconds"] = row["finished_at"] - row["submitted_at"]
    record_job(ledger, row)
    get_run_logger().info("%s", job_line(row))
    return row


def _retry_dropped_download(task, task_run, state) -> bool:
    """Retry a download only when its connection failed, never after a stop request."""
    return isinstance(state.data, httpx.TransportError) and not stop_requested()


@task(name="download-video", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2,
      retry_condition_fn=_retry_dropped_download, task_run_name="download-{job_id}")
async def download_video(profile: Profile, services: Services, job_id: str, destination: str) -> dict:
    """Stream the job's video to `destination`, the whole transfer within the download timeout.

    Returns {"sha256": hex} or {"problem": "the download answered 404: No video found"} (a refusal, a late
    transfer or a stop is the answer, not retried); raises only when the connection failed (retried)."""
    url = services.server + profile.target.endpoints.download.format(job_id=job_id)
    seconds = profile.timing.download_timeout_s
    partial = Path(destination + ".part")
    partial.parent.mkdir(parents=True, exist_ok=True)

    async def transfer() -> dict:
        digest = hashlib.sha256()
        async with http.async_client(timeout=seconds) as session, session.stream("GET", url) as response:
            if response.status_code != 200:
                head = b""
                async for chunk in response.aiter_bytes():
                    head += chunk
                    if len(head) >= 2000:
                        break
                return {"problem": f"the download answered {refusal(response.status_code, head)}"}
            with partial.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    out.write(chunk)
        partial.replace(destination)
        return {"sha256": digest.hexdigest()}

    try:
        return await within(transfer(), seconds, f"the download was not complete within {seconds:g} s")
    except LateAnswer as exc:
        return {"problem": str(exc)}
    except Interrupted:
        return {"problem": "the run was stopped during the download"}
    finally:
        partial.unlink(missing_ok=True)


def _decode_bound(seconds: float) -> Callable[[], str | None]:
    """Why decoding must stop now (its time is up, or the run is stopping), else None."""
    ends = time.monotonic() + seconds

    def reason() -> str | None:
        if stop_requested():
            return "the run was stopped"
        return f"not done within {seconds:g} s" if time.monotonic() > ends else None

    return reason


@task(name="check-video", cache_policy=NO_CACHE, task_run_name="check-video-{job_id}")
def check_video_integrity(profile: Profile, run_dir: str, job_id: str, stage: str, path: str, reported: dict,
                          second_sha256: str | None) -> dict:
    """Decode the whole video (within check_video_timeout_s) and record its integrity row, with whether a
    second download hashed the same.

    `reported` is the job's row: the video must match the duration and resolution the target reported
    (the profile's expected resolution when the target reported none; video against audio only when it
    reported no duration).
    """
    thresholds = profile.thresholds
    reported_seconds, duration_problem = server_duration(reported.get("reported_video_seconds"))
    resolution = reported.get("resolution") or thresholds.expected_resolution
    try:
        parse_resolution(resolution)
        malformed = False
    except ValueError:
        malformed = True
    verdict = check_video(path, expected_resolution=thresholds.expected_resolution if malformed else resolution,
                          reported_seconds=reported_seconds, duration_tolerance=thresholds.duration_tolerance,
                          black_luma=thresholds.black_luma, silent_dbfs=thresholds.silent_dbfs,
                          stop_reason=_decode_bound(profile.timing.check_video_timeout_s))
    problems = [verdict.as_row()["problems"]]
    if malformed:
        problems.append(f"target reported resolution {resolution!r}, not WIDTHxHEIGHT")
    if duration_problem:
        problems.append(duration_problem)
    elif reported_seconds is None:  # not a problem of the video: said where it is seen, not in `problems`
        get_run_logger().info("video of job %s: the server reported no duration (result.video.duration_seconds); "
                              "its decoded %s s of video were compared with its audio only", job_id,
                              "?" if verdict.video_seconds is None else f"{verdict.video_seconds:.1f}")
    stable = second_sha256 is not None and second_sha256 == verdict.sha256
    if not stable:
        problems.append("second download failed" if second_sha256 is None else "second download hashed differently")
    row = verdict.as_row() | {"problems": "; ".join(filter(None, problems))}
    row["ok"] = not row["problems"]
    row.update(job_id=job_id, stage=stage, second_sha256=second_sha256, hash_stable=stable,
               reported_seconds=reported_seconds)
    Ledger.of(run_dir).record("videos", **row)
    return row
