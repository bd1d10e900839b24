"""What the services use, from a run's `samples` table: idle, under load, per job, per concurrent job.

Memory is resident set size in MB of 2**20 bytes (so 1024 MB = 1 GiB); CPU is percent as sampled.
Rows are plain dicts so reports and Prefect table artifacts can use them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analysis.stats import summarize

MB = 1 << 20
TOTAL = "total"  # the sampler's sum of the four services
MACHINE = "machine"  # the whole machine, not a service
RUN_STAGES = ("single", "concurrent")


def to_mb(rss_bytes: int | None) -> float | None:
    return None if rss_bytes is None else rss_bytes / MB


def _usage(part: pl.DataFrame) -> dict:
    cpu = summarize(part["cpu_percent"].to_list())
    rss = summarize(to_mb(value) for value in part["rss_bytes"].to_list())
    return {
        "samples": part.height,
        "cpu_mean_percent": cpu.mean,
        "cpu_max_percent": cpu.max,
        "rss_mean_mb": rss.mean,
        "rss_max_mb": rss.max,
    }


def _by(samples: pl.DataFrame, column: str) -> list[dict]:
    return [{column: key, **_usage(part)} for (key,), part in samples.group_by(column, maintain_order=True)]


def _by_service(samples: pl.DataFrame) -> list[dict]:
    """One row per service in order of appearance, `total` last; the machine row is not a service."""
    rows = _by(samples.filter(pl.col("service") != MACHINE), "service")
    return sorted(rows, key=lambda row: row["service"] == TOTAL)


def baseline_by_service(samples: pl.DataFrame) -> list[dict]:
    """Idle use per service: mean/max CPU % and RSS MB over the `baseline` stage."""
    return _by_service(samples.filter(pl.col("stage") == "baseline"))


def usage_by_service(samples: pl.DataFrame, stages: Iterable[str] = RUN_STAGES) -> list[dict]:
    """Use per service (and `total`) over the given stages."""
    return _by_service(samples.filter(pl.col("stage").is_in(list(stages))))


def machine_by_stage(samples: pl.DataFrame) -> list[dict]:
    """The whole machine per stage: CPU % and memory in use (MB)."""
    return _by(samples.filter(pl.col("service") == MACHINE), "stage")


def _within(samples: pl.DataFrame, start: float | None, end: float | None) -> pl.DataFrame:
    if start is None or end is None:
        return samples.clear()
    return samples.filter(pl.col("t").is_between(start, end))


def baseline_total_mb(baseline: list[dict]) -> float | None:
    return next((row["rss_mean_mb"] for row in baseline if row["service"] == TOTAL), None)


def per_job_usage(samples: pl.DataFrame, jobs: pl.DataFrame) -> dict:
    """The `total` samples within each job's [submitted_at, finished_at], per job and over all jobs.

    Returns {"jobs": [row per job], "overall": {...}}. Jobs that ran at the same time share their
    samples: the figure is the whole stack's use while the job ran, not the job's own share.
    """
    total = samples.filter(pl.col("service") == TOTAL)
    rows = []
    for job in jobs.iter_rows(named=True):
        usage = _usage(_within(total, job["submitted_at"], job["finished_at"]))
        rows.append({
            "job_id": job["job_id"], "stage": job["stage"], "level": job["level"],
            "samples": usage["samples"], "peak_rss_mb": usage["rss_max_mb"],
            "mean_cpu_percent": usage["cpu_mean_percent"], "peak_cpu_percent": usage["cpu_max_percent"],
        })
    peak_rss = summarize(row["peak_rss_mb"] for row in rows)
    overall = {
        "jobs": len(rows),
        "jobs_with_samples": sum(1 for row in rows if row["samples"]),
        "mean_peak_rss_mb": peak_rss.mean,
        "max_peak_rss_mb": peak_rss.max,
        "mean_cpu_percent": summarize(row["mean_cpu_percent"] for row in rows).mean,
        "peak_cpu_percent": summarize(row["peak_cpu_percent"] for row in rows).max,
    }
    return {"jobs": rows, "overall": overall}


def jobs_per_gb(samples: pl.DataFrame, jobs: pl.DataFrame, baseline: list[dict]) -> list[dict]:
    """Per concurrency level, the marginal memory of one concurrent job and how many fit in 1 GiB.

    Window of a level: each of its batches from the first submission to the last terminal status.
    marginal MB per job = (peak `total` RSS in the window − mean `total` RSS at baseline) / level;
    jobs per GiB = 1024 / marginal, None when the margin is not positive or nothing was sampled.
    `baseline` is `baseline_by_service(samples)`.
    """
    base = baseline_total_mb(baseline)
    total = samples.filter(pl.col("service") == TOTAL)
    concurrent = jobs.filter((pl.col("stage") == "concurrent") & pl.col("level").is_not_null())
    rows = []
    for level in concurrent["level"].unique().sort().to_list():
        windows = (
            concurrent.filter(pl.col("level") == level)
            .group_by("batch")
            .agg(start=pl.col("submitted_at").min(), end=pl.col("finished_at").max())
        )
        window_samples = pl.concat([_within(total, w["start"], w["end"]) for w in windows.iter_rows(named=True)])
        peak = summarize(to_mb(value) for value in window_samples["rss_bytes"].to_list()).max
        margin = (peak - base) / level if peak is not None and base is not None else None
        rows.append({
            "level": level,
            "samples": window_samples.height,
            "peak_total_rss_mb": peak,
            "baseline_total_rss_mb": base,
            "marginal_mb_per_job": margin,
            "jobs_per_gib": 1024 / margin if margin is not None and margin > 0 else None,
        })
    return rows
