"""The services' processes, found from the ports they listen on, and their CPU and memory over time.

Only the processes serving the profile's ports (with all their children, e.g. ffmpeg) are sampled,
never the campaign's own process. CPU comes from cumulative CPU time (including children already
reaped), so short-lived encoders are counted even when they start and end between two samples.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import psutil
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.store import Ledger

REDISCOVER_AFTER_S = 5.0  # a restarted service gets a new pid; look again, but not on every sample


def listening_pids(ports: dict[str, int]) -> dict[str, int]:
    """Service name → pid of the process listening on its port (services not found are left out)."""
    wanted = {port: name for name, port in ports.items()}
    found: dict[str, int] = {}
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in wanted and conn.pid:
            if conn.pid != os.getpid():
                found.setdefault(wanted[conn.laddr.port], conn.pid)
    return found


def _trees(roots: dict[str, int]) -> dict[str, list[psutil.Process]]:
    """Each service's root process and all its descendants, from ONE scan of the process table
    (psutil's `children()` rescans it per call, which would cost more than the sample itself)."""
    by_pid: dict[int, psutil.Process] = {}
    children_of: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        by_pid[proc.pid] = proc
        children_of.setdefault(proc.info["ppid"], []).append(proc.pid)
    trees = {}
    for service, root in roots.items():
        if root not in by_pid:
            continue
        members, pending = [], [root]
        while pending:
            pid = pending.pop()
            members.append(by_pid[pid])
            pending += children_of.get(pid, [])
        trees[service] = members
    return trees


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


class ResourceSampler:
    """Samples each service's process tree every `interval_s` into the ledger's `samples` table."""

    def __init__(self, ledger: Ledger, ports: dict[str, int], interval_s: float, stage: str = "baseline") -> None:
        self.ledger = ledger
        self.ports = ports
        self.interval_s = interval_s
        self.stage = stage
        self._pids: dict[str, int] = {}
        self._looked_at = float("-inf")
        self._last_cpu: dict[str, tuple[float, float]] = {}  # service → (cpu seconds, wall time)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rediscover(self, now: float) -> None:
        if now - self._looked_at >= REDISCOVER_AFTER_S:
            self._pids = listening_pids(self.ports)
            self._looked_at = now

    def sample(self) -> None:
        """Take one sample of every service, plus their total and the machine's."""
        now = time.monotonic()
        if len(self._pids) < len(self.ports):
            self._rediscover(now)
        t = time.time()
        total = {"processes": 0, "cpu_percent": 0.0, "rss_bytes": 0}
        trees = _trees(self._pids)
        for service in self.ports:
            processes, cpu_s, rss = 0, 0.0, 0
            for proc in trees.get(service, []):
                with contextlib.suppress(psutil.Error):  # a child may end between scan and read
                    cpu_s += _cpu_seconds(proc)
                    rss += proc.memory_info().rss
                    processes += 1
            if service in trees:
                # None on a tree's first sample: there is no interval to measure CPU over yet
                previous = self._last_cpu.get(service)
                cpu_percent = None if previous is None else max(
                    0.0, 100.0 * (cpu_s - previous[0]) / (now - previous[1]))
                self._last_cpu[service] = (cpu_s, now)
            else:  # gone (stopped or restarted): it uses nothing; find it again later
                self._pids.pop(service, None)
                self._last_cpu.pop(service, None)
                cpu_percent = 0.0
            self.ledger.record("samples", stage=self.stage, t=t, service=service, processes=processes,
                               cpu_percent=cpu_percent, rss_bytes=rss)
            total["processes"] += processes
            total["cpu_percent"] = None if None in (cpu_percent, total["cpu_percent"]) else (
                total["cpu_percent"] + cpu_percent)
            total["rss_bytes"] += rss
        self.ledger.record("samples", stage=self.stage, t=t, service="total", **total)
        memory = psutil.virtual_memory()
        self.ledger.record("samples", stage=self.stage, t=t, service="machine", processes=None,
                           cpu_percent=psutil.cpu_percent(interval=None) * psutil.cpu_count(),
                           rss_bytes=memory.total - memory.available)

    @property
    def pids(self) -> dict[str, int]:
        """The root pid found for each service (those not found are missing)."""
        return dict(self._pids)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(psutil.Error, OSError):
                self.sample()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def __enter__(self) -> ResourceSampler:
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.interval_s))


@task(name="capture-baseline", cache_policy=NO_CACHE)
def capture_baseline(run_dir: str, ports: dict[str, int], seconds: float, interval_s: float) -> dict[str, int]:
    """Sample the idle services for `seconds`; returns the pids found per service."""
    sampler = ResourceSampler(Ledger.of(run_dir), ports, interval_s, stage="baseline")
    psutil.cpu_percent(interval=None)  # prime the machine-wide counter
    with sampler:
        time.sleep(seconds)
    return sampler.pids
