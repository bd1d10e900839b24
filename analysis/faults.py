"""Error handling and recovery: what each injected fault did to the deployment and how it came back.

One `FaultResult` per experiment (a row of `faults.parquet`). An experiment has a steady-state
hypothesis (a job succeeds and health is `healthy`); it injects a fault, watches the deployment while
the fault lasts, restores, and measures the time until health is healthy again and until a new job
succeeds again.

The stage (tasks.faults, flows.faults) records each thing it sees as it sees it, a row of the `fault_events`
table (see EVENTS); `observations` gathers one experiment's events into an `Observed`, and `fault_result` makes
the figures of it. The `faults` table is derived from the events whenever the tables are rebuilt (`fault_rows`),
so a run killed mid-experiment keeps what it saw and `python -m artifacts` recomputes the figures. Everything
here is pure: the tests call it on recorded observations.
"""

from __future__ import annotations

import json
import re
from typing import Literal

import polars as pl
from pydantic import BaseModel

from analysis.tracking import TERMINAL

SERVICES = ("tts", "llm", "redis", "server")
FAULTS = ("killed", "frozen", "slow", "restarted_with_jobs", "killed_with_jobs")
# every experiment the bundled stack can run, in the order the stage runs them
EXPERIMENTS = ("tts.killed", "llm.killed", "redis.killed", "tts.frozen", "llm.frozen", "llm.slow",
               "redis.restarted_with_jobs", "server.killed_with_jobs")
WITH_JOBS = ("restarted_with_jobs", "killed_with_jobs")  # faults injected while jobs are in flight
# words by which a job's error names a service (whole words, any case)
DEPENDENCY_WORDS = {"tts": ("tts", "text-to-speech", "speech"), "llm": ("llm", "ollama", "language model"),
                    "redis": ("redis",), "server": ("server",)}
HEALTHY = "healthy"
HUNG = ("timed_out", "stuck_pending")  # outcomes of a job that reached no terminal status within its bound


class FaultResult(BaseModel):
    """One fault experiment (a row of `faults.parquet`)."""

    service: str  # tts | llm | redis | server
    fault: str  # killed | frozen | slow | restarted_with_jobs | killed_with_jobs
    # measured: injected, restored and recovery waited for; not_run: nothing injected (detail says why);
    # interrupted: injected, and the run's stop came before recovery was measured
    state: Literal["measured", "not_run", "interrupted"] = "measured"
    # steady state back after restore: health healthy and a new job verified, each within the recovery bound
    # (None: not measured, see state)
    recovered: bool | None
    recovery_s: float | None  # end of the restore action → health `healthy` again
    first_success_s: float | None  # end of the restore action → first new job succeeded (verified video)
    restore_s: float | None = None  # how long the restore action itself took (a start, a command)
    # who injected it: the bundled stack's launcher (kill = SIGKILL, frozen = SIGSTOP) or the profile's commands
    injected_by: Literal["launcher", "commands"] | None = None
    jobs_failed_during: int  # jobs under the fault the server accepted that ended failed
    submissions_refused: int = 0  # submissions under the fault the server did not accept (no job: not a failed one)
    jobs_stuck: int  # jobs not terminal once recovered (never acceptable)
    health_during: str | None  # what /health said while the fault lasted ("degraded (tts_service: down)")
    job_error_during: str | None  # the error of a job under the fault, in the server's words
    named_dependency: bool | None  # that error names the faulty service
    hung: bool  # a job under the fault reached no terminal status within its bound
    detail: str | None  # what happened, in words, incl. why it could not be run


class JobSeen(BaseModel):
    """A job of an experiment: in flight when the fault was injected, or submitted while it lasted."""

    role: Literal["in_flight", "during"]
    job_id: str | None  # None: never accepted
    outcome: str  # as tasks.jobs measured it: succeeded | failed | timed_out | not_submitted | interrupted
    failure: str | None
    seconds: float | None = None  # submit → terminal status (or → given up)
    final_status: str | None = None  # the server's status of it once the deployment had recovered (None: not asked)


