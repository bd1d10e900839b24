"""A campaign profile (TOML) validated into typed settings.

Nothing outside a profile holds a URL, a port, a threshold or a count: the flows read them all from
these models, and a bad profile is refused with the offending key named before any traffic is sent.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    UrlConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from analysis.faults import EXPERIMENTS as FAULT_EXPERIMENTS
from analysis.faults import FAULTS
from analysis.faults import SERVICES as FAULT_SERVICES
from analysis.video import BLACK_LUMA, SILENT_DBFS, parse_resolution
from profiles.redact import redact_secret_looking, redact_text, redact_url
from profiles.uploads import document_problem
from stack.launcher import FREEZE_MARGIN_S, MAX_FREEZE_S

PROFILES_DIR = Path(__file__).parent
RedisUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["redis", "rediss"])]
WEEK_S = 7 * 24 * 3600
# finite and bounded: an infinite timeout would be a wait without a bound
Positive = Annotated[float, Field(gt=0, le=WEEK_S, allow_inf_nan=False)]
Interval = Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
MAX_CONCURRENCY = 100  # the highest concurrency level a profile may ask for


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the key and what is wrong, one per line."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoints(Strict):
    """The server's API paths; defaults are ../shared/CONTRACT.md. `{job_id}` is filled in."""

    health: str = "/health"
    generate: str = "/api/v1/video/generate"
    status: str = "/api/v1/video/status/{job_id}"
    download: str = "/api/v1/video/download/{job_id}"
    jobs: str = "/api/v1/video/jobs"
    active: str = "/api/v1/video/active"
    cancel: str = "/api/v1/video/cancel/{job_id}"
    upload_field: str = "file"
    tts_health: str = "/health"
    llm_tags: str = "/api/tags"  # llm_api = "ollama"
    llm_version: str = "/api/version"  # llm_api = "ollama"
    llm_models: str = "/v1/models"  # llm_api = "openai": relative to llm_url, OpenAI's model list

    @field_validator("health", "generate", "status", "download", "jobs", "active", "cancel",
                     "tts_health", "llm_tags", "llm_version", "llm_models")
    @classmethod
    def _is_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must be a path starting with '/', got {value!r}")
        return value

    @field_validator("status", "download", "cancel")
    @classmethod
    def _names_job(cls, value: str) -> str:
        if "{job_id}" not in value:
            raise ValueError(f"must contain '{{job_id}}', got {value!r}")
        try:
            value.format(job_id="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may hold no placeholder but {{job_id}}, got {value!r}") from exc
        return value


class Target(Strict):
    """What is measured: the bundled stack (started and stopped by the campaign) or running services."""

    bundled_stack: bool = True
    max_concurrent_jobs: Annotated[int, Field(ge=1, le=64)] = 2  # only for the bundled stack
    server_url: HttpUrl | None = None
    tts_url: HttpUrl | None = None
    llm_url: HttpUrl | None = None
    redis_url: RedisUrl | None = None
    llm_model: str = "qwen3:4b"
    # how the LLM is reached: Ollama's own API, or only the OpenAI-style one (vLLM, llama.cpp, LiteLLM)
    llm_api: Literal["ollama", "openai"] = "ollama"
    # the largest upload the target accepts (the contract: 50 MiB); a bigger document is refused at load
    max_upload_bytes: Annotated[int, Field(ge=1)] = 50 * 1024 * 1024
    min_redis_version: Annotated[str, Field(pattern=r"^\d+(\.\d+){0,2}$")] = "6.0"
    endpoints: Endpoints = Endpoints()

    @field_serializer("server_url", "tts_url", "llm_url", "redis_url", when_used="json")
    def _shown_without_credentials(self, url: AnyUrl | None) -> str | None:
        # JSON is what leaves the process (manifest, Prefect parameters): the real URL only connects
        return None if url is None else redact_url(url)

    @model_validator(mode="after")
    def _urls_match_mode(self) -> Target:
        urls = ("server_url", "tts_url", "llm_url", "redis_url")
        given = [name for name in urls if getattr(self, name) is not None]
        if self.bundled_stack and given:
            raise ValueError(f"{', '.join(given)}: not allowed with bundled_stack = true "
                             "(the stack picks its own ports)")
        missing = [name for name in urls if getattr(self, name) is None]
        if not self.bundled_stack and missing:
            raise ValueError(f"{', '.join(missing)}: required when bundled_stack = false")
        return self


