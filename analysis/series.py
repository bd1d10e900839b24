"""The raw series behind a run's figures (artifacts/figures.py draws them, nothing else computes them).

Part of `RunMetrics` (field `series`), computed once from the stored tables by the same rules as the
summary figures: job seconds are those of verified successes only, latencies those of answered probes
only, CPU is % of one core and RSS MB of 2**20 bytes (analysis.resources). Times on a timeline are
seconds since the run's start (its first stored instant when the manifest has no start).
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel

from analysis.resources import MACHINE, TOTAL, to_mb
from analysis.stats import clean

PHASES = ("queued_s", "script_s", "audio_s", "visual_s", "compose_s")


class LevelSeconds(BaseModel):
    """End-to-end seconds of one concurrency level's verified successes, ascending (a CDF's steps)."""

    level: int
    seconds: list[float]


class EndpointMs(BaseModel):
    """Milliseconds of one endpoint's answered probes, in probe order, and the probes without one."""

    endpoint: str
    ms: list[float]
    unanswered: int


class PhaseMeans(BaseModel):
    """Mean seconds per phase of one group's verified successes (stage, and level for concurrent runs).

    A job's phases, as polled (analysis.tracking.phase_durations), split its end-to-end time; a phase no poll
    saw got none of it (its time is counted in the phase seen before it), so it counts 0 s in the mean and
    the means add up to the mean end-to-end time."""

    stage: str
    level: int | None
    n: int  # verified successes with at least one phase seen
    seconds: dict[str, float]  # phase column (queued_s …) → mean seconds over the n jobs
    seen: dict[str, int]  # phase column → jobs in which it was seen
    total_seconds: float | None  # mean end-to-end seconds of the same jobs


class StageSpan(BaseModel):
    stage: str
    round: int = 1
    start_s: float
    end_s: float | None  # None: no end recorded


class ServiceTimeline(BaseModel):
    """One service's resource samples over the run: t (s since start), stage, CPU % of one core, RSS MB."""

    service: str
    t: list[float]
    stage: list[str | None]
    cpu_percent: list[float | None]
    rss_mb: list[float | None]


class Series(BaseModel):
    job_seconds: list[LevelSeconds] = []
    latency_ms: list[EndpointMs] = []
    phases: list[PhaseMeans] = []
    stages: list[StageSpan] = []
    timelines: list[ServiceTimeline] = []


def _mean(values: list[float | None]) -> float | None:
    sample = clean(values)
    return float(sample.mean()) if sample.size else None


def phase_means(stage: str, level: int | None, jobs: pl.DataFrame) -> PhaseMeans | None:
    """None when none of the group's verified successes has a phase (the server reports none, or none succeeded)."""
    measured = jobs.filter(pl.col("succeeded")).filter(pl.any_horizontal(pl.col(PHASES).is_not_null()))
    if not measured.height:
        return None
    return PhaseMeans(stage=stage, level=level, n=measured.height,
                      seconds={phase: float(measured[phase].fill_null(0.0).mean()) for phase in PHASES},
                      seen={phase: measured.height - measured[phase].null_count() for phase in PHASES},
                      total_seconds=_mean(measured["total_seconds"].to_list()))


def _phases(jobs: pl.DataFrame) -> list[PhaseMeans]:
    groups = [("single", None, jobs.filter(pl.col("stage") == "single"))]
    concurrent = jobs.filter(pl.col("stage") == "concurrent")
    groups += [("concurrent", level, concurrent.filter(pl.col("level") == level))
               for level in sorted(concurrent["level"].drop_nulls().unique().to_list())]
    groups.append(("sequential", None, jobs.filter(pl.col("stage") == "sequential")))
    return [means for means in (phase_means(*group) for group in groups) if means is not None]


def _zero(frames: dict[str, pl.DataFrame], run_start: float | None) -> float | None:
    if run_start is not None:
        return run_start
    firsts = [value for value in (frames["stages"]["started_at"].min(), frames["samples"]["t"].min())
              if value is not None]
    return min(firsts) if firsts else None


def compute_series(frames: dict[str, pl.DataFrame], run_start: float | None, succeeded_ids: set[str]) -> Series:
    """`frames` conformed to analysis.schema; `succeeded_ids` the verified successes (RunMetrics.jobs' rule)."""
    jobs = frames["jobs"].with_columns(
        succeeded=pl.col("job_id").is_in(list(succeeded_ids)) & pl.col("job_id").is_not_null())
    concurrent = jobs.filter((pl.col("stage") == "concurrent") & pl.col("succeeded"))
    levels = sorted(frames["jobs"].filter(pl.col("stage") == "concurrent")["level"].drop_nulls().unique().to_list())
    job_seconds = [LevelSeconds(level=level, seconds=sorted(clean(
        concurrent.filter(pl.col("level") == level)["total_seconds"].to_list()).tolist())) for level in levels]

    latency_ms = []
    for (endpoint,), probes in frames["latency"].group_by("endpoint", maintain_order=True):
        answered = pl.col("ok").fill_null(False) & pl.col("ms").is_not_null()
        latency_ms.append(EndpointMs(endpoint=endpoint, ms=probes.filter(answered)["ms"].to_list(),
                                     unanswered=probes.filter(~answered).height))

    zero = _zero(frames, run_start)
    stages, timelines = [], []
    if zero is not None:
        # a stage's last row in each round (a stage run again on resume: its re-run)
        last = {(row["round"], row["stage"]): row for row in frames["stages"].iter_rows(named=True)
                if row["started_at"] is not None}
        stages = [StageSpan(stage=row["stage"], round=row["round"], start_s=row["started_at"] - zero,
                            end_s=row["finished_at"] - zero if row["finished_at"] is not None else None)
                  for row in sorted(last.values(), key=lambda row: row["started_at"])]
        samples = frames["samples"].filter(~pl.col("service").is_in([TOTAL, MACHINE]) & pl.col("t").is_not_null())
        for (service,), part in samples.sort("t").group_by("service", maintain_order=True):
            timelines.append(ServiceTimeline(
                service=service, t=[t - zero for t in part["t"].to_list()], stage=part["stage"].to_list(),
                cpu_percent=part["cpu_percent"].to_list(), rss_mb=[to_mb(rss) for rss in part["rss_bytes"].to_list()],
            ))
    return Series(job_seconds=job_seconds, latency_ms=latency_ms, phases=_phases(jobs), stages=stages,
                  timelines=timelines)
