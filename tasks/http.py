"""HTTP for the campaign's tasks: clients, and answers whose WHOLE arrival is bounded.

Building a TLS context loads the CA bundle (~40 ms of CPU); every task opens its own client, so the
context is built once, under a lock (concurrent tasks start together), and shared: the campaign's
own CPU must stay out of the figures it takes.

httpx bounds each read of a body, not the body: a body trickling in byte by byte would never time
out. `chunks_within` and `whole_answer` check the deadline after every chunk as it arrives, so an
answer ends at its bound plus at most one read timeout.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator

import httpx

MAX_ANSWER_BYTES = 1 << 20  # a status or health object is small; a bigger answer is a broken target

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


class BadResponse(ValueError):
    """The target answered something the contract does not allow, or not in time."""


class LateAnswer(BadResponse):
    """The answer did not arrive whole within its bound."""


def _tls() -> ssl.SSLContext:
    global _context
    with _lock:
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context


def client(**options) -> httpx.Client:
    return httpx.Client(verify=_tls(), **options)


def chunks_within(response: httpx.Response, ends: float, late: str) -> Iterator[bytes]:
    """The body, chunk by chunk, as long as it keeps to the monotonic instant `ends` (else LateAnswer(late))."""
    for chunk in response.iter_bytes():  # as it arrives: a chunk size would buffer past the deadline
        yield chunk
        if time.monotonic() > ends:
            raise LateAnswer(late)


def whole_answer(client: httpx.Client, method: str, path: str, seconds: float, **request) -> tuple[int, bytes]:
    """One request whose WHOLE answer must arrive within `seconds` and fit in MAX_ANSWER_BYTES."""
    if seconds <= 0:
        raise LateAnswer("no time left before the deadline")
    ends = time.monotonic() + seconds
    body = bytearray()
    with client.stream(method, path, timeout=seconds, **request) as response:
        for chunk in chunks_within(response, ends, f"{method} {path}: answer not complete within {seconds:.0f} s"):
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise BadResponse(f"{method} {path}: answer larger than {MAX_ANSWER_BYTES} bytes")
    return response.status_code, bytes(body)
