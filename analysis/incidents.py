"""What went wrong with a service, in rows and words (pure): shared by the job failures and the reports.

An incident is a service found failing when the services were re-probed after jobs failed: since when
(the moment a bundled service exited, else its first failed observation), how it died (exit code, last
log lines) when it was one of the bundled stack's processes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Exit(Protocol):
    """A service process that ended on its own (stack.launcher.ServiceExit)."""

    exit_code: int
    exited_at: float
    log_tail: str


def clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S UTC")


def incident_rows(checks: list[dict], probed_at: float, first_failed: dict[str, float],
                  exits: dict[str, Exit]) -> list[dict]:
    """An `incidents` row for every service whose check failed. `first_failed`: the earliest failed
    observation of a service before the re-probe; `exits`: bundled services that died on their own."""
    rows = []
    for check in checks:
        if check["ok"]:
            continue
        name = check["service"]
        died = exits.get(name)
        since = died.exited_at if died else min(first_failed.get(name, probed_at), probed_at)
        rows.append({"service": name, "t": probed_at, "since": since, "detail": check["detail"],
                     "exit_code": died.exit_code if died else None,
                     "log_tail": (died.log_tail or None) if died else None})
    return rows


def sentence(incident: dict) -> str:
    """"tts stopped answering at 12:03:05 UTC (exit -9)" for a process that died; a service that still
    answers, wrongly, or one whose end is not known: "server failing since 12:03:09 UTC: <what its check saw>"."""
    since = incident["since"] if incident["since"] is not None else incident["t"]
    if incident["exit_code"] is not None:
        return f"{incident['service']} stopped answering at {clock(since)} (exit {incident['exit_code']})"
    return f"{incident['service']} failing since {clock(since)}: {incident['detail']}"


def cause(incidents: list[dict]) -> str | None:
    """The incidents in one sentence, the earliest first (None: no service failing)."""
    ordered = sorted(incidents, key=lambda row: row["since"] if row["since"] is not None else row["t"])
    return "; ".join(sentence(row) for row in ordered) or None


def explained(failure: str, why: str | None) -> str:
    """A job's failure with the service-level cause in front of what the job itself saw."""
    return f"{why} — {failure}" if why else failure
