"""Start, watch and stop the four processes of the bundled stack, together or one at a time.

Each service runs as its own process (as in the seed deployment), in its own process group so that
stopping it also stops what it spawned (ffmpeg), and with a parent-death signal so that nothing
outlives a launcher that was killed outright. A service that dies is recorded (`exit_of`) and the
others keep running; one service can be stopped, started, restarted, killed (SIGKILL, as a crash),
frozen (SIGSTOP, resumed by SIGCONT, within a bound even if the launcher dies) and, for the llm, made
slow (the server reaches it through `python -m stack.proxy`, a fifth child process that is no service: the
launcher starts it with the server and tells it the delay through a file). `ControlChannel` offers the same to
`python -m stack ACTION SERVICE` while a launcher runs.
"""

from __future__ import annotations

import contextlib
import json
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
from stack.proxy import read_delay

SERVICES = ("redis", "llm", "tts", "server")
LLM_PROXY = "llm-proxy"  # not a service: the server's way to the llm, which `slow_llm` delays
# Loopback ports that do not clash with the seed's real services (8000, 4123, 11434, 6379).
DEFAULT_PORTS = {"server": 18000, "tts": 14123, "llm": 21434, "redis": 16379}
HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
MAX_FREEZE_S = 3600.0  # a frozen service is resumed by then at the latest, whatever happens to the launcher
FREEZE_MARGIN_S = 30.0  # a freeze the campaign ends itself is resumed by the launcher's timer this long after


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


def stack_serving(server_url: str) -> Stack | None:
    """This process's bundled stack whose server answers at `server_url` (None: not one of ours)."""
    return next((stack for stack in list(_STACKS) if stack.urls.server == server_url), None)


