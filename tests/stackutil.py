"""Helpers for tests that drive the real bundled stack over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import httpx
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from stack.launcher import free_port
from stack.llm import MODEL_NAME

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"completed", "completed_with_errors", "failed", "cancelled"}
API = "/api/v1/video"


def submit(client: httpx.Client, name: str, content: bytes, content_type: str = "text/plain") -> httpx.Response:
    return client.post(f"{API}/generate", files={"file": (name, content, content_type)})


def status(client: httpx.Client, job_id: str) -> dict:
    response = client.get(f"{API}/status/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(client: httpx.Client, job_id: str, statuses=TERMINAL, timeout: float = 120.0) -> dict:
    """Poll until the job reaches one of `statuses`; fail the test (not hang) past `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        job = status(client, job_id)
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s: {job}"
        time.sleep(0.2)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up after {timeout} s waiting for {what}"
        time.sleep(interval)


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnframes() / wav.getframerate()


def narration_seconds(urls, document: str) -> tuple[float, list[float]]:
    """What the stack's own llm and tts make of `document`: total and per-scene narration seconds."""
    import re

    reply = httpx.post(f"{urls.llm}/api/chat", timeout=30, json={
        "model": MODEL_NAME, "stream": False,
        "messages": [{"role": "user", "content": f"<document>\n{document}\n</document>"}],
    }).json()["message"]["content"]
    scenes = json.loads(re.search(r"```json\s*(.*?)```", reply, re.S).group(1))
    seconds = []
    for scene in scenes:
        speech = httpx.post(f"{urls.tts}/v1/audio/speech", timeout=60, json={
            "input": scene["narration_text"], "voice": "alloy", "response_format": "wav", "speed": 1.0})
        seconds.append(wav_seconds(speech.content))
    return sum(seconds), seconds


def mean_colours_at(path: str, times: list[float]) -> list[np.ndarray]:
    """Mean RGB of the frame shown at each of `times` (seconds), decoding the whole video in order."""
    wanted = sorted(times)
    found: dict[float, np.ndarray] = {}
    with av.open(path) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            for target in wanted:
                if target not in found and t >= target:
                    found[target] = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
    return [found[t] for t in times]


@dataclass
class ServiceRun:
    http: httpx.Client
    process: subprocess.Popen
    output: bytes = b""  # stdout and stderr, once stopped


@contextlib.contextmanager
def service_process(module: str, ready_path: str, within_seconds: float = 30) -> Iterator[ServiceRun]:
    """`python -m <module> --port P` on a free port, answering `ready_path`; always stopped, output kept."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", module, "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = ServiceRun(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30), process)
    try:
        deadline = time.monotonic() + within_seconds
        while True:
            assert process.poll() is None, process.communicate(timeout=5)
            try:
                run.http.get(ready_path).raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{module} not answering {ready_path} within {within_seconds} s"
                time.sleep(0.1)
        yield run
    finally:
        run.http.close()
        process.terminate()
        stdout, stderr = process.communicate(timeout=15)
        run.output = stdout + stderr


@contextlib.contextmanager
def proxy(upstream: str, download_answer: tuple[int, dict] | None = None, status_stalls: bool = False,
          status_trickles: bool = False, rewrite_job: Callable[[dict], dict] | None = None) -> Iterator[str]:
    """A real HTTP server in front of `upstream` passing everything through, except: downloads answered
    with `download_answer`, status answers that never come when `status_stalls`, status answers whose
    body trickles in a byte every 0.2 s (never whole within a request bound) when `status_trickles`, and
    every job status object (the upload's 202 answer, each status answer) passed through `rewrite_job`."""
    client = httpx.AsyncClient(base_url=upstream, timeout=30)

    async def forward(request: Request) -> Response:
        path = request.url.path
        if download_answer and path.startswith(f"{API}/download/"):
            return JSONResponse(download_answer[1], status_code=download_answer[0])
        if status_stalls and path.startswith(f"{API}/status/"):
            await asyncio.sleep(60)
        if status_trickles and path.startswith(f"{API}/status/"):
            async def trickle():
                for _ in range(300):
                    yield b" "
                    await asyncio.sleep(0.2)
            return StreamingResponse(trickle(), media_type="application/json")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        answer = await client.request(request.method, path, params=request.query_params, headers=headers,
                                      content=await request.body())
        is_job = path == f"{API}/generate" or path.startswith(f"{API}/status/")
        if rewrite_job and is_job and answer.status_code in (200, 202):
            return JSONResponse(rewrite_job(answer.json()), status_code=answer.status_code)
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type"))

    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "the proxy to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's handler that logs nothing and answers in one call; `protocol_version` is the subclass's."""

    def answer(self, code: int, body: bytes | dict | list, content_type: str = "application/json",
               headers: dict | None = None) -> None:
        """Status `code`, Content-Type, Content-Length, `headers`, then `body` (a dict or list sent as JSON)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server of the test's own on a free loopback port, answering with `handler`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
