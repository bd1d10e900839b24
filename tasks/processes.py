"""The services' processes, found from the ports they listen on, and their CPU and memory over time.

Only the processes serving the profile's ports (with all their children, e.g. ffmpeg) are sampled,
never the campaign's own process. One CPU scale for services and machine alike: percent of ONE core,
i.e. CPU seconds used per wall second × 100 (a machine with N cores tops out at N × 100).

A service's CPU over an interval is accounted per process (keyed by pid and start time): the growth of
each process's own CPU time and of the CPU time of the children it reaped, minus what was already
counted of a child that has since gone (its whole CPU time moves into its parent's "reaped" figure when
it ends, and counting it both ways once made a 2-core machine show 404.5 %). Short-lived encoders that
start and end between two samples are still counted, through their parent's reaped time.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field

import psutil
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.interrupt import pause
from tasks.store import Ledger

# No interval can hold more CPU time than every core busy for all of it; readings above that come from the
# kernel's 10 ms accounting ticks over a short interval (0.2 s: ±5 % per process) and are cut to it.
MAX_CPU_PERCENT = 100.0 * (os.cpu_count() or 1)
REDISCOVER_AFTER_S = 5.0  # a restarted service gets a new pid; look again, but not on every sample


def percent_of_one_core(cpu_seconds: float, wall_seconds: float) -> float:
    """CPU seconds per wall second × 100, within 0 and every core busy (MAX_CPU_PERCENT)."""
    return min(MAX_CPU_PERCENT, 100.0 * max(0.0, cpu_seconds) / wall_seconds)


def listening_pids(ports: dict[str, int]) -> dict[str, int]:
    """Service name → pid of the process listening on its port (services not found are left out)."""
    wanted = {port: name for name, port in ports.items()}
    found: dict[str, int] = {}
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in wanted and conn.pid:
            if conn.pid != os.getpid():
                found.setdefault(wanted[conn.laddr.port], conn.pid)
    return found


def _trees(roots: dict[str, int]) -> tuple[dict[str, list[psutil.Process]], set[int]]:
    """Each service's root process and all its descendants (parents before children), from ONE scan of
    the process table (psutil's `children()` rescans it per call, which would cost more than the sample
    itself); and every pid of that scan."""
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
    return trees, set(by_pid)


Key = tuple[int, float]  # (pid, create_time): a pid reused by a new process is a new process


@dataclass
class CpuAccount:
    """One service's CPU bookkeeping between samples."""

    counted: dict[Key, tuple[float, float]] = field(default_factory=dict)  # key → (own s, reaped children s)
    parents: dict[Key, int] = field(default_factory=dict)  # key → parent pid
    wall: float | None = None  # monotonic time of the last sample
    debt: float = 0.0  # CPU seconds counted early (a child reaped while being read), taken off the next interval

    def interval(self, readings: dict[Key, tuple[float, float, int]], alive: set[int], now: float) -> float | None:
        """CPU % of one core since the last sample from this sample's readings (key → own s, reaped s,
        parent pid); `alive` is every pid in the process table (a process not read but still there keeps
        its account). None on the first sample: there is no interval yet."""
        used = 0.0
        for key, (own, reaped, _) in readings.items():
            before = self.counted.get(key)
            if before is not None:
                used += (own - before[0]) + (reaped - before[1])
            elif self.wall is not None and key[1] >= time.time() - (now - self.wall):
                used += own + reaped  # started within the interval: all of it was used in the interval
        gone = [key for key in self.counted if key not in readings and key[0] not in alive]
        for key in gone:  # ended: its whole CPU time is now in its parent's reaped time, which was added above
            if (parent := self.parents.get(key)) is not None and parent in alive:
                used -= sum(self.counted[key])
        kept = {key: value for key, value in self.counted.items() if key not in readings and key not in gone}
        self.counted = {**kept, **{key: (own, reaped) for key, (own, reaped, _) in readings.items()}}
        self.parents = {key: value for key, value in self.parents.items() if key in self.counted} | {
            key: parent for key, (_, _, parent) in readings.items()}
        previous, self.wall = self.wall, now
        if previous is None or now <= previous:
            return None
        used -= self.debt
        self.debt = max(0.0, -used)
        return percent_of_one_core(used, now - previous)


