"""API endpoint latency: N requests, one after another, each timed and recorded as it returns."""

from __future__ import annotations

import time

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks import http
from tasks.store import Ledger


@task(name="probe-endpoint", cache_policy=NO_CACHE, task_run_name="probe-{endpoint}")
def probe_endpoint(run_dir: str, endpoint: str, url: str, probes: int, timeout_s: float,
                   expected_status: int = 200) -> dict:
    """GET `url` `probes` times; every answer other than `expected_status` counts as an error."""
    ledger = Ledger.of(run_dir)
    errors = 0
    with http.client(timeout=timeout_s) as client:
        for i in range(probes):
            started = time.perf_counter()
            status_code, error = None, None
            try:
                response = client.get(url)
                status_code = response.status_code
                if status_code != expected_status:
                    error = f"HTTP {status_code}, expected {expected_status}"
                else:
                    response.json()  # the contract answers JSON; anything else is an error, however fast
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            except ValueError:
                error = f"HTTP {status_code}, body is not JSON: {response.text[:80]!r}"
            ms = (time.perf_counter() - started) * 1000
            errors += error is not None
            ledger.record("latency", endpoint=endpoint, i=i, ms=ms, status_code=status_code,
                          ok=error is None, error=error)
    get_run_logger().info("%s: %s requests, %s errors", endpoint, probes, errors)
    return {"endpoint": endpoint, "probes": probes, "errors": errors}