@dataclass(frozen=True)
class StackURLs:
    server: str
    tts: str
    llm: str
    redis: str

    def ready_line(self) -> str:
        return f"ready server={self.server} tts={self.tts} llm={self.llm} redis={self.redis}"


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: all are held open while picking, so none is handed out twice."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def free_port() -> int:
    return free_ports(1)[0]


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

    def __init__(self, ports: dict[str, int], data_dir: Path, max_concurrent_jobs: int = 2,
                 dependency_timeout_s: float | None = None) -> None:
        self.ports = ports
        self.data_dir = data_dir
        self.max_concurrent_jobs = max_concurrent_jobs
        # the server's bound on one tts or llm request (None: the server's own defaults)
        self.dependency_timeout_s = dependency_timeout_s
        self.llm_proxy_port = free_port()
        self.llm_proxy_url = f"http://127.0.0.1:{self.llm_proxy_port}"
        self._llm_delay_file = data_dir / "llm-delay"  # what the proxy delays each llm request by (absent: 0)
        self.urls = StackURLs(
            server=f"http://127.0.0.1:{ports['server']}",
            tts=f"http://127.0.0.1:{ports['tts']}",
            llm=f"http://127.0.0.1:{ports['llm']}",
            redis=f"redis://127.0.0.1:{ports['redis']}/0",
        )
        self._procs: dict[str, subprocess.Popen] = {}
        self._exited_at: dict[int, float] = {}  # pid → when it exited
        self._thaw_timers: dict[str, subprocess.Popen] = {}  # frozen service → the process that resumes it
        _STACKS.add(self)

    def _port(self, name: str) -> int:
        return self.llm_proxy_port if name == LLM_PROXY else self.ports[name]

    def _command(self, name: str) -> list[str]:
        if name == LLM_PROXY:
            return [sys.executable, "-m", "stack.proxy", "--port", str(self.llm_proxy_port),
                    "--upstream-port", str(self.ports["llm"]), "--delay-file", str(self._llm_delay_file)]
        port = str(self.ports[name])
        if name == "redis":
            # An append-only file in the data folder: a restarted stack still knows its jobs.
            return [redis_server(), "--port", port, "--bind", "127.0.0.1", "--dir", str(self.data_dir / "redis"),
                    "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes"]
        command = [sys.executable, "-m", f"stack.{name}", "--host", "127.0.0.1", "--port", port]
        if name == "server":
            command += [
                "--redis-url", self.urls.redis, "--tts-url", self.urls.tts, "--llm-url", self.llm_proxy_url,
                "--llm-model", MODEL_NAME, "--data-dir", str(self.data_dir / "server"),
                "--max-concurrent-jobs", str(self.max_concurrent_jobs),
            ]
            if self.dependency_timeout_s is not None:
                timeout = f"{self.dependency_timeout_s:g}"
                command += ["--tts-timeout", timeout, "--llm-timeout", timeout]
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
        if name == LLM_PROXY:  # it answers nothing itself: listening is all it has to do
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.llm_proxy_port), 1.0):
                return True
            return False
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
        if name == "server":
            self.start_service(LLM_PROXY, stop_requested)
        if port_in_use(self._port(name)):
            raise StackError(f"{name}: port {self._port(name)} is already in use")
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
        self._exited_at.setdefault(proc.pid, time.time())

    def stop_service(self, name: str) -> None:
        """SIGTERM the service's process group, SIGKILL it if it has not gone within the bound."""
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        frozen = self._end_thaw_timer(name)
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
                if frozen:  # a stopped process acts on its SIGTERM only once continued
                    os.killpg(proc.pid, signal.SIGCONT)
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

    def _running(self, name: str) -> subprocess.Popen:
        proc = self._procs.get(name)
        if proc is None or proc.poll() is not None:
            raise StackError(f"{name} is not running")
        return proc

    def kill_service(self, name: str) -> None:
        """SIGKILL the service's process group, as a crash: its exit is recorded (`exit_of`), the others run on."""
        proc = self._running(name)
        self._end_thaw_timer(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT_S)

    def freeze_service(self, name: str, at_most_s: float) -> None:
        """SIGSTOP the service's process group: it keeps its port and accepts connections but answers nothing.

        It is resumed by `resume_service`, by stopping it, or after `at_most_s` by a small process of its own
        session, so a launcher killed outright does not leave it frozen for ever."""
        if not 0 < at_most_s <= MAX_FREEZE_S:
            raise StackError(f"a freeze lasts more than 0 and at most {MAX_FREEZE_S:g} s, not {at_most_s:g}")
        proc = self._running(name)
        self._end_thaw_timer(name)
        self._thaw_timers[name] = subprocess.Popen(
            [sys.executable, "-c", "import os, signal, sys, time\ntime.sleep(float(sys.argv[1]))\n"
             "try: os.killpg(int(sys.argv[2]), signal.SIGCONT)\nexcept ProcessLookupError: pass",
             f"{at_most_s:g}", str(proc.pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        os.killpg(proc.pid, signal.SIGSTOP)

    def resume_service(self, name: str) -> None:
        """SIGCONT a frozen service's process group (nothing happens to one that is not frozen)."""
        proc = self._running(name)
        self._end_thaw_timer(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)

    def _end_thaw_timer(self, name: str) -> bool:
        """Drop the service's thaw timer; True when the service was still frozen (its timer had not fired)."""
        timer = self._thaw_timers.pop(name, None)
        if timer is None:
            return False
        frozen = timer.poll() is None
        timer.kill()
        timer.wait()
        return frozen

    def _is_frozen(self, name: str) -> bool:
        timer = self._thaw_timers.get(name)
        return timer is not None and timer.poll() is None

    def slow_llm(self, delay_s: float) -> None:
        """Delay every request the server sends the llm by `delay_s` (0: no delay)."""
        if not 0 <= delay_s <= MAX_FREEZE_S:
            raise StackError(f"an llm delay is 0 to {MAX_FREEZE_S:g} s, not {delay_s:g}")
        self._prepare_data_dir()
        written = self._llm_delay_file.with_suffix(".tmp")
        written.write_text(f"{delay_s:g}")
        written.replace(self._llm_delay_file)  # whole, at once: the proxy never reads half a number

    @property
    def llm_delay_s(self) -> float:
        return read_delay(self._llm_delay_file)

    def state(self) -> dict[str, str]:
        """Each service in words: running, frozen, exited (code N) or stopped; plus the llm's added delay."""
        states = {}
        for name in SERVICES:
            proc = self._procs.get(name)
            states[name] = ("stopped" if proc is None else f"exited (code {proc.returncode})"
                            if proc.poll() is not None else "frozen" if self._is_frozen(name) else "running")
        if self.llm_delay_s:
            states["llm"] += f", slowed by {self.llm_delay_s:g} s per request"
        return states

    def start(self, stop_requested: Callable[[], bool] = _never) -> None:
        """Start every service in order; on any failure, or once `stop_requested()`, stop them all again."""
        busy = [f"{name}: port {self.ports[name]} is already in use" for name in SERVICES
                if port_in_use(self.ports[name])]
        if busy:
            raise StackError("; ".join(busy))
        with contextlib.suppress(OSError):
            self._llm_delay_file.unlink()  # left by a launcher killed outright: a new stack starts with no delay
        try:
            for name in SERVICES:
                self.start_service(name, stop_requested)
                if stop_requested():
                    raise StartInterrupted(f"stop requested once {name} had started")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in (*reversed(SERVICES), LLM_PROXY):
            self.stop_service(name)
        with contextlib.suppress(OSError):
            self._llm_delay_file.unlink()  # a data folder kept for the next start starts with no delay

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self._procs.items() if name in SERVICES and proc.poll() is None}

    def exit_of(self, name: str) -> ServiceExit | None:
        """How the service died on its own (None while it runs, or once stopped on purpose)."""
        proc = self._procs.get(name)
        if proc is None or proc.poll() is None:
            return None
        # the first to see the exit (this or the watching thread) says when it was: the same answer every time
        exited_at = self._exited_at.setdefault(proc.pid, time.time())
        return ServiceExit(name, proc.returncode, exited_at, self.log_tail(name))


@contextlib.contextmanager
def running_stack(
    ports: dict[str, int] | None = None,
    data_dir: Path | None = None,
    max_concurrent_jobs: int = 2,
    dependency_timeout_s: float | None = None,
) -> Iterator[Stack]:
    """Start the whole stack (free ports unless given), yield it, and always stop it."""
    # picked together, so two services never get the same port (one at a time, the OS may repeat itself)
    picked = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    chosen = {name: (ports or {}).get(name) or picked[name] for name in SERVICES}
    with contextlib.ExitStack() as cleanup:
        if data_dir is None:
            data_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="t2v-stack-")))
        stack = Stack(chosen, Path(data_dir), max_concurrent_jobs, dependency_timeout_s)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


