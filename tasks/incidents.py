"""Root cause: when jobs fail, which service stopped answering, since when, and (bundled stack) how it died.

The four services are re-probed with the verification checks (`tasks.services`, each bounded by
timing.verify_timeout_s). For a service of this process's bundled stack that exited, the launcher knows
its exit code, when it exited and its log's last lines. Otherwise "since" is the first failed observation:
the first request to the server that got no answer, or the re-probe itself.

An incident is recorded once per outage: a service found failing again by a later re-probe is the same
incident, until a re-probe finds it answering.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from profiles.settings import Profile
from stack.launcher import ServiceExit, service_exit
from tasks.services import Services, check_llm, check_redis, check_server, check_tts
from tasks.store import Ledger

SERVICES = ("server", "tts", "llm", "redis")

_open: dict[tuple[Path, str], dict] = {}  # (run folder, service) → its incident, while it lasts
_open_lock = threading.Lock()


def clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S UTC")


def incident_rows(checks: list[dict], probed_at: float, first_failed: dict[str, float],
                  exits: dict[str, ServiceExit]) -> list[dict]:
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


def cause(incidents: list[dict]) -> str | None:
    """The incidents in one sentence, the earliest first: "tts stopped answering at 12:03:05 UTC (exit -9)"."""
    parts = []
    for incident in sorted(incidents, key=lambda row: row["since"]):
        if incident["exit_code"] is not None:
            parts.append(f"{incident['service']} stopped answering at {clock(incident['since'])} "
                         f"(exit {incident['exit_code']})")
        else:
            parts.append(f"{incident['service']} failing since {clock(incident['since'])}: {incident['detail']}")
    return "; ".join(parts) or None


def explained(failure: str, why: str | None) -> str:
    """A job's failure with the service-level cause in front of what the job itself saw."""
    return f"{why} — {failure}" if why else failure


def _probe(profile: Profile, services: Services) -> list[dict]:
    """The four verification checks at once (each ends within its own bound)."""
    timeout = profile.timing.verify_timeout_s
    endpoints = profile.target.endpoints
    checks = {
        "server": lambda: check_server.fn(services.server, endpoints, timeout),
        "tts": lambda: check_tts.fn(services.tts, endpoints, timeout),
        "llm": lambda: check_llm.fn(services.llm, services.llm_model, endpoints, timeout),
        "redis": lambda: check_redis.fn(services.redis, profile.target.min_redis_version, timeout),
    }
    with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="reprobe") as pool:
        futures = {name: pool.submit(check) for name, check in checks.items()}
    rows = []
    for name, future in futures.items():
        try:
            rows.append(future.result())
        except Exception as exc:  # a defect of a check must not hide the other services
            rows.append({"service": name, "ok": False,
                         "detail": f"the check itself failed: {type(exc).__name__}: {exc}"})
    return rows


def reprobe(profile: Profile, services: Services, run_dir: str, first_failed: dict[str, float]) -> list[dict]:
    """Re-probe the four services; record an incident for each newly failing one; return every incident
    open now (the failing services), earliest first."""
    checks = _probe(profile, services)
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