# what a `fault_events` row says, by kind (its `at` is when, on the wall clock; its `value` is words or JSON)
EVENTS = {
    "planned": "the experiment starts; value: JSON {recovery_bound_s, injected_by}",
    "not_run": "nothing is injected; value: why",
    "steady_before": "the steady state did not hold before injecting; value: why",
    "injected": "the fault was injected",
    "inject_failed": "the fault could not be injected; value: why",
    "health": "a health answer while the fault lasted; value: in words",
    "restore_started": "the restore action began",
    "restored": "the restore action ended: recovery is measured from here",
    "healthy": "health said healthy again after the restore",
    "first_success": "the first new job after the restore was verified (its terminal status)",
    "job": "what became of a job of the experiment; value: JSON of JobSeen",
    "note": "anything else seen; value: words",
    "error": "the experiment itself broke (a bug, an unexpected answer); value: words",
    "interrupted": "the run's stop came while it ran",
    "ended": "the experiment is over",
}


class Observed(BaseModel):
    """What the stage saw of one experiment, every instant on the wall clock (time.time())."""

    service: str
    fault: str
    not_run: str | None = None  # why the experiment was not run (nothing injected)
    interrupted: bool = False  # the run's stop came while it ran (the fault was restored, recovery not measured)
    steady_before: str | None = None  # why the steady state did not hold before injecting (None: it held)
    injected_at: float | None = None
    restore_started_at: float | None = None
    restored_at: float | None = None  # the restore action ended
    healthy_at: float | None = None  # health first `healthy` after restore (None: not within the bound)
    first_success_at: float | None = None  # terminal status of the first new job verified after restore
    recovery_bound_s: float | None = None
    injected_by: Literal["launcher", "commands"] | None = None
    ended_at: float | None = None  # None: the process ended before the experiment did
    health: list[str] = []  # health in words, each probe while the fault lasted, in order
    jobs: list[JobSeen] = []
    notes: list[str] = []  # what else the stage saw, in words (an action's error, a job's time under a slow llm)


# ---- words --------------------------------------------------------------------------------------

def health_words(status_code: int | None, body, error: str | None = None) -> str:
    """/health in words: "healthy", "degraded (tts_service: down)", "HTTP 503", "no answer (ConnectError)"."""
    if status_code is None:
        return f"no answer ({error or 'unknown'})"
    if not isinstance(body, dict):
        return f"HTTP {status_code}, not a JSON object"
    status = body.get("status")
    dependencies = body.get("dependencies") if isinstance(body.get("dependencies"), dict) else {}
    down = [f"{name}: {state}" for name, state in dependencies.items() if state != "up"]
    words = str(status) if status_code == 200 else f"HTTP {status_code} {status or ''}".rstrip()
    return words + (f" ({', '.join(down)})" if down else "")


def health_summary(seen: list[str]) -> str | None:
    """Each distinct answer once, in the order first seen: "healthy → degraded (tts_service: down)"."""
    return " → ".join(dict.fromkeys(seen)) or None


def names_dependency(error: str | None, service: str) -> bool | None:
    """Whether the error names the service (None: no error to read)."""
    if not error:
        return None
    words = "|".join(re.escape(word) for word in DEPENDENCY_WORDS.get(service, (service,)))
    return re.search(rf"(?<![\w-])({words})(?![\w-])", error, re.IGNORECASE) is not None


def steady_state(health: str, job_outcome: str | None, job_failure: str | None = None) -> str | None:
    """The hypothesis "health is healthy and a job succeeds": None when it holds, else why not in words."""
    problems = []
    if health != HEALTHY:
        problems.append(f"health said {health}")
    if job_outcome is not None and job_outcome != "succeeded":
        problems.append(f"a job {job_outcome}" + (f": {job_failure}" if job_failure else ""))
    return "; ".join(problems) or None


# ---- figures ------------------------------------------------------------------------------------

