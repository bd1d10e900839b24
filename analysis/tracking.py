"""What a job's polled status history says: time per phase and whether the tracking is consistent."""

from __future__ import annotations

from datetime import datetime

PHASES = ("script", "audio", "visual", "compose")
TERMINAL = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
STATUSES = frozenset({"pending", "processing"}) | TERMINAL
_RANK = {"pending": 0, "processing": 1, **{status: 2 for status in TERMINAL}}


def _instant(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


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


def tracking_problems(trace: list[dict]) -> list[str]:
    """Every way the status history breaks the contract's promises, in plain words (empty: consistent)."""
    problems: list[str] = []
    previous: dict | None = None
    for obs in trace:
        status, progress = obs["status"], obs.get("progress")
        if status not in STATUSES:
            problems.append(f"unknown status {status!r}")
        if progress is not None and not 0 <= progress <= 100:
            problems.append(f"progress {progress} outside 0..100")
        if previous is not None:
            before = previous["status"]
            if before in TERMINAL and status != before:
                problems.append(f"terminal status {before} changed to {status}")
            elif _RANK.get(status, 0) < _RANK.get(before, 0):
                problems.append(f"status moved backwards: {before} → {status}")
            if progress is not None and previous.get("progress") is not None and progress < previous["progress"]:
                problems.append(f"progress decreased: {previous['progress']} → {progress}")
        if status in TERMINAL:
            created, completed = _instant(obs.get("created_at")), _instant(obs.get("completed_at"))
            if completed is None:
                problems.append(f"{status} without completed_at")
            elif created is not None and completed < created:
                problems.append("completed_at is before created_at")
        previous = obs
    return list(dict.fromkeys(problems))  # each problem once, in order of first appearance
