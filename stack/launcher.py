"""Start, watch and stop the four processes of the bundled stack.

Each service runs as its own process (as in the seed deployment), in its own process group so that
stopping it also stops what it spawned (ffmpeg), and with a parent-death signal so that nothing
outlives a launcher that was killed outright.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from stack.binaries import redis_server
from stack.children import own_session_dying_with_parent
from stack.llm import MODEL_NAME

SERVICES = ("redis", "llm", "tts", "server")
# Loopback ports that do not clash with the seed's real services (8000, 4123, 11434, 6379).
DEFAULT_PORTS = {"server": 18000, "tts": 14123, "llm": 21434, "redis": 16379}
HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class StackError(RuntimeError):
    """The stack could not be started; the message says which service and why."""


class StartInterrupted(StackError):
    """A stop was asked for while the stack was starting; what had started is stopped again."""


def _never() -> bool:
    return False


@dataclass(frozen=True)
class ServiceExit:
    """A bundled service that died on its own: how, when (wall clock, as the launcher saw it), its last words."""

    service: str
    exit_code: int
    exited_at: float
    log_tail: str


# Every stack of this process, so that whoever sees a service fail can ask whether it was one of ours that died.
_STACKS: weakref.WeakSet[Stack] = weakref.WeakSet()


def service_exit(url: str) -> ServiceExit | None:
    """How the bundled service answering at `url` exited, if it is one of this process's stacks and it died."""
    for stack in list(_STACKS):
        for name in SERVICES:
            if getattr(stack.urls, name) == url:
                return stack.exit_of(name)
    return None


