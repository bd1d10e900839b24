"""Opening and closing a run folder: its manifest, its tables, its checks."""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import av
import httpx
import psutil
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import ValidationError

from analysis.rounds import cut_jobs, cut_stages, next_attempt, set_aside_reruns
from expectations.suites import validate_run
from profiles.redact import install_log_redaction, redact, secrets_in
from profiles.settings import Profile
from stack.binaries import MissingProgram, espeak_library, espeak_program, ffmpeg
from tasks import http
from tasks.services import Services
from tasks.store import (
    CHECKS,
    JOB_KEY,
    LEDGER,
    MANIFEST,
    Ledger,
    latest_job_rows,
    load_tables,
    read_json,
    read_ledger,
    rebuild_tables,
    write_json,
)

# Bound on validating a run's tables (the campaign's own work, not a wait on the target). The bookkeeping
# tasks have none: they do no waiting, and a Prefect timeout on a task run in a worker thread only warns.
PROCESSING_TIMEOUT_S = 600


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# The libraries whose behaviour the figures depend on: the campaign's own and the video decoder's.
MEASURING_PACKAGES = ("prefect", "great_expectations", "polars", "httpx", "av", "numpy", "scipy", "matplotlib")
PROJECT = "t2v-bench"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Bound on each program asked for its version (git, ffmpeg, espeak-ng): a hung program must not hold the run.
VERSION_PROBE_TIMEOUT_S = 10


def _cpu_model() -> str | None:
    """"AMD EPYC 7B13" from /proc/cpuinfo (platform.processor() is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME") or platform.system()
    except OSError:  # not a Linux with os-release
        return f"{platform.system()} {platform.version()}".strip()


def machine() -> dict:
    """The hardware and system the campaign ran on (the bundled stack shares it)."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "os": _os_name(),
        "kernel": f"{platform.system()} {platform.release()}",
        "architecture": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
    }


def _output(command: list[str], cwd: Path | None = None) -> str | None:
    """A program's standard output, stripped; None when it is missing, fails or outlives its bound."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=VERSION_PROBE_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def project_source() -> dict:
    """The project's version and, for a git checkout, its commit and whether files differ from it."""
    commit = _output(["git", "rev-parse", "HEAD"], PROJECT_ROOT)
    changes = _output(["git", "status", "--porcelain", "--untracked-files=no"], PROJECT_ROOT) if commit else None
    return {"name": PROJECT, "version": _version(PROJECT), "commit": commit,
            "dirty": None if commit is None or changes is None else bool(changes)}


def _espeak_ng() -> dict:
    """The eSpeak NG the bundled TTS speaks with: the program on PATH, else the espeakng-loader wheel's library
    (asked through espeak_Info, which needs no initialisation)."""
    program = espeak_program()
    if program:
        words = (_output([program, "--version"]) or "").split()
        # "eSpeak NG text-to-speech: 1.51  Data at: ..."
        found = next((word for word in words if word[:1].isdigit()), None)
        return {"version": found, "source": program}
    try:
        library, _data = espeak_library()
        engine = ctypes.CDLL(library)
    except (MissingProgram, OSError) as exc:
        return {"version": None, "source": f"not found: {exc}"}
    engine.espeak_Info.restype = ctypes.c_char_p
    engine.espeak_Info.argtypes = [ctypes.c_void_p]
    shown = engine.espeak_Info(None)
    return {"version": shown.decode(errors="replace") if shown else None,
            "source": f"espeakng-loader {_version('espeakng-loader')} wheel"}


def _stack_ffmpeg() -> str | None:
    """The version of the ffmpeg program the bundled stack composes videos with ("n9.0.2-17-g2a571b6068-...")."""
    try:
        first = (_output([ffmpeg(), "-version"]) or "").splitlines()
    except MissingProgram:
        return None
    # "ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright (c) ..."
    words = first[0].split() if first else []
    return words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else None


