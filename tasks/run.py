"""Opening and closing a run folder: its manifest, its tables, its checks."""

from __future__ import annotations

import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

import psutil
from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.suites import validate_run
from profiles.settings import Profile
from tasks.services import Services
from tasks.store import CHECKS, MANIFEST, Ledger, load_tables, read_json, rebuild_tables, write_json

# Bounds on the campaign's own bookkeeping (not on the target): writing a manifest is instant, turning
# a long campaign's ledger into tables, validating and rendering them takes seconds.
BOOKKEEPING_TIMEOUT_S = 60
PROCESSING_TIMEOUT_S = 600


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine() -> dict:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
    }


@task(name="open-run", cache_policy=NO_CACHE, timeout_seconds=BOOKKEEPING_TIMEOUT_S)
def open_run(profile: Profile, run_id: str) -> str:
    """Create `results_dir/<run-id>/` with its manifest (and an empty ledger); returns the folder."""
    run_dir = (profile.results_dir / run_id).resolve()
    Ledger.of(run_dir)
    write_json(run_dir / MANIFEST, {
        "run_id": run_id, "profile_name": profile.name, "profile": profile.model_dump(mode="json"),
        "started_at": _now(), "finished_at": None, "machine": machine(), "services": {}, "outcome": "running",
    })
    return str(run_dir)


def update_manifest(run_dir: str, **fields) -> None:
    path = Path(run_dir) / MANIFEST
    write_json(path, {**read_json(path, {}), **fields})


@task(name="record-services", cache_policy=NO_CACHE, timeout_seconds=BOOKKEEPING_TIMEOUT_S)
def record_services(run_dir: str, services: Services, checks: list[dict]) -> None:
    """Put each service's URL and the version it exposed into the manifest."""
    versions = {row["service"]: row.get("version") for row in checks}
    update_manifest(run_dir, services={
        name: {"url": getattr(services, name), "version": versions.get(name)}
        for name in ("server", "tts", "llm", "redis")
    } | {"llm_model": services.llm_model})


@task(name="store-tables", cache_policy=NO_CACHE, timeout_seconds=PROCESSING_TIMEOUT_S)
def store_tables(run_dir: str, outcome: str) -> dict[str, int]:
    """Turn the ledger into Parquet tables and close the manifest; returns rows per table."""
    frames = rebuild_tables(Path(run_dir))
    update_manifest(run_dir, finished_at=_now(), outcome=outcome)
    return {name: df.height for name, df in frames.items()}


@task(name="validate-expectations", cache_policy=NO_CACHE, timeout_seconds=PROCESSING_TIMEOUT_S)
def validate_expectations(run_dir: str, profile: Profile) -> list[dict]:
    """Run the Great Expectations suites on the STORED tables and store their outcomes."""
    outcomes = validate_run(load_tables(Path(run_dir)), profile.thresholds)
    write_json(Path(run_dir) / CHECKS, outcomes)
    return outcomes
