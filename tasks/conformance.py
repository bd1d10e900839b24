"""The conformance stage's probes: requests made only to see answers of the contract that the campaign's own
traffic never asks for (analysis.conformance.PROBES), each recorded in `contract_probes` as it returns.

Every request is bounded by the profile's request (or upload) timeout for its status and the first bytes of
its body (a video's body is never read), and ends at a stop request (the client is a `tasks.http.timed_client`,
whose reads watch it). A probe that could not be made is recorded too, without a status code, saying why:
its rule is then "not checked", never "held".

The job the download probe submits is no job under test: it is never in `jobs`, and it is cancelled as soon as
its probes are done. Its status answers (the 202 to its upload, each status read, then polls until it is
terminal, within timing.request_timeout_s) are recorded in `status_trace` under the stage `conformance`
(analysis.conformance.PROBE_STAGE): they are checked by the contract's rules — the one job of a clean run seen
`cancelled` — and never enter a figure.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from analysis.conformance import PROBE_STAGE, PROBES
from analysis.tracking import TERMINAL
from profiles.settings import Profile
from tasks import http
from tasks.interrupt import Interrupted, pause, raise_if_stopped
from tasks.jobs import document_upload, no_answer, record_status_answer
from tasks.services import Services
from tasks.store import Ledger

HEAD_BYTES = 4096  # of an answer's body read: an error body is small, a video's is not read
SHOWN_BYTES = 300  # of a body kept in the row
NOT_A_UUID = "not-a-uuid"


class Answer:
    """What came back to one request: its status code, content type and the first bytes of its body."""

    def __init__(self, status_code: int, content_type: str, head: bytes) -> None:
        self.status_code, self.content_type, self.head = status_code, content_type, head

    @property
    def body(self) -> str:
        if self.content_type.startswith(("video/", "audio/", "application/octet-stream")):
            return f"<{self.content_type} body>"
        return self.head[:SHOWN_BYTES].decode(errors="replace")

    @property
    def detail(self) -> str | None:
        """The contract's error `detail` (as text), None when the body has none or is not a JSON object."""
        try:
            body = json.loads(self.head)
        except ValueError:
            return None
        detail = body.get("detail") if isinstance(body, dict) else None
        if detail is None or detail == "":
            return None
        return detail if isinstance(detail, str) else json.dumps(detail)

    def job_id(self) -> str | None:
        """The job id of a 2xx job status answer (an upload that was accepted), else None."""
        try:
            body = json.loads(self.head)
        except ValueError:
            return None
        job_id = body.get("job_id") if isinstance(body, dict) and 200 <= self.status_code < 300 else None
        return job_id if isinstance(job_id, str) else None

    def status(self) -> str | None:
        """The `status` of a 200 job status answer, else None."""
        try:
            body = json.loads(self.head)
        except ValueError:
            return None
        status = body.get("status") if isinstance(body, dict) and self.status_code == 200 else None
        return status if isinstance(status, str) else None


def ask(client: httpx.Client, method: str, path: str, seconds: float, **request) -> Answer:
    """One request whose status and first HEAD_BYTES of body must arrive within `seconds`."""
    ends = time.monotonic() + seconds
    head = b""
    with client.stream(method, path, timeout=seconds, **request) as response:
        for chunk in http.chunks_within(response, ends, f"{method} {path}: answer not complete within {seconds:g} s"):
            head += chunk
            if len(head) >= HEAD_BYTES:
                break
    return Answer(response.status_code, response.headers.get("content-type", ""), head)