class Workload(Strict):
    documents: Annotated[list[Path], Field(min_length=1)]
    concurrency_levels: Annotated[list[Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)]], Field(min_length=1)] = [
        1, 3, 5]
    sequential_jobs: Annotated[int, Field(ge=0, le=1000)] = 5
    latency_probes: Annotated[int, Field(ge=1, le=100000)] = 50
    list_limit: Annotated[int, Field(ge=1, le=100)] = 20  # `limit` of the probed jobs and active lists
    # a server may cache scripts and audio by content: each upload gets a harmless line with the job's nonce so
    # no job is a cache hit; false sends the documents byte for byte (identical videos are then flagged)
    unique_documents: bool = True


class Timing(Strict):
    job_timeout_s: Positive = 600.0
    # a job still `pending` this long while the server answers is given up as "never started (stuck pending)"
    pending_timeout_s: Positive = 300.0
    poll_interval_s: Interval = 0.5
    # the single request is where the time per phase is read, so it is polled finely
    phase_poll_interval_s: Interval = 0.05
    # a job whose status cannot be read for this long is given up (the target is gone)
    poll_failure_s: Positive = 30.0
    request_timeout_s: Positive = 15.0
    upload_timeout_s: Positive = 120.0
    download_timeout_s: Positive = 120.0
    baseline_s: Positive = 5.0
    sample_interval_s: Interval = 0.5
    verify_timeout_s: Positive = 10.0
    check_video_timeout_s: Positive = 300.0


class Thresholds(Strict):
    success_rate: Fraction = 0.95
    p95_job_seconds: Positive = 300.0
    p95_api_latency_ms: Positive = 250.0
    duration_tolerance: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.05
    expected_resolution: str = "1280x720"
    # contract violations found by the conformance stage: "warn" reports them, "fail" fails the run
    conformance: Literal["warn", "fail"] = "warn"
    black_luma: Annotated[float, Field(ge=0, le=255, allow_inf_nan=False)] = BLACK_LUMA
    silent_dbfs: Annotated[float, Field(le=0, ge=-200, allow_inf_nan=False)] = SILENT_DBFS

    @field_validator("expected_resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        parse_resolution(value)
        return value


class FaultCommands(Strict):
    """Shell commands (run with `sh -c`, each within faults.action_timeout_s) that inject one fault into an
    external deployment and end it, Chaos-Toolkit style, e.g. inject "docker kill tts", restore "docker start
    tts". Write a secret as `$NAME` (the shell expands it when the command runs): `${NAME}` is expanded when
    the profile is loaded, like every value, and would be stored with the run's profile."""

    inject: Annotated[str, Field(min_length=1)]
    restore: str | None = None  # None: the fault is over once `inject` returns (e.g. "systemctl restart redis")

    @field_serializer("inject", "restore", when_used="json")
    def _shown_masked(self, command: str | None) -> str | None:
        # JSON is what leaves the process (manifest, Prefect parameters): known secrets, URL passwords and whatever
        # looks like a secret ("Bearer xyz", "token=xyz") masked
        return None if command is None else redact_secret_looking(command)


class Faults(Strict):
    """The faults stage: one experiment per fault (analysis.faults), each injected, watched, restored, measured."""

    # None: on for the bundled stack, off for an external target (which needs `actions` besides)
    enabled: bool | None = None
    # "service.fault" to run, in order; None: every one the bundled stack can do (analysis.faults.EXPERIMENTS),
    # or, for an external target, those with actions
    experiments: list[Literal[FAULT_EXPERIMENTS]] | None = None
    hold_s: Positive = 5.0  # how long a killed service stays down (a job is submitted and health probed meanwhile)
    freeze_s: Positive = 20.0  # how long a frozen service stays frozen: longer than the server's dependency timeout
    llm_delay_s: Positive = 3.0  # the added latency of a slow llm, per request
    jobs_in_flight: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)] = 2  # running when a *_with_jobs fault hits
    # restore → healthy and → first verified video must each come within this (the GX bound on recovery_s)
    recovery_bound_s: Positive = 60.0
    job_bound_s: Positive = 120.0  # a job under a fault still not terminal after this hung
    action_timeout_s: Positive = 60.0  # bound on each inject/restore command
    # bundled stack only: the server's bound on one tts or llm request (its --tts-timeout/--llm-timeout), so a
    # freeze of freeze_s outlasts it; an external server's own bound is what it is
    bundled_dependency_timeout_s: Positive = 15.0
    # external targets: service → fault → commands, e.g. [faults.actions.tts.killed]
    actions: dict[Literal[FAULT_SERVICES], dict[Literal[FAULTS], FaultCommands]] = {}

    @model_validator(mode="after")
    def _actions_of_experiments(self) -> Faults:
        # a service and fault the stage has no experiment for would be accepted and never run
        unknown = [f"[faults.actions.{service}.{fault}]" for service, faults in self.actions.items()
                   for fault in faults if f"{service}.{fault}" not in FAULT_EXPERIMENTS]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: no such fault experiment; commands can be given for "
                             f"{', '.join(FAULT_EXPERIMENTS)}")
        return self