# ---- control of a running launcher (`python -m stack ACTION SERVICE`) ----------------------------------

CONTROL_ACTIONS = {  # action → what it does, for --help and for the answer to a wrong one
    "status": "say what each service is doing",
    "stop": "stop SERVICE (SIGTERM, then SIGKILL)",
    "start": "start SERVICE and wait until it is healthy",
    "restart": "stop, then start SERVICE",
    "kill": "SIGKILL SERVICE, as a crash (the others keep running)",
    "freeze": "SIGSTOP SERVICE for --seconds (default 60), or until resumed",
    "resume": "SIGCONT a frozen SERVICE",
    "slow": "delay each request the server sends the llm by --seconds (0 ends it)",
}
MAX_REQUEST_BYTES = 1024
CONTROL_READ_S = 2.0  # a client has this long to send its one-line request
ACCEPT_WAIT_S = 0.5
# the longest an action takes: a stop (SIGTERM, then SIGKILL) and a start until healthy, plus a margin
CONTROL_ANSWER_S = 2 * STOP_TIMEOUT_S + HEALTH_TIMEOUT_S + 5.0
DEFAULT_FREEZE_S = 60.0


def control_path(server_port: int) -> Path:
    """The control socket of the launcher whose server listens on `server_port` (one per user and port)."""
    folder = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(folder) / f"t2v-stack-{os.getuid()}-{server_port}.sock"