class Prober:
    """Makes the probes of one task and records each one in `contract_probes` as it returns."""

    def __init__(self, client: httpx.Client, profile: Profile, run_dir: str) -> None:
        self.client, self.profile, self.ledger = client, profile, Ledger.of(run_dir)
        self.endpoints, self.seconds = profile.target.endpoints, profile.timing.request_timeout_s
        self.logger = get_run_logger()

    def record(self, name: str, path: str, t: float, answer: Answer | None, why: str | None = None) -> None:
        probe = PROBES[name]
        code = answer.status_code if answer else None
        self.ledger.record("contract_probes", probe=name, method=probe.method, path=path, t=t, status_code=code,
                           expected=probe.expected, ok=None if code is None else code == probe.expected,
                           body=answer.body if answer else why, detail=answer.detail if answer else None)
        said = f"answered {code}" if answer else why
        self.logger.info("probe %s: %s %s %s (the contract: %s)", name, probe.method, path, said, probe.expected)

    def probe(self, name: str, path: str, seconds: float | None = None, **request) -> Answer | None:
        """Make probe `name` and record its answer; None when none came (recorded as such)."""
        raise_if_stopped("the conformance probes")
        t = time.time()
        try:
            answer = ask(self.client, PROBES[name].method, path, seconds or self.seconds, **request)
        except (httpx.HTTPError, http.BadResponse) as exc:
            self.record(name, path, t, None, f"no answer: {no_answer(exc)}")
            return None
        self.record(name, path, t, answer)
        return answer

    def not_probed(self, name: str, path: str, why: str) -> None:
        self.record(name, path, time.time(), None, why)

    def status_of(self, job_id: str) -> str | None:
        """The job's status now (a plain status request, not a probe), None when it could not be read."""
        try:
            return ask(self.client, "GET", self.endpoints.status.format(job_id=job_id), self.seconds).status()
        except (httpx.HTTPError, http.BadResponse):
            return None

    def observe(self, job_id: str) -> str | None:
        """The status of the probes' own job now, its answer recorded in `status_trace` (stage PROBE_STAGE); None
        when it could not be read."""
        try:
            status_code, body = http.whole_answer(self.client, "GET", self.endpoints.status.format(job_id=job_id),
                                                  self.seconds)
            return record_status_answer(self.ledger, job_id, PROBE_STAGE, status_code, body)[0]["status"]
        except (httpx.HTTPError, http.BadResponse):
            return None

    def until_terminal(self, job_id: str) -> str | None:
        """Poll the probes' own job (cancelled) every timing.poll_interval_s until it is terminal, within
        timing.request_timeout_s, each answer recorded; its last status (None: not readable)."""
        ends = time.monotonic() + self.seconds
        status = None
        while time.monotonic() < ends:
            raise_if_stopped("the conformance probes")
            if (status := self.observe(job_id)) in TERMINAL:
                return status
            if pause(min(self.profile.timing.poll_interval_s, max(0.0, ends - time.monotonic()))):
                raise Interrupted("the conformance probes")
        self.logger.warning("job %s made by the probes was still %s %g s after its cancel", job_id,
                            status or "not readable", self.seconds)
        return status

    def cancel_quietly(self, job_id: str) -> None:
        """End a job the probes made (not a probe): best effort, bounded, on a client that a stop does not cut
        short, so a stop during the probes still cancels it."""
        try:
            with httpx.Client(base_url=self.client.base_url) as plain:
                http.whole_answer(plain, "POST", self.endpoints.cancel.format(job_id=job_id), self.seconds)
        except (httpx.HTTPError, http.BadResponse) as exc:
            self.logger.warning("could not cancel job %s made by the probes: %s", job_id, no_answer(exc))


@task(name="probe-refusals", cache_policy=NO_CACHE)
def probe_refusals(profile: Profile, services: Services, run_dir: str) -> None:
    """The answers to requests the contract refuses: unknown and malformed job ids, an empty upload."""
    endpoints = profile.target.endpoints
    unknown = str(uuid.uuid4())
    with http.timed_client(base_url=services.server) as client:
        prober = Prober(client, profile, run_dir)
        prober.probe("status_unknown", endpoints.status.format(job_id=unknown))
        prober.probe("status_not_uuid", endpoints.status.format(job_id=NOT_A_UUID))
        prober.probe("download_unknown", endpoints.download.format(job_id=unknown))
        prober.probe("cancel_unknown", endpoints.cancel.format(job_id=unknown))
        prober.probe("cancel_not_uuid", endpoints.cancel.format(job_id=NOT_A_UUID))
        empty = prober.probe("empty_upload", endpoints.generate, profile.timing.upload_timeout_s,
                             files={endpoints.upload_field: ("empty.txt", b"", "text/plain")})
        if empty is not None and (job_id := empty.job_id()):  # accepted: a job nobody wants
            prober.cancel_quietly(job_id)