class Campaign(Strict):
    """How often the load stages are repeated: `rounds` of single, concurrent, latency and sequential, or rounds
    until `duration_s` is up (a soak: the round in flight then finishes). Verification and baseline run once
    before them, conformance and faults once after them; the services are re-verified before each round from the
    second on, and a round whose services are unreachable waits for them (`retries` waits of at most
    `retry_wait_s` each, recorded as downtime) before the campaign gives up."""

    rounds: Annotated[int, Field(ge=1, le=10000)] = 1
    duration_s: Positive | None = None
    retries: Annotated[int, Field(ge=0, le=1000)] = 2
    retry_wait_s: Positive = 60.0
    retry_poll_s: Interval = 2.0  # while waiting, the services are probed this often (each within verify_timeout_s)

    @model_validator(mode="after")
    def _rounds_or_duration(self) -> Campaign:
        if self.duration_s is not None and self.rounds != 1:
            raise ValueError("give rounds or duration_s, not both: a soak (duration_s) runs rounds until its time "
                             "is up")
        return self


class Retention(Strict):
    """What old runs keep in results_dir (tasks/retention.py, at the end of each campaign): of the runs of THIS
    campaign's plan (the same profile, workload and rounds or soak duration; runs of other profiles or plans in the
    same results_dir are not counted and never touched), the videos of all but the `keep_videos_of_runs` most recent
    are deleted, their hashes and integrity rows (videos.parquet, the ledger) kept and the deletion noted in their
    manifest. A run whose campaign.lock a process holds is running and never pruned; `running_if_written_within_s`
    only judges a run stored before that lock existed (no lock, no end recorded: running if written to within it)."""

    # absent (None): retention is off, every run keeps its videos; 0 is refused rather than read either way
    keep_videos_of_runs: Annotated[int, Field(le=100000)] | None = None
    running_if_written_within_s: Positive = 24 * 3600.0

    @field_validator("keep_videos_of_runs")
    @classmethod
    def _keeps_at_least_one(cls, keep: int | None) -> int | None:
        if keep is not None and keep < 1:
            raise ValueError("must be 1 or more (the most recent runs that keep their videos); leave the key out to "
                             "keep every run's videos")
        return keep


class Profile(Strict):
    name: str
    description: str = ""
    results_dir: Path = Path("runs")
    target: Target = Target()
    workload: Workload
    timing: Timing = Timing()
    thresholds: Thresholds = Thresholds()
    faults: Faults = Faults()
    campaign: Campaign = Campaign()
    retention: Retention = Retention()

    @model_validator(mode="after")
    def _faults_fit_the_bundled_stack(self) -> Profile:
        # caught here, not when the fault is injected at the end of a campaign (an external server's own bound on one
        # request is not known to the profile: its freeze_s is the user's to choose)
        faults = self.faults
        if not self.target.bundled_stack or faults.enabled is False:
            return self
        planned = faults.experiments if faults.experiments is not None else FAULT_EXPERIMENTS
        problems = []
        if any(name.endswith(".frozen") for name in planned):
            if faults.freeze_s <= faults.bundled_dependency_timeout_s:
                problems.append(f"faults.freeze_s = {faults.freeze_s:g} must be more than "
                                f"faults.bundled_dependency_timeout_s = {faults.bundled_dependency_timeout_s:g}: a "
                                "freeze within the server's bound on one request tests no timeout")
            if faults.freeze_s > MAX_FREEZE_S - FREEZE_MARGIN_S:
                problems.append(f"faults.freeze_s = {faults.freeze_s:g} is beyond the bundled stack's longest freeze, "
                                f"{MAX_FREEZE_S - FREEZE_MARGIN_S:g} s")
        if "llm.slow" in planned and faults.llm_delay_s > MAX_FREEZE_S:
            problems.append(f"faults.llm_delay_s = {faults.llm_delay_s:g} is beyond the bundled stack's longest llm "
                            f"delay, {MAX_FREEZE_S:g} s")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def with_campaign(profile: Profile, rounds: int | None, duration_s: float | None) -> Profile:
    """The profile with the rounds or soak duration given for one run (a command line, a flow run's form) in
    place of its own [campaign] plan; neither given: the profile as it is. ProfileError when they do not fit."""
    if rounds is None and duration_s is None:
        return profile
    plan = {**profile.campaign.model_dump(), "rounds": rounds or 1, "duration_s": duration_s}
    try:
        campaign = Campaign.model_validate(plan)
    except ValidationError as exc:
        raise ProfileError("; ".join(f"{'rounds' if 'rounds' in str(e['loc']) else 'duration'}: "
                                     f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())) from None
    return profile.model_copy(update={"campaign": campaign})


