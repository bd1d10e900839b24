"""Root cause: when jobs fail, which service stopped answering, since when, and (bundled stack) how it died.
(The rows and their words: analysis.incidents.)

The four services are re-probed with the verification checks (`tasks.services`, each bounded by
timing.verify_timeout_s). For a service of this process's bundled stack that exited, the launcher knows
its exit code, when it exited and its log's last lines. Otherwise "since" is the first failed observation:
the first request to the server that got no answer, or the re-probe itself.

An incident is recorded once per outage: a service found failing again by a later re-probe is the same
incident, until a re-probe finds it answering.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from analysis.incidents import incident_rows
from profiles.settings import Profile
from stack.launcher import service_exit
from tasks.services import Services, broken_check_row, service_checks
from tasks.store import Ledger

SERVICES = ("server", "tts", "llm", "redis")

_open: dict[tuple[Path, str], dict] = {}  # (run folder, service) → its incident, while it lasts
_open_lock = threading.Lock()


def probe_services(profile: Profile, services: Services) -> list[dict] | None:
    """The four verification checks at once (each ends within its own bound); None at a stop request
    (a check it cut short says nothing about its service)."""
    checks = {name: check.fn(*args) for name, (check, args) in service_checks(profile, services).items()}

    async def all_at_once() -> list:
        return await asyncio.gather(*checks.values(), return_exceptions=True)

    rows = []
    for name, result in zip(checks, asyncio.run(all_at_once()), strict=True):
        if result is None:
            return None
        if isinstance(result, Exception):
            result = broken_check_row(name, getattr(services, name), result)
        rows.append(result)
    return rows


def reprobe(profile: Profile, services: Services, run_dir: str, first_failed: dict[str, float]) -> list[dict]:
    """Re-probe the four services; record an incident for each newly failing one; return every incident
    open now (the failing services), earliest first. At a stop request: none, and nothing recorded."""
    checks = probe_services(profile, services)
    if checks is None:
        return []
    probed_at = time.time()
    exits = {name: died for name in SERVICES if (died := service_exit(getattr(services, name)))}
    found = incident_rows(checks, probed_at, first_failed, exits)
    run = Path(run_dir).resolve()
    failing = {row["service"] for row in found}
    with _open_lock:
        for name in set(SERVICES) - failing:
            _open.pop((run, name), None)  # answering again: a later failure is a new incident
        for row in found:
            if (run, row["service"]) not in _open:
                _open[(run, row["service"])] = row
                Ledger.of(run).record("incidents", **row)
        return sorted((_open[(run, name)] for name in failing), key=lambda row: row["since"])
