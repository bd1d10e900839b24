"""API endpoint latency: N requests, one after another, each timed at the wire and recorded as it returns.

A probe's `ms` is the time its answer took on the wire: from the first byte of the request written to
the socket to the last byte of the answer read from it (`tasks.http.timed_client`), so the client's own
work is not in the figure. A probe that got no complete answer has no `ms`; its `error_kind` says why
(timeout, refused, other). An answer with the wrong status or a body that is not JSON has its `ms` but
is not ok.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks import http
from tasks.interrupt import Interrupted
from tasks.store import Ledger


def _no_answer(t: float, kind: str, error: str) -> dict:
    return {"t": t, "ms": None, "status_code": None, "ok": False, "error_kind": kind, "error": error}


def probe(client: httpx.Client, url: str, timeout_s: float, expected_status: int = 200) -> dict:
    """One GET of `url` whose whole answer must arrive within `timeout_s`: the fields of its `latency` row.
    `client` is a `tasks.http.timed_client` (another client's answers have no `ms`). Interrupted (raised) at
    a stop request, the request in flight cancelled."""
    t = time.time()
    try:
        with http.wire_clock() as clock:
            status_code, body = http.whole_answer(client, "GET", url, timeout_s)
    except (httpx.TimeoutException, http.LateAnswer):
        return _no_answer(t, "timeout", f"no complete answer within {timeout_s:g} s")
    except httpx.ConnectError as exc:
        return _no_answer(t, "refused", f"cannot connect: {exc}")
    except (httpx.HTTPError, http.BadResponse) as exc:
        return _no_answer(t, "other", f"{type(exc).__name__}: {exc}")
    kind, error = None, None
    if status_code != expected_status:
        kind, error = "wrong_status", f"HTTP {status_code}, expected {expected_status}"
    else:
        try:
            json.loads(body)  # the contract answers JSON; anything else is an error, however fast
        except ValueError:
            kind, error = "not_json", f"HTTP {status_code}, body is not JSON: {body[:80]!r}"
    return {"t": t, "ms": clock.ms, "status_code": status_code, "ok": kind is None, "error_kind": kind,
            "error": error}


@task(name="probe-endpoint", cache_policy=NO_CACHE, task_run_name="probe-{endpoint}")
def probe_endpoint(run_dir: str, endpoint: str, url: str, probes: int, timeout_s: float, give_up_s: float,
                   expected_status: int = 200) -> dict:
    """GET `url` up to `probes` times, one after another, recording each probe as it returns. Stops early at
    a stop request, or when no answer at all has come for `give_up_s` (the endpoint is gone: the rest of
    the probes would only repeat the timeout)."""
    ledger = Ledger.of(run_dir)
    kinds: Counter[str] = Counter()
    silent_since: float | None = None
    first_error_at: float | None = None  # wall clock, for "since when" when the services are re-probed
    stopped = None
    with http.timed_client() as client:
        for i in range(probes):
            try:
                row = probe(client, url, timeout_s, expected_status)
            except Interrupted:
                stopped = "interrupted"
                break
            ledger.record("latency", endpoint=endpoint, i=i, **row)
            kinds[row["error_kind"] or "ok"] += 1
            if row["error_kind"] and first_error_at is None:
                first_error_at = row["t"]
            if row["ms"] is not None:
                silent_since = None
            elif silent_since is None:
                silent_since = time.monotonic()
            elif time.monotonic() - silent_since >= give_up_s:
                stopped = f"no answer for {give_up_s:g} s, gave up"
                break
    sent = sum(kinds.values())
    errors = {kind: count for kind, count in kinds.items() if kind != "ok"}
    get_run_logger().info("%s: %d of %d probes sent, %d ok%s%s", endpoint, sent, probes, kinds["ok"],
                          "".join(f", {count} {kind}" for kind, count in errors.items()),
                          f" ({stopped})" if stopped else "")
    return {"endpoint": endpoint, "probes": sent, "planned": probes, "errors": sum(errors.values()),
            "error_kinds": errors, "first_error_at": first_error_at, "stopped": stopped}
