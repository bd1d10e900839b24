"""A job the server accepts and then never starts: given up as `stuck_pending` once it stayed `pending` past
timing.pending_timeout_s while the server answered, without waiting the whole job timeout, counted as a
failure and cancelled on the server (as is a timed-out job), so it cannot start later. The target is a real
HTTP server of the test's own that misbehaves so (the upstream server does it while the machine's CPU is at
80 % or more); what it was sent shows each upload made unique."""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path

import pytest
from prefect import flow

from analysis.metrics import compute_metrics
from profiles.settings import load_profile
from tasks.jobs import measure_job
from tasks.services import Services
from tasks.store import rebuild_tables
from tests.stackutil import QuietHandler, serving

DOCUMENT = Path(__file__).parent.parent / "profiles" / "documents" / "short_note.txt"


class NeverStarts(QuietHandler):
    """Accepts every upload (202, pending); its status polls answer `statuses` in turn, the last one for ever
    (by default `pending` for ever). Every upload's body is kept in `uploads`; a cancel is answered
    `cancel_code` and its job id kept in `cancels`."""

    protocol_version = "HTTP/1.1"
    statuses: list[str] = ["pending"]
    uploads: list[bytes] = []
    polls: dict[str, int] = {}
    cancels: list[str] = []
    cancel_code = 200
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/api/v1/video/cancel/"):
            job_id = self.path.rsplit("/", 1)[-1]
            with self.lock:
                self.cancels.append(job_id)
            if self.cancel_code == 200:
                self.answer(200, {"message": "Job cancelled", "job_id": job_id, "reason": "user"})
            else:
                self.answer(self.cancel_code, {"detail": f"Job {job_id} not found"})
            return
        with self.lock:
            self.uploads.append(body)
        self.answer(202, {"job_id": str(uuid.uuid4()), "status": "pending", "progress": 0,
                          "created_at": "2026-01-01T00:00:00+00:00"})

    def do_GET(self):  # noqa: N802
        job_id = self.path.rsplit("/", 1)[-1]
        with self.lock:
            seen = self.polls[job_id] = self.polls.get(job_id, 0) + 1
        status = self.statuses[min(seen, len(self.statuses)) - 1]
        self.answer(200, {"job_id": job_id, "status": status, "progress": 0 if status == "pending" else 10})


@pytest.fixture
def target():
    NeverStarts.uploads, NeverStarts.polls, NeverStarts.cancels = [], {}, []
    with serving(NeverStarts) as url:
        yield url
    NeverStarts.statuses, NeverStarts.cancel_code = ["pending"], 200


@flow(name="test-stalled-job")
def one_job(profile, services: Services, run_dir: str) -> dict:
    return measure_job.submit(profile, services, run_dir, str(DOCUMENT), "single", 1, 0, 0, 0.1).result()


def services(url: str) -> Services:  # only the server is asked anything by a job
    return Services(server=url, tts=url, llm=url, redis="redis://127.0.0.1:1/0", llm_model="m")


def test_a_job_left_pending_is_given_up_as_stuck_pending_and_counted(prefect_server, target, tmp_path):
    profile = load_profile("smoke", [f'results_dir="{tmp_path}"', "timing.pending_timeout_s=1",
                                     "timing.job_timeout_s=60"])
    row = one_job(profile, services(target), str(tmp_path))
    assert (row["outcome"], row["server_status"], row["succeeded"]) == ("stuck_pending", "pending", False)
    # given up, and cancelled on the server: it must not start later and load the stages after this one
    assert re.fullmatch(r"never started \(stuck pending 1 s\); cancelled on the server \(200\)", row["failure"]), \
        row["failure"]
    assert NeverStarts.cancels == [row["job_id"]]
    assert 1.0 < row["total_seconds"] < 3.0  # the bound, a poll and the cancel, not the 60 s job timeout

    run = compute_metrics(rebuild_tables(tmp_path), {"profile": {"thresholds": {"success_rate": 0.95}}}, [])
    assert run.single.stuck_pending == 1 and run.single.outcomes == {"stuck_pending": 1}
    assert (run.single.success.k, run.single.success.n) == (0, 1)  # a failure: in the rate's denominator
    assert run.single.seconds.n == 0 and run.jobs_without_video == 1  # never in job seconds
    [job] = run.jobs
    assert job.failure == row["failure"]

    # what was sent: the document with a line carrying the job's nonce
    [upload] = NeverStarts.uploads
    assert DOCUMENT.read_bytes() in upload and re.search(rb"<!-- t2v-bench nonce [0-9a-f]{32} -->", upload)


def test_a_job_that_started_is_not_a_stall_however_long_it_runs(prefect_server, target, tmp_path):
    NeverStarts.statuses, NeverStarts.cancel_code = ["pending", "processing"], 404
    profile = load_profile("smoke", [f'results_dir="{tmp_path}"', "timing.pending_timeout_s=0.5",
                                     "timing.job_timeout_s=2", "workload.unique_documents=false"])
    row = one_job(profile, services(target), str(tmp_path))
    assert (row["outcome"], row["server_status"]) == ("timed_out", "processing"), row["failure"]
    # timed out: cancelled too, and a cancel refused is said as it was answered (never retried)
    assert row["failure"] == (f"timed out after 2 s (last status: processing); the cancel answered 404: Job "
                              f"{row['job_id']} not found")
    assert NeverStarts.cancels == [row["job_id"]]
    assert NeverStarts.uploads[0].count(DOCUMENT.read_bytes()) == 1 and b"t2v-bench nonce" not in NeverStarts.uploads[0]
