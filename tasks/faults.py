"""The I/O of the fault experiments: inject a fault, restore it, watch health, ask a job's status, record.

A fault is injected into the bundled stack through its launcher (`stack.launcher.Stack`: kill, stop,
freeze, slow the llm), and into an external deployment by the profile's commands
(`[faults.actions.<service>.<fault>]`, run with `sh -c`, each within faults.action_timeout_s; only the
setting's name is logged, never the command, which may carry a secret). Every wait is bounded and ends at a
stop request, except a restore command: leaving an external target broken would be worse than finishing
it within its bound (a second Ctrl-C still quits at once).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from analysis.faults import EXPERIMENTS, HEALTHY, FaultResult, fault_result, health_words, observations
from profiles.redact import MASK, MIN_SECRET_LENGTH, redact_secret_looking
from profiles.settings import FaultCommands, Faults, Profile
from stack.launcher import FREEZE_MARGIN_S, Stack, StackError, stack_serving
from tasks import http
from tasks.interrupt import Interrupted, pause, stop_requested
from tasks.services import Services
from tasks.store import Ledger

COMMAND_POLL_S = 0.1
COMMAND_OUTPUT_CHARS = 300  # of a failed command's output, quoted (masked) in the result's detail


@dataclass(frozen=True)
class Planned:
    """One experiment to run: which service and fault, and how (the bundled stack, or the profile's commands)."""

    service: str
    fault: str
    commands: FaultCommands | None = None
    not_run: str | None = None  # why it cannot be run

    def __str__(self) -> str:
        return f"{self.service}.{self.fault}"


def plan(faults: Faults, bundled: bool) -> tuple[list[Planned], str | None]:
    """(the experiments to run, why the stage is skipped instead). The bundled stack runs every experiment it
    can (or those listed); an external target runs those with commands, and one listed without them is kept
    as not run, saying which setting is missing."""
    enabled = faults.enabled if faults.enabled is not None else bundled
    if not enabled:
        return [], "faults.enabled = false" if faults.enabled is False else \
            "off for an external target: opt in with [faults] enabled = true and fault commands under " \
            "[faults.actions.<service>.<fault>]"
    names = list(faults.experiments) if faults.experiments is not None else None
    if bundled:
        return [Planned(*name.split(".")) for name in names or EXPERIMENTS], None
    listed = names if names is not None else [name for name in EXPERIMENTS
                                              if _commands(faults, name) is not None]
    if not listed:
        return [], "no fault commands for an external target: add [faults.actions.<service>.<fault>] inject " \
                   "(and restore) commands, e.g. [faults.actions.tts.killed] inject = \"docker kill tts\""
    planned = []
    for name in listed:
        service, fault = name.split(".")
        commands = _commands(faults, name)
        planned.append(Planned(service, fault, commands, None if commands else
                               f"no commands under [faults.actions.{service}.{fault}] for an external target"))
    return planned, None


def _commands(faults: Faults, name: str) -> FaultCommands | None:
    service, fault = name.split(".")
    return faults.actions.get(service, {}).get(fault)


def fault_jobs_profile(profile: Profile) -> Profile:
    """The profile the experiments' jobs run with: a job under a fault is given up after faults.job_bound_s."""
    bound = profile.faults.job_bound_s
    timing = profile.timing
    return profile.model_copy(update={"timing": timing.model_copy(update={
        "job_timeout_s": min(timing.job_timeout_s, bound), "pending_timeout_s": min(timing.pending_timeout_s, bound),
        "poll_failure_s": min(timing.poll_failure_s, bound)})})


# ---- inject and restore -----------------------------------------------------------------------------

def _run_command(setting: str, command: str, timeout_s: float, stop_aware: bool) -> str | None:
    """Run `command` with `sh -c` in a session of its own within `timeout_s` (and, if `stop_aware`, until a stop
    request); None when it exited 0, else what went wrong, in words, with its output masked.

    Its output goes to a file, not a pipe: a child it left in the background (`sleep 20 & echo started`) would
    hold a pipe open past the bound. At the bound the whole session is killed, whatever it spawned included."""
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(["sh", "-c", command], stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)
        ends = time.monotonic() + timeout_s
        why = None
        while proc.poll() is None:
            if time.monotonic() > ends:
                why = f"{setting}: not done within {timeout_s:g} s (stopped)"
            elif stop_aware and stop_requested():
                why = f"{setting}: stopped by the run's stop"
            if why:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(COMMAND_POLL_S)
        output.seek(0)
        text = output.read().decode(errors="replace").strip()
    if why is None and proc.returncode != 0:
        why = f"{setting}: exited {proc.returncode}"
    if why and text:
        why += f": {masked_output(command, text[-COMMAND_OUTPUT_CHARS:])}"
    return why


def masked_output(command: str, text: str) -> str:
    """A command's output as it may be written: the value of every environment variable the command references
    (`$NAME`, `${NAME}`: how a profile passes a secret to it) masked, and whatever else looks like a secret."""
    names = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", command))
    values = sorted((os.environ[name] for name in names if len(os.environ.get(name, "")) >= MIN_SECRET_LENGTH),
                    key=len, reverse=True)  # a longer value first: it may contain a shorter one
    for value in values:
        text = text.replace(value, MASK)
    return redact_secret_looking(text)


class BackgroundCommand:
    """A fault command run in a thread of its own, within its bound and until a stop: for a fault that is one
    command (a restart), watched while it runs. `ended` is set, and `ended_at` (wall clock) known, once it ends."""

    def __init__(self, setting: str, command: str, timeout_s: float) -> None:
        self.started_at = time.time()
        self.ended = threading.Event()
        self.ended_at: float | None = None
        self.problem: str | None = None
        threading.Thread(target=self._run, args=(setting, command, timeout_s), name=setting, daemon=True).start()

    def _run(self, setting: str, command: str, timeout_s: float) -> None:
        try:
            self.problem = _run_command(setting, command, timeout_s, stop_aware=True)
        except Exception as exc:  # never leave the watcher waiting for an end that will not be set
            self.problem = f"{setting}: {type(exc).__name__}: {exc}"
        finally:
            self.ended_at = time.time()
            self.ended.set()


def _bundled(services: Services) -> Stack:
    stack = stack_serving(services.server)
    if stack is None:
        raise StackError("the bundled stack of this run is not running in this process")
    return stack


@task(name="inject-fault", cache_policy=NO_CACHE, task_run_name="inject-{planned}")
def inject_fault(profile: Profile, services: Services, planned: Planned) -> str | None:
    """Inject the fault; None when done, else why it could not be (nothing may have been injected)."""
    faults, service, fault = profile.faults, planned.service, planned.fault
    if planned.commands is not None:
        return _run_command(f"faults.actions.{service}.{fault}.inject", planned.commands.inject,
                            faults.action_timeout_s, stop_aware=True)
    try:
        stack = _bundled(services)
        if fault == "frozen":
            stack.freeze_service(service, faults.freeze_s + FREEZE_MARGIN_S)
        elif fault == "slow":
            if service != "llm":
                return f"the bundled stack can slow only the llm, not the {service}"
            stack.slow_llm(faults.llm_delay_s)
        elif fault == "restarted_with_jobs":
            stack.stop_service(service)  # a restart: SIGTERM, the service ends as it is told to
        else:  # killed, killed_with_jobs: SIGKILL, as a crash
            stack.kill_service(service)
    except StackError as exc:
        return str(exc)
    return None


@task(name="restore-fault", cache_policy=NO_CACHE, task_run_name="restore-{planned}")
def restore_fault(profile: Profile, services: Services, planned: Planned) -> str | None:
    """End the fault (start, resume, remove the delay); None when done, else why not. A command is not cut by a
    stop (an external target must not be left broken); a bundled service's start is (the stack stops next)."""
    faults, service, fault = profile.faults, planned.service, planned.fault
    if planned.commands is not None:
        if planned.commands.restore is None:
            return None
        return _run_command(f"faults.actions.{service}.{fault}.restore", planned.commands.restore,
                            faults.action_timeout_s, stop_aware=False)
    try:
        stack = _bundled(services)
        if fault == "frozen":
            stack.resume_service(service)
        elif fault == "slow":
            stack.slow_llm(0.0)
        else:
            stack.start_service(service, stop_requested)
    except StackError as exc:
        return str(exc).splitlines()[0]
    return None


# ---- watching ---------------------------------------------------------------------------------------

def _get_json(client: httpx.Client, profile: Profile, path: str) -> tuple[int | None, object, str | None]:
    """(status code, JSON body or None, why no answer) of one GET within the request timeout."""
    try:
        status_code, body = http.whole_answer(client, "GET", path, profile.timing.request_timeout_s)
    except (httpx.HTTPError, http.BadResponse) as exc:
        return None, None, type(exc).__name__
    try:
        return status_code, json.loads(body), None
    except ValueError:
        return status_code, None, None


def _health(client: httpx.Client, profile: Profile) -> str:
    return health_words(*_get_json(client, profile, profile.target.endpoints.health))


def watch_health(profile: Profile, services: Services, at_least_s: float, at_most_s: float,
                 done: Callable[[], bool] = lambda: True,
                 answered: Callable[[str], object] = lambda _: None) -> list[str]:
    """/health in words, probed every poll interval for at least `at_least_s`, then until `done()`, at most
    `at_most_s` (ends at a stop request); each answer is also given to `answered` as it comes."""
    seen: list[str] = []
    started = time.monotonic()
    with http.timed_client(base_url=services.server) as client:
        while True:
            try:
                seen.append(_health(client, profile))
            except Interrupted:
                break
            answered(seen[-1])
            elapsed = time.monotonic() - started
            if elapsed >= at_most_s or (elapsed >= at_least_s and done()):
                break
            if pause(profile.timing.poll_interval_s):
                break
    return seen


def wait_healthy(profile: Profile, services: Services, bound_s: float) -> tuple[float | None, str]:
    """(when /health first said healthy, wall clock; None if not within `bound_s` or at a stop), last words."""
    ends = time.monotonic() + bound_s
    words = "not asked"
    with http.timed_client(base_url=services.server) as client:
        while time.monotonic() < ends:
            try:
                words = _health(client, profile)
            except Interrupted:
                return None, words
            if words == HEALTHY:
                return time.time(), words
            if pause(profile.timing.poll_interval_s):
                break
    return None, words


def wait_processing(profile: Profile, services: Services, bound_s: float) -> bool:
    """Whether the server's active list showed a job processing within `bound_s` (ends at a stop request)."""
    path = f"{profile.target.endpoints.active}?limit={profile.workload.list_limit}"
    ends = time.monotonic() + bound_s
    with http.timed_client(base_url=services.server) as client:
        while time.monotonic() < ends:
            try:
                _, body, _ = _get_json(client, profile, path)
            except Interrupted:
                return False
            active = body.get("active_jobs") if isinstance(body, dict) else None
            if isinstance(active, list) and any(isinstance(job, dict) and job.get("status") == "processing"
                                                for job in active):
                return True
            if pause(profile.timing.poll_interval_s / 2):
                break
    return False


def job_status(profile: Profile, services: Services, job_id: str) -> str | None:
    """The job's status as the server says it now (None: no answer, or not a status object)."""
    with http.timed_client(base_url=services.server) as client:
        try:
            _, body, _ = _get_json(client, profile, profile.target.endpoints.status.format(job_id=job_id))
        except Interrupted:
            return None
    status = body.get("status") if isinstance(body, dict) else None
    return status if isinstance(status, str) else None


class ExperimentLog:
    """What one experiment sees, each event (analysis.faults.EVENTS) written to the run's `fault_events` as it is
    seen; the experiment's figures are made of these same events (`result`)."""

    def __init__(self, run_dir: str, number: int, service: str, fault: str) -> None:
        self.ledger = Ledger.of(run_dir)
        self.number, self.service, self.fault = number, service, fault
        self.events: list[dict] = []

    def __call__(self, kind: str, value: object = None, at: float | None = None) -> float:
        """Record one event now (or at `at`, wall clock); returns its instant."""
        at = time.time() if at is None else at
        row = {"experiment": self.number, "service": self.service, "fault": self.fault, "kind": kind, "at": at,
               "value": value if value is None or isinstance(value, str) else json.dumps(value)}
        self.ledger.record("fault_events", **row)
        self.events.append(row)
        return at

    def result(self) -> FaultResult:
        result = fault_result(observations(self.events)[0])
        get_run_logger().info("fault %s %s: %s", result.service, result.fault, result.detail)
        return result
