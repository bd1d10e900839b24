"""The one model of a run's figures, computed once from its stored folder; every output reads only this.

`compute_metrics(frames, manifest, checks)` turns the stored tables (analysis.schema), manifest.json and
checks.json into `RunMetrics`; `metrics_of(run_dir)` reads them from a run folder. Reports, Prefect
artifacts and the console summary format these figures and compute none of their own.

Definitions (the README's "How each figure is defined" says the same):
- success: a job whose video was downloaded and passed every integrity check (`jobs.succeeded`);
- job seconds: end-to-end seconds of verified successes only; failed, timed-out, stuck-pending and
  interrupted jobs are counted beside them, never in a percentile;
- video seconds per wall second: DECODED seconds of the verified videos (`videos.video_seconds`) / wall;
- latency: ms of answered probes only; errors counted beside them by kind;
- a job still "running" in a stored run is shown as "interrupted", with the status last seen;
- rounds: every figure above is POOLED over a campaign's rounds (their values together as one sample, with
  its n and interval); `RunMetrics.rounds` holds each round's own figures by the same rules, the trends
  across rounds (analysis.trends: least-squares slope with its t interval, Cochran–Armitage for success)
  and the waits for unreachable services (downtime). A run of one round has nothing per round.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import polars as pl
from pydantic import BaseModel

from analysis import incidents as incident_words
from analysis import resources
from analysis.conformance import ConformanceRule, conformance_rules, unreported_fields
from analysis.faults import FaultResult, results_of, skipped_reason
from analysis.resources import PerJobMemory, Usage
from analysis.retention import PRUNED, pruned_sentence
from analysis.rounds import ROUND_STAGES, STAGE_OF_TABLE, set_aside_reruns
from analysis.schema import TABLES, conform, empty
from analysis.series import Series, compute_series
from analysis.stats import RULE, Distribution, Interval, Rate, distribution, rate
from analysis.trends import SuccessTrend, Trend, linear_trend, success_trend
from tasks.store import CHECKS, MANIFEST, load_tables, read_json

INTERRUPTED = "interrupted"
UNKNOWN = "unknown"
NO_ANSWER = ("timeout", "refused")  # latency error kinds where nothing answered (wrong_status, not_json did)
ENDED = ("succeeded", "failed")  # the server said the job ended (no time-out, not interrupted)
# GX checks whose figure a threshold check already states in words, by (suite, column) → that threshold's name
# (every time_thresholds check is one too); a suite's row count has no column
SAID_BY_THRESHOLDS = {("job_results", "succeeded"): "success rate", ("job_results", None): "success rate",
                      ("video_integrity", "ok"): "video integrity", ("video_integrity", None): "video integrity"}
CUT_OFF_STAGE = "no end recorded: the process ended while it ran"  # a stage still "running" in a stored run
STAGE_ORDER = ("verification", "baseline", "single", "concurrent", "latency", "sequential", "conformance", "faults")


class Target(BaseModel):
    name: str
    url: str | None
    version: str | None
    state: str  # verified | verification FAILED | not verified


class Machine(BaseModel):
    hostname: str | None = None
    platform: str | None = None
    python: str | None = None
    cpu_count: int | None = None
    memory_mb: float | None = None


class Environment(BaseModel):
    """What a run's figures were taken with, as its manifest recorded it at the start (tasks/run.py); None
    where the manifest has nothing (a run of an older version, a program not found, a remote target's own)."""

    recorded: bool = False  # False: the manifest has no environment (an older run); every field is None
    cpu_model: str | None = None
    cpu_cores: int | None = None  # logical CPUs the OS offers
    cpu_physical_cores: int | None = None
    memory_mb: float | None = None
    os: str | None = None  # "Debian GNU/Linux 12 (bookworm)"
    kernel: str | None = None  # "Linux 6.1.0-18-amd64"
    architecture: str | None = None
    python: str | None = None  # "3.11.7 (CPython)"
    packages: dict[str, str | None] = {}  # distribution → version (None: not installed)
    pyav_ffmpeg: str | None = None  # the FFmpeg PyAV decodes the videos with
    libav: dict[str, str] = {}  # libavcodec → "62.28.102", ...
    espeak_ng: str | None = None  # the bundled TTS's eSpeak NG
    espeak_ng_source: str | None = None
    stack_ffmpeg: str | None = None  # the ffmpeg the bundled stack encodes with
    redis: str | None = None  # as the verification's Redis INFO reported it
    llm_model: str | None = None
    llm_digest: str | None = None  # where the LLM API gives one (Ollama's model list)
    project_version: str | None = None
    git_commit: str | None = None  # None: not run from a git checkout
    git_dirty: bool | None = None  # tracked files differed from the commit
    profile_sha256: str | None = None  # of the manifest's profile in canonical JSON (secrets masked)
    started_at: str | None = None
    finished_at: str | None = None


class StageOutcome(BaseModel):
    stage: str
    round: int = 1  # the campaign's round it ran in (a stage run once carries the round it ran in)
    outcome: str  # completed | failed | interrupted | skipped
    seconds: float | None
    detail: str | None


class ServiceCheck(BaseModel):
    service: str
    url: str | None
    ok: bool
    version: str | None
    detail: str | None
    fix: str | None


class Job(BaseModel):
    job_id: str | None
    stage: str
    round: int = 1
    attempt: int = 1  # the start of the campaign it ran in (a job cut by a crash is re-run in the next)
    level: int | None
    batch: int | None
    document: str | None
    # succeeded | failed | timed_out | stuck_pending | interrupted | not_submitted | unknown (not recorded)
    outcome: str
    server_status: str | None  # the last status the server reported
    status_from_trace: bool  # server_status is the last one seen while polling (the row never got one)
    succeeded: bool
    failure: str | None
    total_seconds: float | None
    queued_s: float | None
    script_s: float | None
    audio_s: float | None
    visual_s: float | None
    compose_s: float | None
    processing_seconds: float | None  # the server's own figure
    reported_video_seconds: float | None  # the server's figure
    decoded_video_seconds: float | None  # what the downloaded video holds
    scenes: int | None
    tracking_problems: str | None
    observations: int | None


class JobGroup(BaseModel):
    """The jobs of one stage (and concurrency level)."""

    stage: str
    level: int | None
    jobs: int
    outcomes: dict[str, int]  # outcome → jobs
    success: Rate  # verified successes of the jobs that reached an outcome (interrupted ones are counted beside)
    seconds: Distribution  # end-to-end seconds of verified successes only
    batches: int
    wall_seconds: float | None
    jobs_per_minute: float | None  # verified successes / wall minutes
    video_seconds_per_wall_second: float | None  # decoded seconds of verified videos / wall seconds
    decoded_video_seconds: float

    @property
    def interrupted(self) -> int:
        """Jobs cut off by the run's stop: counted beside the success rate, never in it."""
        return self.outcomes.get("interrupted", 0)

    @property
    def stuck_pending(self) -> int:
        """Jobs the server left `pending` past timing.pending_timeout_s while it answered ("never started"):
        failures like timed-out jobs, in the success rate's denominator and never in job seconds."""
        return self.outcomes.get("stuck_pending", 0)


class Endpoint(BaseModel):
    endpoint: str
    probes: int
    answered: Distribution  # ms of answered probes only
    errors: dict[str, int]  # error_kind → probes

    @property
    def error_count(self) -> int:
        """Probes without the expected answer: no answer at all, or a wrong one (status, body)."""
        return sum(self.errors.values())

    @property
    def error_kinds(self) -> str:
        """"3 timeout, 2 wrong_status"."""
        return ", ".join(f"{count} {kind}" for kind, count in self.errors.items())

    @property
    def silence(self) -> str:
        """What its probes got when none was answered as expected: "did not answer" only when every probe
        timed out or was refused; a wrong status or body is an answer, just not the expected one."""
        return "did not answer" if set(self.errors) <= set(NO_ANSWER) else "gave no expected answer"

    @property
    def unanswered(self) -> str:
        """"did not answer (3 probes: 3 timeout)": what its probes got when none was answered as expected."""
        return f"{self.silence} ({self.probes} probes: {self.error_kinds})"


class Video(BaseModel):
    job_id: str | None
    stage: str | None
    ok: bool
    frames_decoded: int | None
    decode_errors: int | None
    video_seconds: float | None
    audio_seconds: float | None
    reported_seconds: float | None
    resolution: str | None
    size_bytes: int | None
    sha256: str | None
    hash_stable: bool | None
    problems: str | None


class Tracking(BaseModel):
    stage: str
    tracked: Rate  # jobs with no tracking problem, of the stage's jobs
    observations: int | None


class Incident(BaseModel):
    service: str
    t: float | None
    since: float | None
    detail: str | None
    exit_code: int | None
    log_tail: str | None
    sentence: str  # analysis.incidents.sentence: "tts stopped answering at 12:03:05 UTC (exit -9)"


class Check(BaseModel):
    """One Great Expectations outcome as stored in checks.json."""

    suite: str | None
    expectation: str | None
    column: str | None
    success: bool
    observed: str | None
    expected: str | None
    details: str | None
    # False: a failure is reported but does not fail the run (the conformance suite with
    # thresholds.conformance = "warn"); checks.json written before this field existed fail the run
    fails_run: bool = True


class ThresholdCheck(BaseModel):
    """A profile threshold compared with the figure it bounds, from the same figures the reports show."""

    name: str  # "p95 health", "success rate", "p95 job time"
    measured: float | None
    unit: str  # "ms" | "s" | "%" | "videos"
    n: int
    comparison: str  # "≤" | "≥"
    threshold: float
    passed: bool
    sentence: str  # "p95 health 15040.6 ms > 250 ms (n=20)"


class RoundFigures(BaseModel):
    """One round of a campaign: the same figures by the same rules as the pooled ones, from its rows only."""

    round: int
    # the spans of its own stages (single, concurrent, latency, sequential) summed: not the verification, baseline,
    # conformance or faults run in it, nor a wait or the gap between a crash and its resume (None: no span recorded)
    seconds: float | None
    attempts: list[int] = []  # the starts of the campaign whose resource samples its usage is of
    jobs: int  # jobs under test (single, concurrent, sequential)
    interrupted_jobs: int
    success: Rate  # verified successes of its jobs that reached an outcome
    single: JobGroup | None
    levels: list[JobGroup]
    sequential: JobGroup | None
    latency: list[Endpoint]
    usage: list[Usage]  # per service, then the deployment, over its single and concurrent stages' samples
    downtime_s: float | None = None  # seconds services were unreachable before it started (None: no wait)


class CutRun(BaseModel):
    """A (round, stage) a crash cut and a later attempt ran again from its start: the cut attempt's rows, set
    aside by analysis.rounds.set_aside_reruns, are in no figure (the re-run counts in their place)."""

    round: int
    stage: str
    attempt: int  # the cut attempt
    rerun_by: int  # the attempt that ran the stage again
    rows: dict[str, int]  # table → its rows set aside
    outcomes: dict[str, int] = {}  # the set-aside jobs by outcome
    # "round 2 concurrent: 2 jobs (1 succeeded, 1 interrupted) and 1 batch of the cut attempt 1 are not counted:
    # the stage was run again by attempt 2"
    sentence: str


class Downtime(BaseModel):
    """A wait for unreachable services before a round (the `downtime` table), in words."""

    round: int  # the round that was about to start
    started_at: float | None
    ended_at: float | None
    seconds: float | None  # None: the wait was cut off (no end recorded)
    services: list[str]
    recovered: bool | None  # they all answered again within the wait
    detail: str | None
    sentence: str  # "tts was unreachable for 42.0 s before round 3; it answered again"


class Rounds(BaseModel):
    """A campaign's rounds. RunMetrics' other figures are POOLED: every round's values together as one sample
    (the rounds as repeats of one experiment), each with its n and, from n >= 5, its 95 % CI. Here: each round's
    own figures, the pooled success rate, and trends across rounds, each with its test and a sentence (analysis.
    trends). A run of one round (or one stored before rounds) has count 1 and nothing per round or trend: its
    figures are that round's. Downtime is listed whatever the count."""

    count: int = 1
    attempts: int = 1  # starts of the campaign: 1, + 1 per resume (the manifest's attempts)
    per_round: list[RoundFigures] = []  # empty below 2 rounds
    pooled_success: Rate = Rate(k=0, n=0)  # verified successes of every round's jobs that reached an outcome
    success_trend: SuccessTrend | None = None  # Cochran–Armitage over rounds
    job_time_trends: list[Trend] = []  # per concurrency level: the rounds' median job seconds
    latency_trends: list[Trend] = []  # per endpoint: the rounds' median ms of answered probes
    rss_trends: list[Trend] = []  # per service and the deployment: the rounds' mean RSS MB under load (a leak)
    downtime: list[Downtime] = []

    @property
    def trends(self) -> list[Trend]:
        """Every slope: job time, latency drift, RSS (the success trend is apart: a test of proportions)."""
        return [*self.job_time_trends, *self.latency_trends, *self.rss_trends]

    @property
    def significant(self) -> list[str]:
        """The sentences of the significant trends, success first."""
        success = [self.success_trend.sentence] if self.success_trend and self.success_trend.significant else []
        return success + [trend.sentence for trend in self.trends if trend.significant]


class RunMetrics(BaseModel):
    run_id: str | None
    profile_name: str | None
    profile_description: str | None
    targets: list[Target]
    target_notes: dict[str, str]  # what the manifest says besides services, e.g. llm_model
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    machine: Machine
    environment: Environment = Environment()
    outcome: str | None  # the manifest's: measured | stopped | interrupted | running (never closed)
    interrupted: bool  # the run did not reach its end
    stages: list[StageOutcome]
    services: list[ServiceCheck]
    jobs: list[Job]
    interrupted_jobs: int
    single: JobGroup | None
    levels: list[JobGroup]
    sequential: JobGroup | None
    all_jobs: Rate
    latency: list[Endpoint]
    videos: list[Video]  # downloaded videos (a failed download has no row: its job's failure says why)
    videos_passed: Rate
    jobs_without_video: int  # jobs that ended (failed or timed out) with no video downloaded
    unchecked_successes: list[str]  # verified successes with no video row (should never happen)
    tracking: list[Tracking]
    baseline_usage: list[Usage]
    run_usage: list[Usage]
    machine_usage: list[Usage]
    per_job_memory: list[PerJobMemory]
    incidents: list[Incident]
    # the contract's rules as this run saw them (analysis.conformance); empty when none could be checked
    conformance: list[ConformanceRule] = []
    # job status fields the server never filled in, with what that leaves unmeasured, e.g.
    # {"phase": "the server reports no phases: time per phase not measured"}
    unreported: dict[str, str] = {}
    # groups of verified videos with the same sha256 (each a list of job ids): a server cache hit
    identical_videos: list[list[str]] = []
    # fault experiments (analysis.faults); faults_skipped says why there are none, in words
    faults: list[FaultResult] = []
    faults_skipped: str | None = None
    # jobs the target runs at once where the profile knows it (the bundled stack's target.max_concurrent_jobs);
    # None for an external target: a level above it measures queueing
    max_concurrent_jobs: int | None = None
    # "videos pruned on … by retention, hashes and integrity rows kept" (analysis.retention); None: videos kept
    videos_pruned: str | None = None
    # the raw values behind the figures (analysis.series): job seconds per level, latencies, phases, timelines
    series: Series = Series()
    # a campaign's rounds: per-round figures, trends across them, downtime (the figures above are pooled)
    rounds: Rounds = Rounds()
    # stages a crash cut and a resume ran again: the cut attempt's rows, in no figure above, counted in words
    cut_runs: list[CutRun] = []
    checks: list[Check]
    thresholds: list[ThresholdCheck]
    statistics_rule: str
    verdict: str

    @property
    def failed_thresholds(self) -> list[ThresholdCheck]:
        return [check for check in self.thresholds if not check.passed]

    @property
    def validated(self) -> bool:
        """The run reached its expectations (a run interrupted or stopped before them was not validated)."""
        return bool(self.checks) and not self.interrupted

    def failures_in_words(self) -> list[str]:
        """What failed, as measured against expected: every failed threshold ("p95 health 15040.6 ms > 250 ms
        (n=20)"), then each failed GX check a threshold does not already say. Nothing for a run that was not
        validated: its verdict says why, and a threshold it never reached has not failed."""
        if not self.validated:
            return []
        words = [check.sentence for check in self.failed_thresholds]
        stated = {check.name for check in self.thresholds}
        for check in self.checks:
            if check.success or not check.fails_run or check.suite == "time_thresholds" or \
                    SAID_BY_THRESHOLDS.get((check.suite, check.column)) in stated:
                continue
            words.append(check_in_words(check))
        return words

    def warnings_in_words(self) -> list[str]:
        """Failed checks that do not fail the run (thresholds.conformance = "warn"), as measured against expected."""
        return [check_in_words(check) for check in self.checks if not check.success and not check.fails_run] \
            if self.validated else []

    def checks_passed_text(self) -> str:
        """The checks of a run that passed them all, in words: warnings (thresholds.conformance = "warn") apart."""
        warned = len(self.warnings_in_words())
        if not warned:
            return f"all {len(self.checks)} expectations passed"
        return (f"{len(self.checks) - warned} of {len(self.checks)} expectations passed, {warned} failed as a warning "
                'only (thresholds.conformance = "warn")')

    def jobs_of(self, stage: str) -> list[Job]:
        return [job for job in self.jobs if job.stage == stage]


# ---- computing ----------------------------------------------------------------------------------

def _epoch(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


def _targets(manifest: dict, services: pl.DataFrame) -> tuple[list[Target], dict[str, str]]:
    recorded = manifest.get("services") or {}
    declared = {name: entry for name, entry in recorded.items() if isinstance(entry, dict)}
    verified = {row["service"]: row for row in services.iter_rows(named=True)}
    targets = []
    for name in dict.fromkeys([*declared, *verified]):
        ok = verified.get(name, {}).get("ok")
        targets.append(Target(
            name=name,
            url=declared.get(name, {}).get("url") or verified.get(name, {}).get("url"),
            version=declared.get(name, {}).get("version") or verified.get(name, {}).get("version"),
            state="not verified" if ok is None else "verified" if ok else "verification FAILED",
        ))
    notes = {name: str(value) for name, value in recorded.items() if name not in declared and value is not None}
    return targets, notes


def _jobs(frames: dict[str, pl.DataFrame]) -> list[Job]:
    trace = frames["status_trace"].sort("t").group_by("job_id", maintain_order=True).agg(
        last_status=pl.col("status").drop_nulls().last())
    decoded = frames["videos"].group_by("job_id", maintain_order=True).agg(
        decoded_video_seconds=pl.col("video_seconds").last())
    table = (
        frames["jobs"]
        .join(trace, on="job_id", how="left", nulls_equal=False)
        .join(decoded, on="job_id", how="left", nulls_equal=False)
    )
    jobs = []
    for row in table.iter_rows(named=True):
        # a row still "running" in a stored run: the run ended (or died) with the job in flight; a row with
        # no outcome at all (written before outcomes were recorded) is not claimed to be anything
        outcome = INTERRUPTED if row["outcome"] == "running" else row["outcome"] or UNKNOWN
        succeeded = bool(row["succeeded"]) and outcome == "succeeded"
        from_trace = row["server_status"] is None and row["last_status"] is not None
        jobs.append(Job(
            job_id=row["job_id"], stage=row["stage"] or "—", round=row["round"], attempt=row["attempt"],
            level=row["level"], batch=row["batch"],
            document=row["document"], outcome=outcome,
            server_status=row["last_status"] if from_trace else row["server_status"], status_from_trace=from_trace,
            succeeded=succeeded, failure=row["failure"], total_seconds=row["total_seconds"],
            queued_s=row["queued_s"], script_s=row["script_s"], audio_s=row["audio_s"], visual_s=row["visual_s"],
            compose_s=row["compose_s"], processing_seconds=row["processing_seconds"],
            reported_video_seconds=row["reported_video_seconds"], decoded_video_seconds=row["decoded_video_seconds"],
            scenes=row["scenes"], tracking_problems=row["tracking_problems"] or None,
            observations=row["observations"],
        ))
    return jobs


def success_rate(jobs: list[Job]) -> Rate:
    """Verified successes among the jobs that reached an outcome: a job cut off by a stop of the run was
    neither a success nor a failure of the target, so it is counted beside the rate, not in it."""
    decided = [job for job in jobs if job.outcome != INTERRUPTED]
    return rate(sum(job.succeeded for job in decided), len(decided))


def job_group(stage: str, level: int | None, jobs: list[Job], batches: pl.DataFrame) -> JobGroup:
    done = [job for job in jobs if job.succeeded]
    outcomes: dict[str, int] = {}
    for job in jobs:
        outcomes[job.outcome] = outcomes.get(job.outcome, 0) + 1
    walls = batches["wall_seconds"].drop_nulls()
    wall = float(walls.sum()) if walls.len() and walls.sum() > 0 else None
    video = sum(job.decoded_video_seconds or 0.0 for job in done)
    success = success_rate(jobs)
    # no job reached an outcome (all cut off by the stop): no rate per wall time, whether or not the stop
    # left a batch wall time behind (SIGINT does, kill -9 does not)
    rated = wall if success.n else None
    return JobGroup(
        stage=stage, level=level, jobs=len(jobs), outcomes=outcomes, success=success,
        seconds=distribution((job.total_seconds for job in done), "s"), batches=batches.height, wall_seconds=wall,
        jobs_per_minute=len(done) / (rated / 60) if rated else None,
        video_seconds_per_wall_second=video / rated if rated else None, decoded_video_seconds=video,
    )


def _groups(jobs: list[Job], batches: pl.DataFrame) -> tuple[JobGroup | None, list[JobGroup], JobGroup | None]:
    def of(stage: str, level: int | None = None) -> tuple[list[Job], pl.DataFrame]:
        chosen = [job for job in jobs if job.stage == stage and (level is None or job.level == level)]
        rows = batches.filter(pl.col("stage") == stage)
        return chosen, rows if level is None else rows.filter(pl.col("level") == level)

    single = of("single")
    sequential = of("sequential")
    concurrent = [job for job in jobs if job.stage == "concurrent"]
    levels = sorted({job.level for job in concurrent if job.level is not None}
                    | set(batches.filter(pl.col("stage") == "concurrent")["level"].drop_nulls().to_list()))
    return (
        job_group("single", None, *single) if single[0] or single[1].height else None,
        [job_group("concurrent", level, *of("concurrent", level)) for level in levels],
        job_group("sequential", None, *sequential) if sequential[0] or sequential[1].height else None,
    )


def _latency(latency: pl.DataFrame) -> list[Endpoint]:
    endpoints = []
    for (endpoint,), probes in latency.group_by("endpoint", maintain_order=True):
        answered = probes.filter(pl.col("ok").fill_null(False) & pl.col("ms").is_not_null())
        failed = probes.filter(~(pl.col("ok").fill_null(False) & pl.col("ms").is_not_null()))
        kinds = failed.with_columns(pl.col("error_kind").fill_null("other"))["error_kind"].value_counts(sort=True)
        endpoints.append(Endpoint(
            endpoint=endpoint, probes=probes.height, answered=distribution(answered["ms"].to_list(), "ms"),
            errors={row["error_kind"]: row["count"] for row in kinds.iter_rows(named=True)},
        ))
    return endpoints


def _videos(videos: pl.DataFrame) -> list[Video]:
    return [
        Video(**{name: row[name] for name in Video.model_fields if name in row and name != "ok"}, ok=bool(row["ok"]),
              resolution=f"{row['width']}x{row['height']}" if row["width"] and row["height"] else None)
        for row in videos.iter_rows(named=True)
    ]


def _tracking(jobs: list[Job]) -> list[Tracking]:
    stages = list(dict.fromkeys(job.stage for job in jobs))
    rows = []
    for stage in stages:
        part = [job for job in jobs if job.stage == stage]
        observed = [job.observations for job in part if job.observations is not None]
        rows.append(Tracking(stage=stage, tracked=rate(sum(1 for job in part if not job.tracking_problems), len(part)),
                             observations=sum(observed) if observed else None))
    return rows


def _incidents(incidents: pl.DataFrame) -> list[Incident]:
    """The incidents earliest first (by since, then by when the re-probe found them), each in analysis.incidents'
    one wording: "stopped answering" only for a process that died, "failing since" for one that answers wrongly."""
    rows = sorted(incidents.iter_rows(named=True),
                  key=lambda row: (row["since"] if row["since"] is not None else row["t"] or 0.0, row["t"] or 0.0))
    return [Incident(**row, sentence=incident_words.sentence(row)) for row in rows]


def _stages(stages: pl.DataFrame) -> list[StageOutcome]:
    """A stage's last row in each round: it is recorded "running" as it starts and again as it ends, so a stage
    that was under way when the process died (kill -9) is still there, shown as interrupted; one run again on
    resume has a later row. In round order, then the campaign's stage order."""
    last = {(row["round"], row["stage"]): row for row in stages.iter_rows(named=True)}
    rows = [
        StageOutcome(stage=row["stage"], round=row["round"],
                     outcome=INTERRUPTED if row["outcome"] == "running" else row["outcome"] or "—",
                     detail=CUT_OFF_STAGE if row["outcome"] == "running" else row["detail"],
                     seconds=row["finished_at"] - row["started_at"]
                     if row["finished_at"] is not None and row["started_at"] is not None else None)
        for row in last.values()
    ]
    order = {name: i for i, name in enumerate(STAGE_ORDER)}
    return sorted(rows, key=lambda row: (row.round, order.get(row.stage, len(order))))


def environment_of(manifest: dict, services: pl.DataFrame) -> Environment:
    """The run's environment from its manifest (machine, environment, services) and verification rows."""
    machine, software = manifest.get("machine") or {}, manifest.get("environment") or {}
    recorded = manifest.get("services") or {}
    verified = {row["service"]: row.get("version") for row in services.iter_rows(named=True)}
    espeak, project = software.get("espeak_ng") or {}, software.get("project") or {}
    python = machine.get("python")
    return Environment(
        recorded=bool(software), cpu_model=machine.get("cpu_model"), cpu_cores=machine.get("cpu_count"),
        cpu_physical_cores=machine.get("cpu_physical_cores"), memory_mb=resources.to_mb(machine.get("memory_bytes")),
        os=machine.get("os"), kernel=machine.get("kernel"), architecture=machine.get("architecture"),
        python=f"{python} ({machine['python_implementation']})" if python and machine.get("python_implementation")
        else python,
        packages=software.get("packages") or {}, pyav_ffmpeg=software.get("pyav_ffmpeg"),
        libav=software.get("libav") or {}, espeak_ng=espeak.get("version"), espeak_ng_source=espeak.get("source"),
        stack_ffmpeg=software.get("stack_ffmpeg"),
        redis=(recorded.get("redis") or {}).get("version") or verified.get("redis"),
        llm_model=recorded.get("llm_model") or (manifest.get("profile") or {}).get("target", {}).get("llm_model"),
        llm_digest=recorded.get("llm_digest"), project_version=project.get("version"),
        git_commit=project.get("commit"), git_dirty=project.get("dirty"),
        profile_sha256=software.get("profile_sha256"),
        started_at=manifest.get("started_at"), finished_at=manifest.get("finished_at"),
    )


def _max_concurrent_jobs(profile: dict) -> int | None:
    """The bundled stack's limit from the run's profile; unknown (None) for an external target."""
    target = profile.get("target") or {}
    return target.get("max_concurrent_jobs") if target.get("bundled_stack") else None


def plural(count: int, noun: str) -> str:
    """"1 job", "3 jobs"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def ci_text(ci: Interval, show: Callable[[float], str]) -> str:
    """"15.0–85.0": a confidence interval's bounds, each shown by `show` (the caller's number format)."""
    return f"{show(ci.low)}–{show(ci.high)}"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "%":
        return f"{value * 100:.1f} %"
    return f"{value:.1f} {unit}" if unit == "ms" else f"{value:.2f} {unit}"


def _at_most(name: str, figure: Distribution, limit: float, silent: str) -> ThresholdCheck:
    """A time threshold: the p95 where n supports one, else the max (every value within the limit
    implies the p95 is); no values at all fail, in words."""
    statistic, value = ("p95", figure.p95) if figure.p95 is not None else ("max", figure.max)
    unit = figure.unit
    if value is None:
        return ThresholdCheck(name=f"p95 {name}", measured=None, unit=unit, n=0, comparison="≤", threshold=limit,
                              passed=False, sentence=f"{name}: {silent}; no figure to compare with ≤ {limit:g} {unit}")
    passed = value <= limit
    why = "" if statistic == "p95" else "; too few for a p95, so the max stands in"
    return ThresholdCheck(
        name=f"{statistic} {name}", measured=value, unit=unit, n=figure.n, comparison="≤", threshold=limit,
        passed=passed,
        sentence=f"{statistic} {name} {_fmt(value, unit)} {'≤' if passed else '>'} {limit:g} {unit} "
                 f"(n={figure.n}{why})",
    )


def ended_without_video(without_video: int) -> str:
    """"2 jobs ended without a downloaded video": said beside every video-integrity figure."""
    return f"{plural(without_video, 'job')} ended without a downloaded video"


def videos_sentence(videos: Rate, without_video: int) -> str:
    """"5 of 5 downloaded videos passed every integrity check (2 jobs ended without a downloaded video)";
    "no video was downloaded (7 jobs ended without one), so none could be checked"."""
    if not videos.n:
        ended = f" ({plural(without_video, 'job')} ended without one)" if without_video else ""
        return f"no video was downloaded{ended}, so none could be checked"
    beside = f" ({ended_without_video(without_video)})" if without_video else ""
    return f"{videos.k} of {videos.n} downloaded videos passed every integrity check{beside}"


def jobs_without_video(jobs: list[Job], videos: list[Video]) -> int:
    """Jobs that ended (failed, timed out or stuck pending) with no downloaded video: a failed download, or a
    server that never gave one (the job's failure says which)."""
    downloaded = {video.job_id for video in videos}
    return sum(1 for job in jobs if job.outcome in ("failed", "timed_out", "stuck_pending")
               and job.job_id not in downloaded)


def same_video_groups(videos: list[Video]) -> list[list[str]]:
    """Job ids whose verified videos (passed every check) share a SHA-256, a group per hash of two or more:
    a server answering from its cache, or a pipeline that makes the same bytes twice."""
    by_hash: dict[str, dict[str, None]] = {}
    for video in videos:
        if video.ok and video.sha256 and video.job_id:
            by_hash.setdefault(video.sha256, {})[video.job_id] = None
    return [list(jobs) for jobs in by_hash.values() if len(jobs) > 1]


def threshold_checks(thresholds: dict, jobs: list[Job], latency: list[Endpoint], videos: Rate,
                     without_video: int = 0) -> list[ThresholdCheck]:
    """The profile's thresholds against this run's figures (the same rules the GX suites apply)."""
    checks = []
    success = success_rate(jobs)
    if thresholds.get("success_rate") is not None:
        limit = thresholds["success_rate"]
        passed = success.value is not None and success.value >= limit
        ci = f", 95 % CI {ci_text(success.ci, lambda share: f'{share * 100:.1f}')} %" if success.ci else ""
        checks.append(ThresholdCheck(
            name="success rate", measured=success.value, unit="%", n=success.n, comparison="≥", threshold=limit,
            passed=passed,
            sentence=f"success rate {_fmt(success.value, '%')} ({success.k} of {success.n} jobs with a verified video"
                     f"{ci}) {'≥' if passed else '<'} {limit * 100:g} %" if success.n else
                     f"success rate: no job was run; no figure to compare with ≥ {limit * 100:g} %",
        ))
    if thresholds.get("p95_job_seconds") is not None:
        seconds = distribution((job.total_seconds for job in jobs if job.succeeded), "s")
        checks.append(_at_most("job time", seconds, thresholds["p95_job_seconds"], "no job delivered a verified video"))
    if thresholds.get("p95_api_latency_ms") is not None and not latency:
        checks.append(ThresholdCheck(
            name="p95 API latency", measured=None, unit="ms", n=0, comparison="≤",
            threshold=thresholds["p95_api_latency_ms"], passed=False,
            sentence=f"API latency: no probe was recorded; no figure to compare with ≤ "
                     f"{thresholds['p95_api_latency_ms']:g} ms",
        ))
    if thresholds.get("p95_api_latency_ms") is not None:
        checks += [_at_most(endpoint.endpoint, endpoint.answered, thresholds["p95_api_latency_ms"],
                            endpoint.unanswered)
                   for endpoint in latency]
    if videos.n or jobs:
        checks.append(ThresholdCheck(
            name="video integrity", measured=videos.value, unit="%", n=videos.n, comparison="≥", threshold=1.0,
            passed=videos.n > 0 and videos.k == videos.n, sentence=videos_sentence(videos, without_video),
        ))
    return checks


def check_in_words(check: Check) -> str:
    """"job_results outcome: 2 of 7 unexpected, e.g. failed (expected every job reached its end)"."""
    where = f"{check.suite} {check.column}" if check.column else f"{check.suite}"
    expected = check.expected or check.expectation
    return f"{where}: {check.observed or 'no observation'} (expected {expected})"


def verdict(*, interrupted: bool, outcome: str | None, interrupted_jobs: int, checks: list[Check],
            failed_thresholds: list[ThresholdCheck], stage_failures: list[StageOutcome],
            failed_services: list[ServiceCheck] = (), unrecovered: list[Downtime] = (), rounds: int = 1,
            stopped_at: int | None = None) -> str:
    """The run's verdict in one sentence: interrupted, stopped early, not validated, failed or passed. A campaign
    of several rounds names the round of a failed stage; services that did not answer again before a round are
    said as such; a campaign that stopped before its last round (`stopped_at`) says what its checks cover."""
    # a failed verification stage says what the failed services already say: each failing service once
    problems = [f"stage {stage.stage} failed{f' in round {stage.round}' if rounds > 1 else ''}: "
                f"{stage.detail or 'no detail'}" for stage in stage_failures
                if not (failed_services and stage.stage == "verification")]
    if failed_services:
        problems.insert(0, "service verification FAILED for " + ", ".join(
            f"{service.service} ({service.detail or 'no detail'})" for service in failed_services))
    problems += [wait.sentence for wait in unrecovered]
    also = "".join(f"; {problem}" for problem in problems)
    if interrupted:
        in_flight = f" with {plural(interrupted_jobs, 'job')} in flight" if interrupted_jobs else ""
        return f"INTERRUPTED: the run stopped before its end{in_flight}; the figures cover what was measured " \
               f"until then and were not validated" + also
    if not checks:
        stopped = f" (run {outcome})" if outcome and outcome != "measured" else ""
        return "not validated: no expectation results" + stopped + also
    if stopped_at is not None:  # checked all the same: the rounds before it were measured whole
        also = f"; the campaign STOPPED at round {stopped_at}, so the checks cover the jobs measured before it" + also
    failed = sum(1 for check in checks if not check.success and check.fails_run)
    warned = [check.suite or "?" for check in checks if not check.success and not check.fails_run]
    if warned:  # reported, never passed off as passed, but not failing the run
        also = f"; {plural(len(warned), 'check')} failed as a warning only ({', '.join(dict.fromkeys(warned))}: " \
               f"not failing the run)" + also
    if not failed:
        passed = f"all {len(checks)} checks passed" if not warned else \
            f"{len(checks) - len(warned)} of {len(checks)} checks passed"
        return passed + (f", but {also[2:]}" if also else "")
    measured = "; ".join(check.sentence for check in failed_thresholds)
    return f"{failed} of {len(checks)} checks FAILED" + (f": {measured}" if measured else "") + also


def stopped_round(outcome: str | None, stages: list[StageOutcome]) -> int | None:
    """The round a stopped campaign did not run (its load stages skipped), None when it was not stopped."""
    skipped = [stage.round for stage in stages if stage.stage in ROUND_STAGES and stage.outcome == "skipped"]
    return min(skipped) if outcome == "stopped" and skipped else None


def listed(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def first_verification(services: pl.DataFrame) -> pl.DataFrame:
    """The campaign's verification before its first round, a row per service (its last, should a resume have
    verified again): the re-verifications between rounds are told by the downtime they found."""
    if not services.height:
        return services
    first = services.filter(pl.col("round") == services["round"].min())
    return first.group_by("service", maintain_order=True).last().select(services.columns)


def downtime_sentence(services: list[str], seconds: float | None, before: int, recovered: bool | None) -> str:
    """"tts and llm were unreachable for 42.0 s before round 3; they answered again"."""
    one = len(services) == 1
    who = listed(services) if services else "the services"
    how_long = f"for {seconds:.1f} s" if seconds is not None else "for an unknown time (the wait has no recorded end)"
    # no verdict on a wait that ended (a recorded length) without one: the run's stop cut it
    after = (f"; {'it' if one else 'they'} answered again" if recovered else
             " and did not answer again within the wait" if recovered is False else
             "; the run's stop cut the wait" if seconds is not None else "")
    return f"{who} {'was' if one else 'were'} unreachable {how_long} before round {before}{after}"


def _downtime(table: pl.DataFrame) -> list[Downtime]:
    waits = []
    for row in table.sort("started_at", nulls_last=True, maintain_order=True).iter_rows(named=True):
        started, ended = row["started_at"], row["ended_at"]
        seconds = row["seconds"] if row["seconds"] is not None else \
            ended - started if started is not None and ended is not None else None
        services = [name.strip() for name in (row["services"] or "").split(",") if name.strip()]
        waits.append(Downtime(round=row["round"], started_at=started, ended_at=ended, seconds=seconds,
                              services=services, recovered=row["recovered"], detail=row["detail"],
                              sentence=downtime_sentence(services, seconds, row["round"], row["recovered"])))
    return waits


def rounds_of(frames: dict[str, pl.DataFrame]) -> list[int]:
    """The rounds the campaign recorded a stage, a job or a probe in."""
    return sorted({number for table in ("stages", "jobs", "latency") for number in frames[table]["round"].drop_nulls()})


def round_figures(number: int, jobs: list[Job], frames: dict[str, pl.DataFrame],
                  downtime: list[Downtime]) -> RoundFigures:
    """Round `number`'s figures from its rows only (`frames` conformed; `jobs` every job of the run)."""
    def of(table: str) -> pl.DataFrame:
        return frames[table].filter(pl.col("round") == number)

    mine = [job for job in jobs if job.round == number]
    single, levels, sequential = _groups(mine, of("batches"))
    # each round stage's last row (its end, with its start) of the attempt that counts: its own span
    ends = of("stages").filter(pl.col("stage").is_in(ROUND_STAGES)).group_by("stage", maintain_order=True).last()
    spans = (ends["finished_at"] - ends["started_at"]).drop_nulls()
    waits = [wait.seconds for wait in downtime if wait.round == number and wait.seconds is not None]
    samples = of("samples").filter(pl.col("stage").is_in(resources.RUN_STAGES))
    return RoundFigures(
        round=number, seconds=float(spans.sum()) if spans.len() else None,
        attempts=sorted(set(samples["attempt"].drop_nulls().to_list())), jobs=len(mine),
        interrupted_jobs=sum(1 for job in mine if job.outcome == INTERRUPTED), success=success_rate(mine),
        single=single, levels=levels, sequential=sequential, latency=_latency(of("latency")),
        usage=resources.usage(of("samples"), resources.RUN_STAGES), downtime_s=sum(waits) if waits else None,
    )


def restarted_note(per_round: list[RoundFigures]) -> str:
    """"; round 3 onwards (attempt 2) measured a restarted stack (resume), so the slope spans 2 starts of it": said of
    a bundled stack's RSS trend when a resume started it anew between rounds (its memory starts over then, which can
    hide a leak or make one), "" when every round's samples are of one start."""
    starts, seen = [], None
    for figures in per_round:  # a round with samples of a later start than the rounds before (wholly or in part)
        if figures.attempts and seen is not None and max(figures.attempts) > seen:
            starts.append((figures.round, max(figures.attempts)))
        seen = max([*figures.attempts, *([seen] if seen is not None else [])]) if figures.attempts else seen
    if not starts:
        return ""
    where = listed([f"round {number} onwards (attempt {attempt})" for number, attempt in starts])
    return f"; {where} measured a restarted stack (resume), so the slope spans {len(starts) + 1} starts of it"


def round_trends(per_round: list[RoundFigures], restarted_on_resume: bool = False) -> dict:
    """Rounds' fields for the trends across `per_round`: success (Cochran–Armitage), and the least-squares slope
    of each level's median job seconds, each endpoint's median ms and each service's mean RSS under load. With
    `restarted_on_resume` (the bundled stack, started anew by a resume) an RSS trend across a resume says so: the
    slope is kept over every round rather than cut per start (a start of 2 rounds has too few for a trend), and the
    reader is told it crosses a restart."""
    x = [figures.round for figures in per_round]
    note = restarted_note(per_round) if restarted_on_resume else ""

    def across_restart(trend: Trend) -> Trend:
        return trend.model_copy(update={"sentence": trend.sentence + note}) if note and trend.slope is not None \
            else trend

    def series(values: Callable[[RoundFigures], float | None]) -> list[float | None]:
        return [values(figures) for figures in per_round]

    def level_median(level: int) -> Callable[[RoundFigures], float | None]:
        return lambda figures: next((group.seconds.median for group in figures.levels if group.level == level), None)

    def endpoint_median(name: str) -> Callable[[RoundFigures], float | None]:
        return lambda figures: next((e.answered.median for e in figures.latency if e.endpoint == name), None)

    def rss_mean(name: str) -> Callable[[RoundFigures], float | None]:
        return lambda figures: next((u.rss_mean_mb for u in figures.usage if u.name == name), None)

    levels = sorted({group.level for figures in per_round for group in figures.levels if group.level is not None})
    endpoints = list(dict.fromkeys(e.endpoint for figures in per_round for e in figures.latency))
    services = list(dict.fromkeys(usage.name for figures in per_round for usage in figures.usage))
    return {
        "success_trend": success_trend(x, series(lambda f: f.success.k), series(lambda f: f.success.n)),
        "job_time_trends": [linear_trend(x, series(level_median(level)), what=f"median job time at concurrency "
                                         f"{level}", unit="s", decimals=2, rises="rose") for level in levels],
        "latency_trends": [linear_trend(x, series(endpoint_median(name)), what=f"{name} median latency", unit="ms",
                                        rises="rose") for name in endpoints],
        "rss_trends": [across_restart(linear_trend(x, series(rss_mean(name)), what=f"{name} RSS", unit="MB"))
                       for name in services],
    }


def rounds_summary(jobs: list[Job], frames: dict[str, pl.DataFrame], attempts: int = 1,
                   restarted_on_resume: bool = False) -> Rounds:
    """Per-round figures and trends from 2 rounds on; the pooled success rate, downtime and the campaign's starts
    whatever the count. `frames`: the counted rows (analysis.rounds.set_aside_reruns)."""
    numbers = rounds_of(frames)
    downtime = _downtime(frames["downtime"])
    common = {"count": max(1, len(numbers)), "attempts": attempts, "pooled_success": success_rate(jobs),
              "downtime": downtime}
    if len(numbers) < 2:
        return Rounds(**common)
    per_round = [round_figures(number, jobs, frames, downtime) for number in numbers]
    return Rounds(**common, per_round=per_round, **round_trends(per_round, restarted_on_resume))


# what a set-aside row of a table is, in words (singular, plural), in the order a sentence names them; a table not
# here (stages, fault_events) is not counted in words: the stage itself, and the events behind a fault experiment
SET_ASIDE_WORDS = {"jobs": ("job", "jobs"), "batches": ("batch", "batches"), "videos": ("video", "videos"),
                   "latency": ("latency probe", "latency probes"), "status_trace": ("status answer", "status answers"),
                   "samples": ("resource sample", "resource samples"),
                   "services": ("service check", "service checks"),
                   "contract_probes": ("contract probe", "contract probes"),
                   "faults": ("fault experiment", "fault experiments")}


ENDED_STAGE = ("completed", "failed")


def cut_runs(aside: dict[str, pl.DataFrame], counted_stages: pl.DataFrame) -> list[CutRun]:
    """Each (round, stage, cut attempt) whose rows set_aside_reruns set aside, with their count per table in words."""
    found: dict[tuple[int, str, int], dict[str, pl.DataFrame]] = {}
    for name, table in aside.items():
        stages = table["stage"] if "stage" in table.columns else pl.Series([STAGE_OF_TABLE[name]] * table.height)
        keyed = table.with_columns(_stage=stages)
        for (round_, stage, attempt), rows in keyed.group_by("round", "_stage", "attempt", maintain_order=True):
            found.setdefault((round_, stage, attempt), {})[name] = rows
    rerun = {(row["round"], row["stage"]): row["attempt"] for row in counted_stages.iter_rows(named=True)}
    runs = []
    order = {name: i for i, name in enumerate(STAGE_ORDER)}
    for (round_, stage, attempt), tables in sorted(found.items(), key=lambda item: (
            item[0][0], order.get(item[0][1], len(order)), item[0][2])):
        jobs = tables.get("jobs")
        outcomes: dict[str, int] = {}
        for outcome in (jobs["outcome"].to_list() if jobs is not None else []):
            shown = INTERRUPTED if outcome == "running" else outcome or UNKNOWN
            outcomes[shown] = outcomes.get(shown, 0) + 1
        parts = [plural_of(tables[name].height, *words) for name, words in SET_ASIDE_WORDS.items() if name in tables]
        if parts and jobs is not None:
            parts[0] += " (" + ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items()) + ")"
        by = rerun.get((round_, stage), attempt + 1)
        total = sum(tables[name].height for name in SET_ASIDE_WORDS if name in tables)
        # a stage that had ended and was run again all the same (a resume verifies its new stack) was not cut
        ended = tables.get("stages") is not None and tables["stages"]["outcome"][-1] in ENDED_STAGE
        which = f"attempt {attempt}" if ended else f"the cut attempt {attempt}"
        sentence = (f"round {round_} {stage}: {listed(parts)} of {which} {'is' if total == 1 else 'are'} not "
                    f"counted: the stage was run again by attempt {by}"
                    if parts else f"round {round_} {stage}: {which} was run again by attempt {by}")
        runs.append(CutRun(round=round_, stage=stage, attempt=attempt, rerun_by=by,
                           rows={name: rows.height for name, rows in tables.items()}, outcomes=outcomes,
                           sentence=sentence))
    return runs


def plural_of(count: int, one: str, many: str) -> str:
    """"1 batch", "3 batches"."""
    return f"{count} {one if count == 1 else many}"


def _text(value) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value, default=str)


def compute_metrics(frames: dict[str, pl.DataFrame], manifest: dict | None, checks: list[dict] | None) -> RunMetrics:
    """Every figure of a run, from its stored tables, manifest and GX outcomes."""
    # every column of its schema (a table not stored, or written by an older version without some columns, gets
    # them empty; without rounds, round 1), so no figure special-cases a missing one
    frames = {name: empty(name) if frames.get(name) is None else conform(name, frames[name]) for name in TABLES}
    # a stage a crash cut and a resume ran again counts once: its re-run (the cut attempt's rows are told in words);
    # the contract is the target's, so its rules see every answer it gave, the cut attempt's too
    recorded = frames
    frames, aside = set_aside_reruns(frames)
    manifest = manifest or {}
    profile = manifest.get("profile") or {}
    thresholds = profile.get("thresholds") or {}
    started, finished = manifest.get("started_at"), manifest.get("finished_at")
    outcome = manifest.get("outcome")
    interrupted = not finished or outcome in ("running", INTERRUPTED)
    start_t, end_t = _epoch(started), _epoch(finished)
    machine = manifest.get("machine") or {}

    jobs = _jobs(frames)
    single, levels, sequential = _groups(jobs, frames["batches"])
    latency = _latency(frames["latency"])
    videos = _videos(frames["videos"])
    videos_passed = rate(sum(video.ok for video in videos), len(videos))
    checked = {video.job_id for video in videos}
    stored_checks = [Check(**{name: _text(check.get(name)) for name in Check.model_fields
                              if name not in ("success", "fails_run")},
                           success=bool(check.get("success")), fails_run=check.get("fails_run") is not False)
                     for check in (checks or []) if isinstance(check, dict)]
    without_video = jobs_without_video(jobs, videos)
    threshold_list = threshold_checks(thresholds, jobs, latency, videos_passed, without_video)
    stages = _stages(frames["stages"])
    interrupted_jobs = sum(1 for job in jobs if job.outcome == INTERRUPTED)
    samples = frames["samples"]
    verified = first_verification(frames["services"])
    targets, notes = _targets(manifest, verified)
    services = [ServiceCheck(**{name: row[name] for name in ServiceCheck.model_fields if name != "ok"},
                             ok=bool(row["ok"])) for row in verified.iter_rows(named=True)]
    faults = results_of(frames["faults"])
    rounds = rounds_summary(jobs, frames, max(1, len(manifest.get("attempts") or [])),
                            restarted_on_resume=bool((profile.get("target") or {}).get("bundled_stack")))
    return RunMetrics(
        run_id=manifest.get("run_id"),
        profile_name=manifest.get("profile_name") or profile.get("name"),
        profile_description=profile.get("description") or None,
        targets=targets, target_notes=notes, started_at=started, finished_at=finished,
        duration_seconds=end_t - start_t if start_t is not None and end_t is not None else None,
        machine=Machine(
            hostname=machine.get("hostname"), platform=machine.get("platform"), python=machine.get("python"),
            cpu_count=machine.get("cpu_count"), memory_mb=resources.to_mb(machine.get("memory_bytes")),
        ),
        environment=environment_of(manifest, verified),
        outcome=outcome, interrupted=interrupted, stages=stages,
        services=services,
        jobs=jobs, interrupted_jobs=interrupted_jobs, single=single, levels=levels, sequential=sequential,
        all_jobs=rate(sum(job.succeeded for job in jobs), len(jobs)),
        latency=latency, videos=videos, videos_passed=videos_passed, jobs_without_video=without_video,
        unchecked_successes=[job.job_id for job in jobs if job.succeeded and job.job_id not in checked],
        tracking=_tracking(jobs),
        baseline_usage=resources.usage(samples, [resources.BASELINE]),
        run_usage=resources.usage(samples, resources.RUN_STAGES),
        machine_usage=resources.machine_by_stage(samples),
        per_job_memory=resources.per_job_memory(samples, frames["jobs"], end_t),
        incidents=_incidents(frames["incidents"]),
        faults=faults, faults_skipped=skipped_reason(frames["stages"], faults),
        max_concurrent_jobs=_max_concurrent_jobs(profile),
        videos_pruned=pruned_sentence(manifest.get(PRUNED)),
        identical_videos=same_video_groups(videos),
        series=compute_series(frames, start_t, {job.job_id for job in jobs if job.succeeded and job.job_id}),
        rounds=rounds, cut_runs=cut_runs(aside, frames["stages"]),
        conformance=conformance_rules(recorded), unreported=unreported_fields(recorded["status_trace"]),
        checks=stored_checks, thresholds=threshold_list, statistics_rule=RULE,
        verdict=verdict(interrupted=interrupted, outcome=outcome, interrupted_jobs=interrupted_jobs,
                        checks=stored_checks, failed_thresholds=[c for c in threshold_list if not c.passed],
                        stage_failures=[stage for stage in stages if stage.outcome == "failed"],
                        failed_services=[service for service in services if not service.ok],
                        unrecovered=[wait for wait in rounds.downtime if wait.recovered is False],
                        rounds=rounds.count, stopped_at=stopped_round(outcome, stages)),
    )


def metrics_of(run_dir: Path | str) -> RunMetrics:
    """The figures of a stored run folder (tables, manifest.json, checks.json)."""
    folder = Path(run_dir)
    return compute_metrics(load_tables(folder), read_json(folder / MANIFEST, {}), read_json(folder / CHECKS, []))