@task(name="probe-unfinished-job", cache_policy=NO_CACHE)
def probe_unfinished_job(profile: Profile, services: Services, run_dir: str) -> None:
    """Submit the first document, ask for its video at once (not finished: 400), then cancel it (200). The document
    is sent as the jobs send it, made unique (workload.unique_documents): a caching server would otherwise finish
    it at once as a cache hit, and there would be no unfinished job to probe."""
    endpoints = profile.target.endpoints
    document = Path(profile.workload.documents[0])
    with http.timed_client(base_url=services.server) as client:
        prober = Prober(client, profile, run_dir)
        try:
            submitted = ask(client, "POST", endpoints.generate, profile.timing.upload_timeout_s,
                            files=document_upload(profile, document))
            job_id, refused = submitted.job_id(), f"answered {submitted.status_code}: {submitted.body[:120]}"
        except (httpx.HTTPError, http.BadResponse) as exc:
            job_id, refused = None, f"got no answer: {no_answer(exc)}"
        if job_id is None:
            why = f"the upload of {document.name} to make an unfinished job {refused}"
            prober.not_probed("download_unfinished", endpoints.download, why)
            prober.not_probed("cancel_unfinished", endpoints.cancel, why)
            return
        with contextlib.suppress(http.BadResponse):  # its created_at is the one the contract says must stay
            record_status_answer(prober.ledger, job_id, PROBE_STAGE, submitted.status_code, submitted.head, "submit")
        try:
            _download_and_cancel(prober, job_id)
            prober.until_terminal(job_id)
        except Interrupted:
            prober.cancel_quietly(job_id)
            raise


def _download_and_cancel(prober: Prober, job_id: str) -> None:
    endpoints = prober.endpoints
    download, cancel = endpoints.download.format(job_id=job_id), endpoints.cancel.format(job_id=job_id)
    raise_if_stopped("the conformance probes")
    t = time.time()
    try:
        answer = ask(prober.client, "GET", download, prober.seconds)
    except (httpx.HTTPError, http.BadResponse) as exc:
        prober.not_probed("download_unfinished", download, f"no answer: {no_answer(exc)}")
        answer = None
    if answer is not None:
        status = prober.observe(job_id) if answer.status_code == 200 else None
        if status in TERMINAL:  # it had finished before its download was asked: nothing to see
            prober.not_probed("download_unfinished", download,
                              f"the job was already {status} when its download was asked (answered 200)")
        else:
            prober.record("download_unfinished", download, t, answer)
    status = prober.observe(job_id)
    if status in TERMINAL:
        prober.not_probed("cancel_unfinished", cancel, f"the job was already {status} before it could be cancelled")
    elif (cancelled := prober.probe("cancel_unfinished", cancel)) is None or cancelled.status_code >= 300:
        prober.cancel_quietly(job_id)  # tried again, whatever it says: the job is nobody's


@task(name="probe-finished-job", cache_policy=NO_CACHE)
def probe_finished_job(profile: Profile, services: Services, run_dir: str, job_id: str | None) -> None:
    """Cancel a job that has finished (the contract: 409). Done last: a server that does cancel it (upstream
    answers 200 and turns it `cancelled`) changes nothing measured any more."""
    cancel = profile.target.endpoints.cancel
    with http.timed_client(base_url=services.server) as client:
        prober = Prober(client, profile, run_dir)
        if job_id is None:
            prober.not_probed("cancel_finished", cancel, "the single stage had no job to cancel")
            return
        status = prober.status_of(job_id)
        if status not in TERMINAL:
            prober.not_probed("cancel_finished", cancel.format(job_id=job_id),
                              f"the single stage's job {job_id} was {status or 'not readable'}, not finished")
            return
        prober.probe("cancel_finished", cancel.format(job_id=job_id))