def act(stack: Stack, request: dict) -> str:
    """Carry out one control request on `stack`; what was done, in words (StackError: why not)."""
    action, service, seconds = request.get("action"), request.get("service"), request.get("seconds")
    if action not in CONTROL_ACTIONS:
        raise StackError(f"unknown action {action!r} (one of {', '.join(CONTROL_ACTIONS)})")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
        raise StackError(f"seconds must be a number, not {seconds!r}")
    if action == "status":
        return "; ".join(f"{name}: {state}" for name, state in stack.state().items())
    if service not in SERVICES:
        raise StackError(f"{action} needs a service, one of {', '.join(SERVICES)} (got {service!r})")
    if action == "slow":
        if service != "llm":
            raise StackError("only the llm can be made slow (the server reaches it through the launcher's proxy)")
        stack.slow_llm(0.0 if seconds is None else float(seconds))
        return f"llm: {stack.state()['llm']}"
    if action == "freeze":
        stack.freeze_service(service, DEFAULT_FREEZE_S if seconds is None else float(seconds))
    else:
        getattr(stack, f"{action}_service")(service)
    return f"{service}: {stack.state()[service]}"


class ControlChannel:
    """A Unix socket (mode 0600) on which a running launcher takes one JSON request per connection,
    {"action", "service", "seconds"}, and answers {"ok", "detail"}; requests are served one at a time."""

    def __init__(self, stack: Stack, path: Path) -> None:
        self.stack, self.path = stack, path
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def __enter__(self) -> ControlChannel:
        if self.path.exists():
            if _listening(self.path):
                raise StackError(f"another launcher already listens on {self.path}")
            self.path.unlink()  # left by a launcher that was killed outright
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)  # before listen: no one else can ever connect
            sock.listen(4)
            sock.settimeout(ACCEPT_WAIT_S)  # closing the socket does not wake a blocked accept(): it looks again
        except OSError as exc:
            sock.close()
            raise StackError(f"cannot open the control socket {self.path}: {exc.strerror or exc}") from None
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="stack-control", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._thread.join(CONTROL_ANSWER_S)
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(CONTROL_READ_S)
                try:
                    request = json.loads(_read_line(conn))
                    answer = {"ok": True, "detail": act(self.stack, request if isinstance(request, dict) else {})}
                except (ValueError, OSError) as exc:
                    answer = {"ok": False, "detail": f"unreadable request: {exc}"}
                except StackError as exc:
                    answer = {"ok": False, "detail": str(exc)}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(answer).encode() + b"\n")


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(MAX_REQUEST_BYTES)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError(f"longer than {MAX_REQUEST_BYTES} bytes")
    return data.split(b"\n", 1)[0]


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(CONTROL_READ_S)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def send_control(path: Path, request: dict, timeout_s: float = CONTROL_ANSWER_S) -> dict:
    """Send one request to the launcher listening on `path`; its answer {"ok", "detail"} (StackError: none)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise StackError(f"no running stack listens on {path} ({exc.strerror or exc}); start one with "
                             "`python -m stack` (with the same --server-port)") from None
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while b"\n" not in data and (chunk := sock.recv(4096)):
                data += chunk
            answer = json.loads(data)
        except (OSError, ValueError) as exc:
            raise StackError(f"the stack gave no answer within {timeout_s:g} s ({exc})") from None
    if not isinstance(answer, dict) or "ok" not in answer:
        raise StackError(f"the stack answered {str(answer)[:200]}")
    return answer
