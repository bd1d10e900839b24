"""Opening and closing a run folder: its manifest, its tables, its checks."""

from __future__ import annotations

import os
import platform
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import psutil
from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.suites import validate_run
from profiles.redact import install_log_redaction, secrets_in
from profiles.settings import Profile
from tasks.services import Services
from tasks.store import CHECKS, MANIFEST, Ledger, load_tables, read_json, rebuild_tables, write_json

# Bound on validating a run's tables (the campaign's own work, not a wait on the target). The bookkeeping
# tasks have none: they do no waiting, and a Prefect timeout on a task run in a worker thread only warns.
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


class RunRefused(ValueError):
    """The run id cannot name a new run folder (it exists already, or is not a plain name)."""


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _taken(run_id: str, run_dir: Path) -> RunRefused:
    return RunRefused(f"run id {run_id!r} is taken: {run_dir} already holds a run, and a run folder belongs to one "
                      "campaign. Leave the run id empty for a new one, or choose another; continuing a run "
                      "(--resume) is not supported yet.")


def run_folder(results_dir: Path, run_id: str) -> Path:
    """Where a NEW run with this id goes; RunRefused when the id is not a plain name or its folder exists
    (for a command line to refuse it before anything starts)."""
    if not RUN_ID.fullmatch(run_id):
        raise RunRefused(f"run id {run_id!r}: use letters, digits, '.', '_' and '-' only, starting with a letter "
                         "or digit (it names a folder in results_dir)")
    run_dir = (results_dir / run_id).resolve()
    if run_dir.exists():
        raise _taken(run_id, run_dir)
    return run_dir


def new_run_folder(results_dir: Path, run_id: str) -> Path:
    """`results_dir/<run-id>/`, created here: an existing folder is refused (RunRefused) and left untouched."""
    run_dir = run_folder(results_dir, run_id)
    try:
        run_dir.mkdir(parents=True)
    except FileExistsError:  # made meanwhile by another campaign
        raise _taken(run_id, run_dir) from None
    return run_dir


@task(name="open-run", cache_policy=NO_CACHE)
def open_run(profile: Profile, run_id: str) -> str:
    """Create `results_dir/<run-id>/` with its manifest (and an empty ledger); returns the folder. From here on,
    the profile's secrets are masked in everything written or logged."""
    install_log_redaction(secrets_in(profile))
    run_dir = new_run_folder(profile.results_dir, run_id)
    Ledger.of(run_dir)
    write_json(run_dir / MANIFEST, {
        "run_id": run_id, "profile_name": profile.name, "profile": profile.model_dump(mode="json"),
        "started_at": _now(), "finished_at": None, "machine": machine(), "services": {}, "outcome": "running",
    })
    return str(run_dir)


def update_manifest(run_dir: str, **fields) -> None:
    path = Path(run_dir) / MANIFEST
    write_json(path, {**read_json(path, {}), **fields})


@task(name="record-services", cache_policy=NO_CACHE)
def record_services(run_dir: str, services: Services, checks: list[dict]) -> None:
    """Put each service's URL (credentials masked) and the version it exposed into the manifest."""
    versions = {row["service"]: row.get("version") for row in checks}
    shown = services.model_dump(mode="json")
    update_manifest(run_dir, services={
        name: {"url": shown[name], "version": versions.get(name)} for name in ("server", "tts", "llm", "redis")
    } | {"llm_model": services.llm_model})


@task(name="store-tables", cache_policy=NO_CACHE)
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