def _read(members: list[psutil.Process]) -> tuple[dict[Key, tuple[float, float, int]], int]:
    """Own and reaped-children CPU seconds, parent pid, and the summed RSS of a process tree. Children are
    read before their parents, so a child reaped between the two reads is found in its parent's figure."""
    readings: dict[Key, tuple[float, float, int]] = {}
    rss = 0
    for proc in reversed(members):  # `members` lists every parent before its descendants
        with contextlib.suppress(psutil.Error):  # a child may end between scan and read
            with proc.oneshot():
                times = proc.cpu_times()
                readings[(proc.pid, proc.create_time())] = (
                    times.user + times.system, times.children_user + times.children_system, proc.ppid())
                rss += proc.memory_info().rss
    return readings, rss


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy, summed over its cores (psutil's own definition of
    busy: everything but idle and iowait, guest time being already part of user time)."""
    times = psutil.cpu_times()
    busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
    return busy - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


class ResourceSampler:
    """Samples each service's process tree every `interval_s` into the ledger's `samples` table. A service
    with no process found at a sample has no row for it (not measured). The deployment's figures are summed
    from these rows per instant (analysis.resources), so no sum row is written."""

    def __init__(self, ledger: Ledger, ports: dict[str, int], interval_s: float,
                 stage: str | None = "baseline") -> None:
        self.ledger = ledger
        self.ports = ports
        self.interval_s = interval_s
        self.stage = stage
        self._pids: dict[str, int] = {}
        self._looked_at = float("-inf")
        self._accounts: dict[str, CpuAccount] = {}
        self._machine: tuple[float, float] | None = None  # (busy s, monotonic time) of the last sample
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rediscover(self, now: float) -> None:
        if now - self._looked_at >= REDISCOVER_AFTER_S:
            self._pids = listening_pids(self.ports)
            self._looked_at = now

    def _machine_cpu(self) -> float | None:
        """The machine's CPU % of one core since the last sample (None on the first)."""
        busy, now, previous = machine_busy_seconds(), time.monotonic(), self._machine
        self._machine = (busy, now)
        if previous is None or now <= previous[1]:
            return None
        return percent_of_one_core(busy - previous[0], now - previous[1])

    def label(self, stage: str | None) -> None:
        """Label the samples from now on with `stage`; None pauses sampling, and the CPU intervals start afresh
        after it (an interval spanning the pause would be counted to the next stage)."""
        if stage is None:
            self._accounts.clear()
            self._machine = None
        self.stage = stage

    def sample(self) -> None:
        """Take one sample of every service, and the machine's (none while paused)."""
        stage = self.stage
        if stage is None:
            return
        now = time.monotonic()
        if len(self._pids) < len(self.ports):
            self._rediscover(now)
        t = time.time()
        trees, alive = _trees(self._pids)
        for service in self.ports:
            readings, rss = _read(trees[service]) if service in trees else ({}, 0)
            if not readings:
                # No process of its own here (a container, another host, not started, or gone and not found
                # again yet): not measured, so no row, rather than a 0 % and 0 MB it did not show.
                self._pids.pop(service, None)
                self._accounts.pop(service, None)
                continue
            # timed at the read: a scan that took longer this time must not stretch the interval
            cpu_percent = self._accounts.setdefault(service, CpuAccount()).interval(readings, alive, time.monotonic())
            self.ledger.record("samples", stage=stage, t=t, service=service, processes=len(readings),
                               cpu_percent=cpu_percent, rss_bytes=rss)
        memory = psutil.virtual_memory()
        self.ledger.record("samples", stage=stage, t=t, service="machine", processes=None,
                           cpu_percent=self._machine_cpu(), rss_bytes=memory.total - memory.available)

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
    """Sample the idle services for `seconds`, or until a stop request (then at once, with the samples taken
    so far); returns the pids found per service. The wait is the bound: no Prefect timeout is needed."""
    sampler = ResourceSampler(Ledger.of(run_dir), ports, interval_s, stage="baseline")
    with sampler:
        pause(seconds)
    return sampler.pids
