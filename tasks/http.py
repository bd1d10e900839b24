"""HTTP for the campaign's tasks: clients, and answers whose WHOLE arrival is bounded.

Building a TLS context loads the CA bundle (~40 ms of CPU); every task opens its own client, so the
context is built once, under a lock (concurrent tasks start together), and shared: the campaign's
own CPU must stay out of the figures it takes.

httpx bounds each read of a body, not the body: a body trickling in byte by byte would never time
out. `chunks_within` and `whole_answer` check the deadline after every chunk as it arrives, so an
answer ends at its bound plus at most one read timeout.

`timed_client` times answers at the wire for latency probes: from the first byte of a request written
to the socket to the last byte of its answer read from it. httpcore's trace events would also count
h11 writing the request and parsing the answer, the client's own work (measured: 1.2-1.3x `hey -c 1`
at /health on the bundled stack, against 0.9x timed at the socket; bench/api_latency_vs_hey.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

import httpcore
import httpx

from tasks.interrupt import raise_if_stopped, stop_requested

T = TypeVar("T")

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


class WireClock:
    """When a request's first byte was written to the socket, and when its answer's last byte was read."""

    def __init__(self) -> None:
        self.sent: float | None = None
        self.received: float | None = None

    @property
    def ms(self) -> float | None:
        if self.sent is None or self.received is None:
            return None
        return (self.received - self.sent) * 1000


_clock: ContextVar[WireClock | None] = ContextVar("wire_clock", default=None)


@contextlib.contextmanager
def wire_clock() -> Iterator[WireClock]:
    """A clock for the requests made in this block by a `timed_client` (in this thread)."""
    clock = WireClock()
    token = _clock.set(clock)
    try:
        yield clock
    finally:
        _clock.reset(token)


class _TimedStream(httpcore.NetworkStream):
    """A socket stream noting, for the clock of the request under way, its first write and its last read.

    A read waits in slices of STOP_CHECK_S (its whole wait still bounded by its timeout): a stop request
    ends it within a slice, as the async requests do, while the request stays on the plain socket calls
    whose timing matches `hey` (asyncio's wake-ups added ~0.05 ms to a 0.25 ms answer)."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        clock = _clock.get()
        if clock is not None and clock.sent is None:
            clock.sent = time.perf_counter()
        self._stream.write(buffer, timeout)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        ends = None if timeout is None else time.monotonic() + timeout
        while True:
            raise_if_stopped("the request")
            left = STOP_CHECK_S if ends is None else min(STOP_CHECK_S, ends - time.monotonic())
            try:
                data = self._stream.read(max_bytes, max(left, 0.0))
                break
            except httpcore.ReadTimeout:
                if ends is not None and time.monotonic() >= ends:
                    raise
        clock = _clock.get()
        if clock is not None:
            clock.received = time.perf_counter()
        return data

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _TimedStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _TimedBackend(httpcore.SyncBackend):
    def connect_tcp(self, *args, **kwargs) -> httpcore.NetworkStream:
        return _TimedStream(super().connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args, **kwargs) -> httpcore.NetworkStream:
        return _TimedStream(super().connect_unix_socket(*args, **kwargs))


def timed_client(**options) -> httpx.Client:
    """A client whose requests inside `with wire_clock() as clock:` are timed at the socket, and whose reads
    end at a stop request (Interrupted)."""
    transport = httpx.HTTPTransport(verify=_tls())
    # httpx takes no network backend: its pool is rebuilt as httpx builds it by default, with ours
    limits = httpx.Limits()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_tls(), max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=_TimedBackend())
    return httpx.Client(transport=transport, **options)


def async_client(**options) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=_tls(), **options)


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


# The async side: a job's requests run as coroutines, so a deadline cancels a request in flight (body
# included) and so does a stop request, within STOP_CHECK_S; a blocked thread could be stopped by neither.
STOP_CHECK_S = 0.1


async def within(work: Coroutine[Any, Any, T], seconds: float, late: str) -> T:
    """The result of `work` if it ends within `seconds`; LateAnswer(late) if not; Interrupted once a stop is
    requested. Either way `work` (the request in flight) is cancelled, not left running."""
    if seconds <= 0:
        work.close()
        raise LateAnswer("no time left before the deadline")
    running = asyncio.ensure_future(work)
    try:
        async with asyncio.timeout(seconds):
            while not running.done():
                raise_if_stopped("the request")
                await asyncio.wait({running}, timeout=STOP_CHECK_S)
    except TimeoutError:
        raise LateAnswer(late) from None
    finally:
        if not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
    return running.result()


async def pause_async(seconds: float) -> bool:
    """`interrupt.pause` for a coroutine: sleep up to `seconds`; True when a stop was requested."""
    ends = time.monotonic() + seconds
    while not stop_requested():
        left = ends - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, STOP_CHECK_S))
    return True


async def whole_answer_async(client: httpx.AsyncClient, method: str, path: str, seconds: float,
                             **request) -> tuple[int, bytes]:
    """`whole_answer` for an AsyncClient: the whole answer within `seconds`, at most MAX_ANSWER_BYTES."""
    async def read() -> tuple[int, bytes]:
        body = bytearray()
        async with client.stream(method, path, timeout=seconds, **request) as response:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise BadResponse(f"{method} {path}: answer larger than {MAX_ANSWER_BYTES} bytes")
        return response.status_code, bytes(body)

    return await within(read(), seconds, f"{method} {path}: answer not complete within {seconds:g} s")
