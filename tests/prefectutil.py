"""A real `prefect server start` for tests about how a user runs the campaign under Prefect."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from stack.launcher import free_port
from tests.stackutil import wait_until

ROOT = Path(__file__).resolve().parents[1]
SERVER_START_BOUND_S = 120  # a fresh database is created first; ~25 s were seen on a busy 2-core machine


@dataclass
class PrefectServer:
    url: str  # the UI's address; the API is under /api
    log: Path
    home: Path

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a client of this server (its own PREFECT_HOME, so no user profile leaks in)."""
        return {**os.environ, "PREFECT_HOME": str(self.home / "client"), "PREFECT_API_URL": self.api, **extra}

    def errors(self) -> list[str]:
        """Lines of the server's log that tell of an error (the scheduler's failures are logged like this)."""
        markers = ("Traceback", "| ERROR", "InvalidRequestError")
        return [line for line in self.log.read_text(errors="replace").splitlines() if any(m in line for m in markers)]


def stop_tree(process: subprocess.Popen, grace_s: float = 20) -> None:
    """End a process and everything it started (runs, the bundled stack), then reap it: nothing outlives a test."""
    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=grace_s)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=5)
    process.wait(timeout=5)


def background(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


@contextlib.contextmanager
def prefect_server(workdir: Path, ui: bool = False) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port with its own home (database) and telemetry off."""
    port = free_port()
    server = PrefectServer(url=f"http://127.0.0.1:{port}", log=workdir / "prefect-server.log", home=workdir / "prefect")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(server.home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "true" if ui else "false", "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_UI_API_URL": server.api}  # else the UI calls the default port, not the one given
    process = background([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                          "--port", str(port)], server.log, env)
    try:
        def healthy() -> bool:
            assert process.poll() is None, f"prefect server exited: {server.log.read_text()[-3000:]}"
            try:
                return httpx.get(f"{server.api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, SERVER_START_BOUND_S, "prefect server start to answer", interval=0.5)
        yield server
    finally:
        stop_tree(process)