def profile_sha256(profile: Profile) -> str:
    """sha256 of the validated profile as the manifest stores it (secrets masked), in canonical JSON (sorted
    keys, no spaces): anyone can recompute it from manifest.json's `profile`."""
    shown = json.loads(redact(json.dumps(profile.model_dump(mode="json"))))
    return hashlib.sha256(json.dumps(shown, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def environment(profile: Profile) -> dict:
    """The software a run's figures depend on: libraries, the decoder's FFmpeg, the project's own source, the
    profile's hash; with the bundled stack, its eSpeak NG and ffmpeg too (a remote target's are its own)."""
    bundled = profile.target.bundled_stack
    return {
        "packages": {name: _version(name) for name in MEASURING_PACKAGES},
        "pyav_ffmpeg": getattr(av, "ffmpeg_version_info", None),
        "libav": {name: ".".join(map(str, numbers)) for name, numbers in av.library_versions.items()},
        "espeak_ng": _espeak_ng() if bundled else None,
        "stack_ffmpeg": _stack_ffmpeg() if bundled else None,
        "project": project_source(),
        "profile_sha256": profile_sha256(profile),
    }


def llm_digest(llm_url: str, model: str, tags_path: str, seconds: float) -> str | None:
    """The digest an Ollama API gives for `model` in its model list; None when it gives none or does not
    answer within `seconds` (the verification row already says whether the LLM is usable)."""
    try:
        with http.timed_client(base_url=llm_url) as client:
            status, body = http.whole_answer(client, "GET", tags_path, seconds)
        models = json.loads(body).get("models") if status == 200 else None
    except (httpx.HTTPError, http.BadResponse, ValueError, AttributeError):
        return None
    for entry in models if isinstance(models, list) else []:
        if isinstance(entry, dict) and model in (entry.get("name"), entry.get("model"),
                                                 f"{entry.get('name')}".removesuffix(":latest")):
            return str(entry["digest"]) if entry.get("digest") else None
    return None


class RunRefused(ValueError):
    """The run id cannot name a new run folder (it exists already, or is not a plain name)."""


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _taken(run_id: str, run_dir: Path) -> RunRefused:
    return RunRefused(f"run id {run_id!r} is taken: {run_dir} already holds a run, and a run folder belongs to one "
                      "campaign. Leave the run id empty for a new one, or choose another; to continue that campaign "
                      f"where it was cut: python -m flows.full_suite --resume {run_dir}")


def run_path(results_dir: Path, run_id: str) -> Path:
    """`results_dir/<run-id>`, new or not; RunRefused when the id is not a plain name."""
    if not RUN_ID.fullmatch(run_id):
        raise RunRefused(f"run id {run_id!r}: use letters, digits, '.', '_' and '-' only, starting with a letter "
                         "or digit (it names a folder in results_dir)")
    return (results_dir / run_id).resolve()


def run_folder(results_dir: Path, run_id: str) -> Path:
    """Where a NEW run with this id goes; RunRefused when the id is not a plain name or its folder exists
    (for a command line to refuse it before anything starts)."""
    run_dir = run_path(results_dir, run_id)
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


# Held (flock) by the process running a campaign in the folder: the kernel drops it when that process ends,
# kill -9 included, so a folder whose lock is free holds no campaign under way and may be resumed.
LOCK = "campaign.lock"
_held: dict[Path, int] = {}


def hold_run(run_dir: Path) -> None:
    """Mark the folder as run by this process until release_run; RunRefused when another process runs it."""
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunRefused(f"{run_dir}: its campaign is running right now (in another process); wait for it to end, "
                         "or stop it, before resuming it") from None
    _held[run_dir.resolve()] = fd


def _not_running(run_dir: Path) -> None:
    """RunRefused when a process holds the folder's campaign now (the check before anything is started; the hold
    itself is taken by the flow)."""
    if (run_dir / LOCK).exists():
        hold_run(run_dir)
        release_run(run_dir)


def release_run(run_dir: str | Path) -> None:
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)


def campaign_running(run_dir: Path) -> bool:
    """A process holds the folder's campaign.lock now: its campaign is under way (the one test of that, retention's
    too). False for a folder whose lock is free, or that has none."""
    try:
        _not_running(run_dir)
    except RunRefused:
        return True
    return False


def campaign_plan(profile: Profile, started_at: float) -> dict:
    """The manifest's `campaign`: rounds planned (None for a soak), the soak's duration and deadline (unix
    seconds: a resumed soak ends when the first start planned it to)."""
    campaign = profile.campaign
    soak = campaign.duration_s is not None
    return {"rounds": None if soak else campaign.rounds, "duration_s": campaign.duration_s,
            "deadline": started_at + campaign.duration_s if soak else None, "retries": campaign.retries,
            "retry_wait_s": campaign.retry_wait_s}


@task(name="open-run", cache_policy=NO_CACHE)
def open_run(profile: Profile, run_id: str, invocation: dict | None = None, flow_run_id: str | None = None) -> str:
    """Create `results_dir/<run-id>/` with its manifest (and an empty ledger), held by this process; returns the
    folder. `invocation` (profile and overrides as given) is what a resume loads the settings from again. From here
    on, the profile's secrets are masked in everything written or logged."""
    install_log_redaction(secrets_in(profile))
    run_dir = new_run_folder(profile.results_dir, run_id)
    hold_run(run_dir)
    Ledger.of(run_dir)
    started_at = time.time()
    write_json(run_dir / MANIFEST, {
        "run_id": run_id, "profile_name": profile.name, "profile": profile.model_dump(mode="json"),
        "started_at": _now(), "finished_at": None, "machine": machine(), "environment": environment(profile),
        "services": {}, "outcome": "running", "invocation": invocation, "campaign": campaign_plan(profile, started_at),
        "attempts": [{"attempt": 1, "flow_run_id": flow_run_id, "started_at": _now()}],
    })
    return str(run_dir)


def resumable(run_dir: Path, flow_run_id: str | None = None) -> dict:
    """The manifest of an interrupted campaign's folder, to continue it; RunRefused (saying why) when the folder
    holds no run, or one that reached its end. With `flow_run_id`, only a folder an earlier start of that same
    flow run made is resumable (a retry from Prefect); any other is a taken run id."""
    try:
        manifest = read_json(run_dir / MANIFEST)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        what = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else \
            f"{type(exc).__name__}: {exc}"
        raise RunRefused(f"{run_dir / MANIFEST}: not readable as JSON ({what}): the campaign cannot be resumed "
                         "until it is repaired") from None
    if not isinstance(manifest, dict) or not (run_dir / LEDGER).is_file():
        raise RunRefused(f"{run_dir}: not a run folder (no {MANIFEST} and {LEDGER}): nothing to resume")
    if flow_run_id is not None and flow_run_id not in [a.get("flow_run_id") for a in manifest.get("attempts", [])]:
        raise _taken(run_dir.name, run_dir)
    _not_running(run_dir)
    if manifest.get("outcome") == "measured":
        raise RunRefused(f"{run_dir}: its campaign ended measured ({manifest.get('finished_at')}): nothing to resume; "
                         "python -m artifacts renders its reports again")
    if not isinstance(manifest.get("invocation"), dict):
        raise RunRefused(f"{run_dir}: its manifest does not say how it was started (a run from before --resume "
                         "existed): it cannot be resumed, only rendered again with python -m artifacts")
    return manifest


@task(name="reopen-run", cache_policy=NO_CACHE)
def reopen_run(profile: Profile, run_dir: str, flow_run_id: str | None = None) -> int:
    """Continue an interrupted campaign in its folder (held by this process: hold_run): the jobs and stages its
    crash left running are recorded as interrupted (under the attempt they ran in), and the ledger goes on under
    the next attempt, which it returns."""
    install_log_redaction(secrets_in(profile))
    folder = Path(run_dir)
    ledger = Ledger.of(folder)
    recorded = read_ledger(folder)
    manifest = read_json(folder / MANIFEST, {})
    attempt = max(next_attempt(recorded), len(manifest.get("attempts", [])) + 1)  # a start that recorded nothing
    cut = f"cut: the campaign's process ended while it ran (continued by attempt {attempt})"
    for job in cut_jobs(recorded["jobs"]):
        ledger.record("jobs", **{name: job.get(name) for name in JOB_KEY}, outcome="interrupted", failure=cut)
    for stage in cut_stages(recorded["stages"]):
        ledger.record("stages", round=stage.get("round"), attempt=stage.get("attempt"), stage=stage["stage"],
                      started_at=stage.get("started_at"), finished_at=None, outcome="interrupted", detail=cut)
    ledger.attempt = attempt
    update_manifest(run_dir, finished_at=None, outcome="running", attempts=[
        *manifest.get("attempts", []), {"attempt": attempt, "flow_run_id": flow_run_id, "started_at": _now()}])
    return attempt


def update_manifest(run_dir: str, **fields) -> None:
    path = Path(run_dir) / MANIFEST
    write_json(path, {**read_json(path, {}), **fields})


def verified_rows(run_dir: str) -> list[dict]:
    """The services rows of the last verification in the ledger's round and attempt, one per service."""
    ledger = Ledger.of(run_dir)
    rows = [row for row in read_ledger(Path(run_dir))["services"]
            if (row.get("round"), row.get("attempt")) == (ledger.round, ledger.attempt)]
    return list({row["service"]: row for row in rows}.values())


def last_verified_job(run_dir: str) -> str | None:
    """The last job of this start of the campaign whose video was verified: one the server knows and has finished
    (a resumed campaign's new stack knows none of the jobs before it)."""
    attempt = Ledger.of(run_dir).attempt
    verified = [row["job_id"] for row in latest_job_rows(read_ledger(Path(run_dir))["jobs"])
                if row.get("succeeded") and row.get("attempt") == attempt]
    return verified[-1] if verified else None


@task(name="record-services", cache_policy=NO_CACHE)
def record_services(run_dir: str, services: Services, checks: list[dict]) -> None:
    """Put each service's URL (credentials masked) and the version it exposed into the manifest, and the LLM
    model's digest where its API gives one (Ollama's model list does)."""
    versions = {row["service"]: row.get("version") for row in checks}
    shown = services.model_dump(mode="json")
    try:  # the profile as open_run stored it, secrets masked (the real URLs are in `services`)
        profile = Profile.model_validate(read_json(Path(run_dir) / MANIFEST, {}).get("profile"))
    except ValidationError:  # a masked secret its validator refuses: no digest rather than no run
        profile = None
    usable = any(row["service"] == "llm" and row.get("ok") for row in checks)
    digest = llm_digest(services.llm, services.llm_model, profile.target.endpoints.llm_tags,
                        profile.timing.verify_timeout_s) \
        if usable and profile is not None and profile.target.llm_api == "ollama" else None
    update_manifest(run_dir, services={
        name: {"url": shown[name], "version": versions.get(name)} for name in ("server", "tts", "llm", "redis")
    } | {"llm_model": services.llm_model, "llm_digest": digest})


@task(name="store-tables", cache_policy=NO_CACHE)
def store_tables(run_dir: str, outcome: str) -> dict[str, int]:
    """Turn the ledger into Parquet tables and close the manifest; returns rows per table."""
    frames = rebuild_tables(Path(run_dir))
    attempts = read_json(Path(run_dir) / MANIFEST, {}).get("attempts") or [{}]
    ended = [*attempts[:-1], {**attempts[-1], "finished_at": _now(), "outcome": outcome}]  # this start's end
    update_manifest(run_dir, finished_at=_now(), outcome=outcome, attempts=ended)
    return {name: df.height for name, df in frames.items()}


@task(name="validate-expectations", cache_policy=NO_CACHE, timeout_seconds=PROCESSING_TIMEOUT_S)
def validate_expectations(run_dir: str, profile: Profile) -> list[dict]:
    """Run the Great Expectations suites on the STORED tables and store their outcomes."""
    # a stage a crash cut was run again: its re-run is judged, the cut attempt's rows are not (analysis.rounds)
    tables = set_aside_reruns(load_tables(Path(run_dir)))[0]
    outcomes = validate_run(tables, profile.thresholds, profile.faults)
    write_json(Path(run_dir) / CHECKS, outcomes)
    return outcomes