@dataclass(frozen=True)
class StackURLs:
    server: str
    tts: str
    llm: str
    redis: str

    def ready_line(self) -> str:
        return f"ready server={self.server} tts={self.tts} llm={self.llm} redis={self.redis}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Stack:
    """The four services on loopback ports; start/stop them together or one at a time."""

    def __init__(self, ports: dict[str, int], data_dir: Path, max_concurrent_jobs: int = 2) -> None:
        self.ports = ports
        self.data_dir = data_dir
        self.max_concurrent_jobs = max_concurrent_jobs
        self.urls = StackURLs(
            server=f"http://127.0.0.1:{ports['server']}",
            tts=f"http://127.0.0.1:{ports['tts']}",
            llm=f"http://127.0.0.1:{ports['llm']}",
            redis=f"redis://127.0.0.1:{ports['redis']}/0",
        )
        self._procs: dict[str, subprocess.Popen] = {}
        self._exited_at: dict[int, float] = {}  # pid → when it exited
        _STACKS.add(self)

    def _command(self, name: str) -> list[str]:
        port = str(self.ports[name])
        if name == "redis":
            # An append-only file in the data folder: a restarted stack still knows its jobs.
            return [redis_server(), "--port", port, "--bind", "127.0.0.1", "--dir", str(self.data_dir / "redis"),
                    "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes"]
        command = [sys.executable, "-m", f"stack.{name}", "--host", "127.0.0.1", "--port", port]
        if name == "server":
            command += [
                "--redis-url", self.urls.redis, "--tts-url", self.urls.tts, "--llm-url", self.urls.llm,
                "--llm-model", MODEL_NAME, "--data-dir", str(self.data_dir / "server"),
                "--max-concurrent-jobs", str(self.max_concurrent_jobs),
            ]
        return command

    def _prepare_data_dir(self) -> None:
        """Create the folders the services write to; one that cannot be made is a StackError."""
        for folder in ("redis", "server", "logs"):
            try:
                (self.data_dir / folder).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StackError(f"cannot prepare data folder {exc.filename or self.data_dir / folder}: "
                                 f"{exc.strerror or exc}") from None

    def log_path(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def log_tail(self, name: str, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _healthy(self, name: str) -> bool:
        url = getattr(self.urls, name)
        try:
            if name == "redis":
                with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
                    return bool(client.ping())
            path = {"llm": "/api/version", "tts": "/health", "server": "/health"}[name]
            response = httpx.get(url + path, timeout=1.0)
            if name == "tts":
                return response.status_code == 200 and response.json().get("status") == "healthy"
            return response.status_code == 200
        except (OSError, httpx.HTTPError, redis.RedisError, ValueError):
            return False

    def start_service(self, name: str, stop_requested: Callable[[], bool] = _never) -> None:
        """Start one service and wait (bounded) until it answers its health check.

        `stop_requested` is polled while waiting; once it answers True the wait ends in StartInterrupted
        and the service is left running for the caller to stop.
        """
        if name in self._procs and self._procs[name].poll() is None:
            return
        if port_in_use(self.ports[name]):
            raise StackError(f"{name}: port {self.ports[name]} is already in use")
        self._prepare_data_dir()
        log_path = self.log_path(name)
        try:
            log = log_path.open("ab")
        except OSError as exc:
            raise StackError(f"cannot write the log {log_path}: {exc.strerror or exc}") from None
        with log:
            proc = subprocess.Popen(
                self._command(name), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=own_session_dying_with_parent, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._procs[name] = proc
        threading.Thread(target=self._note_exit, args=(proc,), name=f"watch-{name}", daemon=True).start()
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while not self._healthy(name):
            if stop_requested():
                raise StartInterrupted(f"{name}: stop requested while starting")
            if proc.poll() is not None:
                raise StackError(f"{name}: exited with code {proc.returncode} on start\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                self.stop_service(name)
                raise StackError(f"{name}: not healthy after {HEALTH_TIMEOUT_S:.0f} s\n{self.log_tail(name)}")
            time.sleep(0.1)

    def _note_exit(self, proc: subprocess.Popen) -> None:
        """Waits for the process in a thread of its own: the moment it exits is when it stopped answering."""
        proc.wait()
        self._exited_at[proc.pid] = time.time()

    def stop_service(self, name: str) -> None:
        """SIGTERM the service's process group, SIGKILL it if it has not gone within the bound."""
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Whatever it spawned (ffmpeg) shares its group; make sure none outlives it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def restart_service(self, name: str) -> None:
        self.stop_service(name)
        self.start_service(name)

    def start(self, stop_requested: Callable[[], bool] = _never) -> None:
        """Start every service in order; on any failure, or once `stop_requested()`, stop them all again."""
        busy = [f"{name}: port {self.ports[name]} is already in use" for name in SERVICES
                if port_in_use(self.ports[name])]
        if busy:
            raise StackError("; ".join(busy))
        try:
            for name in SERVICES:
                self.start_service(name, stop_requested)
                if stop_requested():
                    raise StartInterrupted(f"stop requested once {name} had started")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in reversed(SERVICES):
            self.stop_service(name)

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self._procs.items() if proc.poll() is None}

    def exited(self) -> dict[str, int]:
        """Services that died on their own: name → exit code."""
        return {name: proc.returncode for name, proc in self._procs.items() if proc.poll() is not None}

    def exit_of(self, name: str) -> ServiceExit | None:
        """How the service died on its own (None while it runs, or once stopped on purpose)."""
        proc = self._procs.get(name)
        if proc is None or proc.poll() is None:
            return None
        return ServiceExit(name, proc.returncode, self._exited_at.get(proc.pid, time.time()), self.log_tail(name))


@contextlib.contextmanager
def running_stack(
    ports: dict[str, int] | None = None,
    data_dir: Path | None = None,
    max_concurrent_jobs: int = 2,
) -> Iterator[Stack]:
    """Start the whole stack (free ports unless given), yield it, and always stop it."""
    chosen = {name: (ports or {}).get(name) or free_port() for name in SERVICES}
    with contextlib.ExitStack() as cleanup:
        if data_dir is None:
            data_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="t2v-stack-")))
        stack = Stack(chosen, Path(data_dir), max_concurrent_jobs)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
