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

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from analysis.incidents import incident_rows
from profiles.settings import Profile
from stack.launcher import service_exit
from tasks.services import Services, check_llm, check_redis, check_server, check_tts
from tasks.store import Ledger

SERVICES = ("server", "tts", "llm", "redis")

_open: dict[tuple[Path, str], dict] = {}  # (run folder, service) → its incident, while it lasts
_open_lock = threading.Lock()


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