def _since(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else max(0.0, end - start)


def within(seconds: float | None, bound_s: float | None) -> bool:
    """Measured, and within the bound (if there is one): a recovery after the bound is no recovery."""
    return seconds is not None and (bound_s is None or seconds <= bound_s)


def is_stuck(job: JobSeen) -> bool:
    """Accepted, and still not terminal when asked once the deployment had recovered."""
    return job.job_id is not None and job.final_status is not None and job.final_status not in TERMINAL


def fault_result(seen: Observed) -> FaultResult:
    """The figures of one experiment from what the stage saw."""
    if seen.not_run or seen.steady_before:
        why = seen.not_run or f"the steady state did not hold before the fault: {seen.steady_before}"
        return FaultResult(service=seen.service, fault=seen.fault, state="not_run", injected_by=seen.injected_by,
                           recovered=None, recovery_s=None,
                           first_success_s=None, jobs_failed_during=0, jobs_stuck=0, health_during=None,
                           job_error_during=None, named_dependency=None, hung=False, detail=f"not run: {why}")
    recovery_s = _since(seen.restored_at, seen.healthy_at)
    first_success_s = _since(seen.restored_at, seen.first_success_at)
    recovered = None if seen.interrupted else within(recovery_s, seen.recovery_bound_s) and \
        within(first_success_s, seen.recovery_bound_s)
    failed = [job for job in seen.jobs if job.outcome == "failed"]
    refused = [job for job in seen.jobs if job.outcome == "not_submitted"]
    # the server's words for the fault: a job it accepted first (submitted during the fault, then one caught in
    # flight), else a refused submission (a 503's detail, or only the connection error)
    errors = [job.failure for job in sorted(failed + refused, key=lambda job: (job.job_id is None,
                                                                               job.role != "during")) if job.failure]
    error = errors[0] if errors else None
    stuck = sum(is_stuck(job) for job in seen.jobs)
    hung = any(job.outcome in HUNG for job in seen.jobs)
    return FaultResult(
        service=seen.service, fault=seen.fault, state="interrupted" if seen.interrupted else "measured",
        injected_by=seen.injected_by,
        recovered=recovered,
        recovery_s=recovery_s, first_success_s=first_success_s,
        restore_s=_since(seen.restore_started_at, seen.restored_at),
        jobs_failed_during=len(failed), submissions_refused=len(refused), jobs_stuck=stuck,
        health_during=health_summary(seen.health), job_error_during=error,
        named_dependency=names_dependency(error, seen.service), hung=hung,
        detail=_detail(seen, recovery_s, first_success_s, stuck),
    )


def _detail(seen: Observed, recovery_s: float | None, first_success_s: float | None, stuck: int) -> str:
    in_flight = sum(job.role == "in_flight" for job in seen.jobs)
    during = sum(job.role == "during" for job in seen.jobs)
    outcomes: dict[str, int] = {}
    for job in seen.jobs:
        outcomes[job.outcome] = outcomes.get(job.outcome, 0) + 1
    restored = "the fault was restored" if seen.restored_at is not None else "the fault was not seen restored"
    parts = [f"interrupted by the run's stop ({restored})"] if seen.interrupted else []
    jobs = ([f"{in_flight} in flight"] if in_flight else []) + [f"{during} submitted during the fault"]
    parts += [f"jobs: {', '.join(jobs)}"
              + (f" ({', '.join(f'{n} {outcome}' for outcome, n in outcomes.items())})" if outcomes else "")]
    ended = seen.restore_started_at or seen.restored_at
    if seen.injected_at is not None and ended is not None:
        parts.append(f"the fault held {ended - seen.injected_at:.1f} s")
    if (restore_s := _since(seen.restore_started_at, seen.restored_at)) is not None:
        parts.append(f"the restore took {restore_s:.1f} s (recovery is timed from its end)")
    if seen.interrupted:  # recovery was not waited for: nothing to say of it
        return "; ".join(parts + seen.notes)
    bound = f" within {seen.recovery_bound_s:g} s" if seen.recovery_bound_s else ""
    late = f", beyond the bound of {seen.recovery_bound_s:g} s" if seen.recovery_bound_s else ""
    parts.append(f"healthy {recovery_s:.1f} s after restore" + ("" if within(recovery_s, seen.recovery_bound_s)
                                                                 else late) if recovery_s is not None
                 else f"health not healthy again{bound}")
    parts.append(f"first verified video {first_success_s:.1f} s after restore"
                 + ("" if within(first_success_s, seen.recovery_bound_s) else late) if first_success_s is not None
                 else f"no new job verified{bound}")
    if stuck:
        parts.append(f"{stuck} job(s) still not terminal after recovery")
    return "; ".join(parts + seen.notes)


# ---- from the recorded events --------------------------------------------------------------------

EXPERIMENT_KEY = ("round", "attempt", "experiment")


def observations(events: list[dict]) -> list[Observed]:
    """Each experiment's events, in the order recorded, gathered into what was seen. An experiment with no `ended`
    event was cut off (the process was killed): injected, it reads as interrupted; else as not run."""
    return [_observed(group) for group in _groups(events)]


# events that only mark an instant: the kind → the Observed field that keeps it
INSTANTS = {"injected": "injected_at", "restore_started": "restore_started_at", "restored": "restored_at",
            "healthy": "healthy_at", "first_success": "first_success_at", "ended": "ended_at"}


def _observed(events: list[dict]) -> Observed:
    seen = Observed(service=events[0]["service"], fault=events[0]["fault"])
    for event in events:
        kind, at, value = event["kind"], event.get("at"), event.get("value")
        if kind in INSTANTS:
            setattr(seen, INSTANTS[kind], at)
        elif kind == "planned":
            plan = json.loads(value) if value else {}
            seen.recovery_bound_s, seen.injected_by = plan.get("recovery_bound_s"), plan.get("injected_by")
        elif kind == "not_run":
            seen.not_run = value
        elif kind == "steady_before":
            seen.steady_before = value
        elif kind == "inject_failed":
            seen.not_run = f"the fault could not be injected: {value}"
        elif kind == "health":
            seen.health.append(value)
        elif kind == "job":
            seen.jobs.append(JobSeen.model_validate_json(value))
        elif kind == "note":
            seen.notes.append(value)
        elif kind == "error":
            seen.notes.append(f"the experiment broke: {value}")
        elif kind == "interrupted":
            seen.interrupted = True
    if seen.interrupted and seen.injected_at is None and not (seen.not_run or seen.steady_before):
        seen.not_run = "the run's stop came before the fault was injected"
    if seen.ended_at is None and not (seen.not_run or seen.steady_before):
        if seen.injected_at is None:
            seen.not_run = "cut off before the fault was injected (the run ended)"
        else:
            seen.interrupted = True
            seen.notes.append("cut off: the run ended before this experiment did")
    return seen


def fault_rows(events: list[dict]) -> list[dict]:
    """The `faults` table from the `fault_events` rows: one row per experiment, `t` when it ended (or was last
    seen), in the round and attempt it ran in."""
    rows = []
    for group in _groups(events):
        seen, last = _observed(group), group[-1]
        rows.append({"t": seen.ended_at or last.get("at"), "round": last.get("round"), "attempt": last.get("attempt"),
                     **fault_result(seen).model_dump()})
    return rows


def _groups(events: list[dict]) -> list[list[dict]]:
    """The events of each experiment (by round, attempt and number), in the order recorded."""
    grouped: dict[tuple, list[dict]] = {}
    for event in events:
        grouped.setdefault(tuple(event.get(name) for name in EXPERIMENT_KEY), []).append(event)
    return list(grouped.values())


# ---- from a stored run --------------------------------------------------------------------------

def results_of(faults: pl.DataFrame) -> list[FaultResult]:
    """The stored `faults` rows as results, in the order they were taken."""
    fields = FaultResult.model_fields
    rows = faults.sort("t", nulls_last=True).iter_rows(named=True) if "t" in faults.columns else \
        faults.iter_rows(named=True)
    return [FaultResult(**{name: row.get(name) for name in fields}
                        | {"state": row.get("state") or _state_of_old_row(row),
                           "jobs_failed_during": row.get("jobs_failed_during") or 0,
                           "submissions_refused": row.get("submissions_refused") or 0,
                           "jobs_stuck": row.get("jobs_stuck") or 0, "hung": bool(row.get("hung"))})
            for row in rows]


def _state_of_old_row(row: dict) -> str:
    """A row stored before `state` existed: None meant not run or interrupted, told apart by its detail."""
    if row.get("recovered") is not None:
        return "measured"
    return "interrupted" if (row.get("detail") or "").startswith("interrupted") else "not_run"


def skipped_reason(stages: pl.DataFrame, results: list[FaultResult]) -> str | None:
    """Why a run has no fault results, in words (None when it has some): the faults stage's own reason when
    it was skipped or failed, else that it did not run."""
    if results:
        return None
    rows = [row for row in stages.iter_rows(named=True) if row["stage"] == "faults"]
    if not rows:
        return "the faults stage did not run"
    last = rows[-1]
    if last["outcome"] == "skipped":
        return last["detail"] or "skipped"
    if last["outcome"] in ("failed", "interrupted", "running"):
        return f"the faults stage {'was cut off' if last['outcome'] == 'running' else last['outcome']}" + \
            (f": {last['detail']}" if last["detail"] else "") + " before any experiment was recorded"
    return "the faults stage recorded no experiment"
