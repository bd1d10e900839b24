"""What the campaign makes of a target that answers badly: a clear error, never a traceback or a hang."""

import asyncio
import json
import threading
import time

import httpx
import pytest

from tasks import interrupt
from tasks.http import MAX_ANSWER_BYTES, STOP_CHECK_S, BadResponse, LateAnswer, whole_answer, whole_answer_async
from tasks.jobs import job_object
from tests.stackutil import QuietHandler, serving

GOOD = {"job_id": "6f1c1e53-7a60-4b0e-9a39-0d7a4c3a9b1e", "status": "processing", "phase": "audio", "progress": 40,
        "created_at": "2026-01-01T00:00:00+00:00", "completed_at": None, "result": None, "errors": None}


def body(**changes) -> bytes:
    return json.dumps(GOOD | changes).encode()


def test_a_contract_job_object_passes():
    assert job_object(200, body())["progress"] == 40


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"<html>oops</html>", "body is not JSON"),
        (b"[1, 2]", "not a job status object"),
        (body(status=None), "without a str status"),
        (body(job_id=7), "without a str job_id"),
        (body(progress="40%"), "job progress is '40%', not a int"),
        (body(progress=True), "job progress is True"),
        (body(errors=5), "job errors is 5, not a list"),
        (body(created_at=1700000000), "job created_at is 1700000000, not a str"),
        (body(result=[]), "job result is [], not a dict"),
    ],
)
def test_a_malformed_job_object_is_named(raw, says):
    with pytest.raises(BadResponse, match="HTTP 200") as error:
        job_object(200, raw)
    assert says in str(error.value)


class Misbehaving(QuietHandler):
    """`/trickle` sends a byte every 0.2 s (for at most 10 s); `/huge` sends more than a status object can be;
    `/silent` answers nothing for 10 s."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/silent":
            time.sleep(10)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if self.path == "/trickle":
            for _ in range(50):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        else:
            self.wfile.write(b"[" + b"1," * MAX_ANSWER_BYTES + b"1]")


@pytest.fixture(scope="module")
def misbehaving_url():
    with serving(Misbehaving) as url:
        yield url


@pytest.fixture
def misbehaving(misbehaving_url):
    with httpx.Client(base_url=misbehaving_url) as client:
        yield client


def answer_async(url: str, path: str, seconds: float) -> tuple[int, bytes]:
    async def ask():
        async with httpx.AsyncClient(base_url=url) as client:
            return await whole_answer_async(client, "GET", path, seconds)
    return asyncio.run(ask())


def test_an_answer_trickling_in_is_cut_at_its_bound(misbehaving):
    started = time.monotonic()
    with pytest.raises(BadResponse, match="not complete within 1 s"):
        whole_answer(misbehaving, "GET", "/trickle", 1.0)
    assert time.monotonic() - started < 3  # each read arrives in time; only the whole answer is late


def test_an_oversized_answer_is_refused(misbehaving):
    with pytest.raises(BadResponse, match=f"larger than {MAX_ANSWER_BYTES} bytes"):
        whole_answer(misbehaving, "GET", "/huge", 10.0)


def test_no_time_left_sends_nothing(misbehaving):
    with pytest.raises(BadResponse, match="no time left"):
        whole_answer(misbehaving, "GET", "/trickle", 0)


# The async reader of a job's requests: the same bounds, and a stop request cancels the request in flight.

def test_an_async_answer_trickling_in_is_cut_at_its_bound(misbehaving_url):
    started = time.monotonic()
    with pytest.raises(LateAnswer, match="not complete within 1 s"):
        answer_async(misbehaving_url, "/trickle", 1.0)
    assert time.monotonic() - started < 1.5  # cancelled at the bound itself, not at the next read


def test_an_async_oversized_answer_is_refused(misbehaving_url):
    with pytest.raises(BadResponse, match=f"larger than {MAX_ANSWER_BYTES} bytes"):
        answer_async(misbehaving_url, "/huge", 10.0)


def test_a_stop_request_cancels_an_answer_that_is_not_coming(misbehaving_url):
    stopper = threading.Timer(0.5, interrupt.request_stop)
    stopper.start()
    started = time.monotonic()
    try:
        with pytest.raises(interrupt.Interrupted):
            answer_async(misbehaving_url, "/silent", 8.0)
    finally:
        interrupt.reset()
    assert time.monotonic() - started < 0.5 + 4 * STOP_CHECK_S