def _parse_value(raw: str) -> Any:
    """A --set value as TOML (numbers, booleans, lists, quoted strings), else the bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `key.path=value` overrides onto raw profile data (before validation names bad keys)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ProfileError(f"--set {item!r}: expected key=value, e.g. workload.sequential_jobs=3")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ProfileError(f"--set {key}: {part} is not a table")
            node = child
        node[leaf] = _parse_value(raw.strip())
    return data


_ENVIRONMENT_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_environment(data: Any, environ: Mapping[str, str], key: str = "") -> Any:
    """`${NAME}` in any string value replaced by that environment variable, so a secret (a password in a
    URL) can stay in the environment: the profile file, `--set` values and a deployment's stored
    parameters then hold only the reference."""
    if isinstance(data, dict):
        return {name: expand_environment(value, environ, f"{key}.{name}" if key else name)
                for name, value in data.items()}
    if isinstance(data, list):
        return [expand_environment(value, environ, key) for value in data]
    if not isinstance(data, str):
        return data

    def value_of(match: re.Match) -> str:
        if match.group(1) not in environ:
            raise ProfileError(f"{key}: environment variable {match.group(1)} is not set")
        return environ[match.group(1)]

    return _ENVIRONMENT_REFERENCE.sub(value_of, data)


def shipped_profiles() -> tuple[str, ...]:
    """The names of the profiles shipped in profiles/ (`local`, `seed`, `smoke`)."""
    return tuple(sorted(p.stem for p in PROFILES_DIR.glob("*.toml")))


def resolve_profile_path(name_or_path: str) -> Path:
    """`local` → profiles/local.toml; anything with a suffix or a slash is a path."""
    candidate = Path(name_or_path)
    if candidate.suffix or "/" in name_or_path:
        return candidate
    return PROFILES_DIR / f"{name_or_path}.toml"


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(profile)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "missing"
    elif key.endswith("_url"):  # a malformed URL may still carry a password that no pattern recognises
        message = f"{message} (value not shown: it may hold a password)"
    elif "input" in error and not isinstance(error["input"], dict):
        message = f"{message} (got {redact_text(repr(error['input']))})"
    return f"{key}: {message}"


def load_profile(name_or_path: str = "local", overrides: list[str] | None = None) -> Profile:
    """Read, override and validate a profile; raise ProfileError naming every bad key."""
    path = resolve_profile_path(name_or_path)
    if not path.is_file():
        shipped = ", ".join(shipped_profiles())
        raise ProfileError(f"profile {name_or_path!r}: no file {path} (shipped profiles: {shipped})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path}: not valid TOML: {exc}") from exc
    data = apply_overrides(data, overrides or [])
    try:
        data = expand_environment(data, os.environ)
    except ProfileError as exc:
        raise ProfileError(f"profile {path}: invalid\n  {exc}") from None
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        lines = "\n".join(f"  {_describe(error)}" for error in exc.errors())
        raise ProfileError(f"profile {path}: invalid\n{lines}") from None
    documents = [doc if doc.is_absolute() else (path.parent / doc).resolve() for doc in profile.workload.documents]
    unreadable = [str(doc) for doc in documents if not doc.is_file()]
    if unreadable:
        raise ProfileError(f"profile {path}: invalid\n  workload.documents: no such file: {', '.join(unreadable)}")
    # a document the target cannot use is refused now, before any load is sent
    problems = [f"  workload.documents: {doc}: {problem}" for doc in documents
                if (problem := document_problem(doc, profile.target.max_upload_bytes,
                                                profile.workload.unique_documents))]
    if problems:
        raise ProfileError(f"profile {path}: invalid\n" + "\n".join(problems))
    try:  # found now rather than after the target has been started and verified
        profile.results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfileError(f"profile {path}: invalid\n  results_dir: cannot create {profile.results_dir}: "
                           f"{exc.strerror or exc}") from None
    return profile.model_copy(update={"workload": profile.workload.model_copy(update={"documents": documents})})
