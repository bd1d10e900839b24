"""What a job's polled status history says: time per phase and whether the tracking is consistent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

PHASES = ("script", "audio", "visual", "compose")
TERMINAL = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
STATUSES = frozenset({"pending", "processing"}) | TERMINAL
_RANK = {"pending": 0, "processing": 1, **{status: 2 for status in TERMINAL}}


def parsed_time(value) -> datetime | None:
    """An ISO-8601 timestamp as written (naive when it carries no UTC offset); None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def instant(value) -> datetime | None:
    """The instant a timestamp names, one without a UTC offset taken as UTC (so any two compare; whether the
    offset is missing is a rule of its own, analysis.conformance)."""
    moment = parsed_time(value)
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def phase_durations(trace: list[dict], submitted_at: float, finished_at: float | None) -> dict[str, float | None]:
    """Seconds spent queued and in each phase, as seen by polling (resolution: the poll interval).

    A phase starts when it is first observed and ends when any later phase (or the end) is first
    observed; a phase too short to be seen by any poll is None rather than a guess.
    """
    order = ("queued", *PHASES)
    first_seen: dict[str, float] = {"queued": submitted_at}
    for obs in trace:
        if obs["status"] == "processing" and obs.get("phase") in PHASES:
            first_seen.setdefault(obs["phase"], obs["t"])
        if obs["status"] == "processing":
            first_seen.setdefault("processing", obs["t"])
    durations: dict[str, float | None] = {}
    for index, name in enumerate(order):
        start = first_seen.get(name)
        later = [first_seen[n] for n in order[index + 1:] if n in first_seen]
        if name == "queued" and "processing" in first_seen:
            later.append(first_seen["processing"])
        if finished_at is not None:
            later.append(finished_at)
        durations[name] = max(0.0, min(later) - start) if start is not None and later else None
    return durations


class Promise(NamedTuple):
    """A promise of the contract about a job's status history, checked on each answer given the one before it
    (None for the job's first). `problem` is asked only where `applies`; None: the promise held."""

    rule: str  # in words, as the conformance table names it
    unchecked: str  # why it was not checked when it applied to no answer
    applies: Callable[[dict | None, dict], bool]
    problem: Callable[[dict | None, dict], str | None]


def _decreased(before: dict, obs: dict) -> str | None:
    return f"progress decreased: {before['progress']} → {obs['progress']}" if obs["progress"] < before["progress"] \
        else None


def _completed_before_created(obs: dict) -> bool:
    created, completed = instant(obs.get("created_at")), instant(obs.get("completed_at"))
    return created is not None and completed is not None and completed < created


PROMISES = (
    Promise(f"status is one of {', '.join(sorted(STATUSES, key=lambda s: (_RANK[s], s)))}",
            "no status answer was recorded",
            lambda before, obs: True,
            lambda before, obs: None if obs["status"] in STATUSES else f"unknown status {obs['status']!r}"),
    Promise("progress is within 0..100", "no answer gave a progress",
            lambda before, obs: obs.get("progress") is not None,
            lambda before, obs: None if 0 <= obs["progress"] <= 100 else f"progress {obs['progress']} outside 0..100"),
    Promise("once terminal, the status never changes", "no job was polled after a terminal status",
            lambda before, obs: before is not None and before["status"] in TERMINAL,
            lambda before, obs: None if obs["status"] == before["status"]
            else f"terminal status {before['status']} changed to {obs['status']}"),
    Promise("the status never moves backwards (pending → processing → terminal)",
            "no job was polled twice before a terminal status",
            lambda before, obs: before is not None and before["status"] not in TERMINAL,
            lambda before, obs: f"status moved backwards: {before['status']} → {obs['status']}"
            if _RANK.get(obs["status"], 0) < _RANK.get(before["status"], 0) else None),
    Promise("progress never decreases", "no job gave a progress in two answers in a row",
            lambda before, obs: before is not None and before.get("progress") is not None
            and obs.get("progress") is not None,
            _decreased),
    Promise("every terminal status carries completed_at", "no job was seen terminal",
            lambda before, obs: obs["status"] in TERMINAL,
            lambda before, obs: None if instant(obs.get("completed_at")) else f"{obs['status']} without completed_at"),
    Promise("completed_at is not before created_at", "no terminal answer gave a completed_at",
            lambda before, obs: obs["status"] in TERMINAL and instant(obs.get("completed_at")) is not None,
            lambda before, obs: "completed_at is before created_at" if _completed_before_created(obs) else None),
)


def tracking_problems(trace: list[dict]) -> list[str]:
    """Every way the status history breaks the contract's promises, in plain words (empty: consistent)."""
    problems: list[str] = []
    previous: dict | None = None
    for obs in trace:
        problems += [problem for promise in PROMISES if promise.applies(previous, obs)
                     and (problem := promise.problem(previous, obs))]
        previous = obs
    return list(dict.fromkeys(problems))  # each problem once, in order of first appearance
