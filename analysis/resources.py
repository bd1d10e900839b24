"""What the deployment uses, from a run's `samples` table: idle, under load, per job.

One CPU scale everywhere: percent of ONE core (100 = one core busy for the whole interval; a machine with
N cores tops out at N × 100). Memory is resident set size in MB of 2**20 bytes.

The deployment at an instant is the sum over its services sampled at that instant (same `t`); its peak
is the peak of that sum, never a sum of each service's peak. Per-job memory at an instant is the
deployment's RSS above its idle baseline divided by the jobs in flight at that instant.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
from pydantic import BaseModel

from analysis.stats import Distribution, distribution

MB = 1 << 20
GIB_MB = 1024
TOTAL = "total"  # a sum row that runs of older versions stored; figures sum the services per instant
MACHINE = "machine"  # the whole machine, not a service
DEPLOYMENT = "deployment"  # the services together, summed at each instant
BASELINE = "baseline"
RUN_STAGES = ("single", "concurrent")


class Usage(BaseModel):
    """CPU (% of one core) and RSS (MB) of one service, the deployment or the machine over some samples."""

    name: str
    samples: int
    cpu_mean: float | None = None
    cpu_peak: float | None = None
    rss_mean_mb: float | None = None
    rss_peak_mb: float | None = None


class PerJobMemory(BaseModel):
    """Per stage (and concurrency level): the deployment's peak RSS and each job's share above idle."""

    stage: str
    level: int | None
    instants: int  # samples with at least one job in flight
    baseline_rss_mb: float | None
    deployment_peak_rss_mb: float | None
    per_job_mb: Distribution  # (RSS − baseline) / jobs in flight, one value per instant
    jobs_per_gib: float | None  # 1024 / the largest per-job share; None when memory did not grow above idle


def to_mb(rss_bytes: float | None) -> float | None:
    return None if rss_bytes is None else rss_bytes / MB


def services_only(samples: pl.DataFrame) -> pl.DataFrame:
    return samples.filter(~pl.col("service").is_in([TOTAL, MACHINE]))


def deployment_instants(samples: pl.DataFrame) -> pl.DataFrame:
    """One row per (stage, t): the services summed at that instant. CPU is null at an instant where a
    service had no CPU reading yet (its first sample): a partial sum would understate it."""
    return (
        services_only(samples)
        .group_by("stage", "t", maintain_order=True)
        .agg(
            cpu_percent=pl.when(pl.col("cpu_percent").null_count() == 0).then(pl.col("cpu_percent").sum()),
            rss_bytes=pl.col("rss_bytes").sum(),
        )
        .sort("t")
    )


def _usage(name: str, part: pl.DataFrame) -> Usage:
    cpu, rss = part["cpu_percent"].drop_nulls(), part["rss_bytes"].drop_nulls()
    return Usage(
        name=name, samples=part.height,
        cpu_mean=cpu.mean() if cpu.len() else None, cpu_peak=cpu.max() if cpu.len() else None,
        rss_mean_mb=to_mb(rss.mean()) if rss.len() else None, rss_peak_mb=to_mb(rss.max()) if rss.len() else None,
    )


def usage(samples: pl.DataFrame, stages: Iterable[str]) -> list[Usage]:
    """Per service in order of appearance, then the deployment (sum at each instant) over the stages."""
    within = samples.filter(pl.col("stage").is_in(list(stages)))
    services = services_only(within)
    rows = [_usage(service, part) for (service,), part in services.group_by("service", maintain_order=True)]
    if services.height:
        rows.append(_usage(DEPLOYMENT, deployment_instants(within)))
    return rows


def machine_by_stage(samples: pl.DataFrame) -> list[Usage]:
    """The whole machine per stage (other users included): CPU % of one core and memory in use."""
    machine = samples.filter(pl.col("service") == MACHINE)
    return [_usage(stage, part) for (stage,), part in machine.group_by("stage", maintain_order=True)]


def baseline_rss_bytes(samples: pl.DataFrame) -> float | None:
    """The deployment's idle RSS: the mean over the baseline stage of its RSS summed at each instant."""
    idle = deployment_instants(samples.filter(pl.col("stage") == BASELINE))["rss_bytes"]
    return idle.mean() if idle.len() else None


def in_flight(instants: pl.DataFrame, jobs: pl.DataFrame, run_end: float | None) -> pl.DataFrame:
    """`instants` with `jobs_in_flight` (submitted at or before t, not yet finished) and their `level`.
    A job with no finish (interrupted) counts as in flight until `run_end` (or the last instant)."""
    end = run_end if run_end is not None else float("inf")
    spans = jobs.filter(pl.col("submitted_at").is_not_null()).select(
        "level", start=pl.col("submitted_at"), end=pl.col("finished_at").fill_null(end),
    )
    counted = (
        instants.with_row_index("instant")
        # an inequality join: a cross join of every instant with every job grows with rounds² (a soak's thousands)
        .join_where(spans, pl.col("start") <= pl.col("t"), pl.col("t") <= pl.col("end"))
        .group_by("instant")
        .agg(jobs_in_flight=pl.len(), level=pl.col("level").max())
    )
    return (
        instants.with_row_index("instant").join(counted, on="instant", how="left")
        .with_columns(pl.col("jobs_in_flight").fill_null(0)).drop("instant")
    )


def per_job_memory(samples: pl.DataFrame, jobs: pl.DataFrame, run_end: float | None = None) -> list[PerJobMemory]:
    """Per stage of RUN_STAGES and concurrency level: the deployment's peak RSS while jobs ran, and each
    job's share of the RSS above idle, (RSS − baseline) / jobs in flight, at every instant with a job."""
    baseline = baseline_rss_bytes(samples)
    rows = []
    for stage in RUN_STAGES:
        instants = deployment_instants(samples.filter(pl.col("stage") == stage))
        busy = in_flight(instants, jobs.filter(pl.col("stage") == stage), run_end).filter(pl.col("jobs_in_flight") > 0)
        if not busy.height:
            continue
        for (level,), part in busy.sort("t").group_by("level", maintain_order=True):
            shares = (
                [] if baseline is None
                else ((part["rss_bytes"] - baseline) / part["jobs_in_flight"] / MB).to_list()
            )
            share = distribution(shares, "MB")
            rows.append(PerJobMemory(
                stage=stage, level=level, instants=part.height, baseline_rss_mb=to_mb(baseline),
                deployment_peak_rss_mb=to_mb(part["rss_bytes"].max()), per_job_mb=share,
                jobs_per_gib=GIB_MB / share.max if share.max is not None and share.max > 0 else None,
            ))
    return rows
