"""The main tables of a run for a paper, as raw values: one definition that the CSV and LaTeX outputs share.

The same tables as the reports' (concurrency summary, API latency, video integrity, resource usage,
per-job memory, contract conformance, fault recovery, and for a campaign of several rounds the figures per
round and the trends across them), and the run's environment, taken from
`RunMetrics` at full precision. A column's name carries its unit (`job_median_s`,
`cpu_peak_pct_of_one_core`); a value with a 95 % confidence interval names the row key of its
`Interval` (`ci`), which CSV writes as `<name>_ci95_low` / `<name>_ci95_high` and LaTeX prints beside
the value. A table with no rows is not written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.metrics import RunMetrics
from analysis.resources import MB
from analysis.stats import Distribution, Interval
from artifacts.markdown import COCHRAN_ARMITAGE, TREND_METHOD, rule_result, trend_rows


@dataclass(frozen=True)
class Column:
    name: str  # CSV header, with its unit: "job_median_s"
    header: str  # LaTeX header, plain text: "median s"
    kind: str = "text"  # artifacts.markdown.fmt's kind for LaTeX: "s", "ms", "mb", "rate", "ratio", "int", "hash"
    ci: str | None = None  # the row key of this value's Interval, if it may have one
    latex: bool = True  # shown in the LaTeX table (CSV has every column)


@dataclass(frozen=True)
class PaperTable:
    key: str  # file stem: "concurrency-summary"
    title: str
    note: str  # what the numbers are, with the statistics rule
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)


def _distribution(prefix: str, unit: str, figure: Distribution) -> dict[str, Any]:
    """The cells of a distribution: n, min, median, p95, p99, max, and the interval under the statistic it is of."""
    cells: dict[str, Any] = {f"{prefix}_n": figure.n}
    for statistic in ("min", "median", "mean", "p95", "p99", "max"):
        cells[f"{prefix}_{statistic}_{unit}"] = getattr(figure, statistic)
    for statistic in ("median", "p95"):
        cells[f"{prefix}_{statistic}_ci"] = figure.ci if figure.ci_of == statistic else None
    return cells


def _distribution_columns(prefix: str, unit: str, kind: str, what: str) -> list[Column]:
    return [
        Column(f"{prefix}_n", f"{what} n", "int"),
        Column(f"{prefix}_min_{unit}", f"min {unit}", kind),
        Column(f"{prefix}_median_{unit}", f"median {unit}", kind, ci=f"{prefix}_median_ci"),
        Column(f"{prefix}_mean_{unit}", f"mean {unit}", kind, latex=False),
        Column(f"{prefix}_p95_{unit}", f"p95 {unit}", kind, ci=f"{prefix}_p95_ci"),
        Column(f"{prefix}_p99_{unit}", f"p99 {unit}", kind, latex=False),
        Column(f"{prefix}_max_{unit}", f"max {unit}", kind),
    ]


def _concurrency(metrics: RunMetrics) -> PaperTable:
    rows = [{
        "level": group.level, "jobs": group.jobs, "verified_successes": group.success.k,
        "decided_jobs": group.success.n, "interrupted_jobs": group.interrupted,
        "success_fraction": group.success.value, "success_ci": group.success.ci,
        "outcomes": ", ".join(f"{count} {outcome}" for outcome, count in group.outcomes.items()),
        **_distribution("job", "s", group.seconds),
        "wall_s": group.wall_seconds, "jobs_per_minute": group.jobs_per_minute,
        "video_s_per_wall_s": group.video_seconds_per_wall_second,
    } for group in metrics.levels]
    columns = [
        Column("level", "level", "int"), Column("jobs", "jobs", "int"),
        Column("verified_successes", "verified", "int"),
        Column("decided_jobs", "decided jobs", "int", latex=False),
        Column("interrupted_jobs", "interrupted", "int", latex=False),
        Column("success_fraction", "success %", "rate", ci="success_ci"),
        Column("outcomes", "outcomes", latex=False),
        *_distribution_columns("job", "s", "s", "job s"),
        Column("wall_s", "wall s", "s", latex=False), Column("jobs_per_minute", "jobs/min", "ratio"),
        Column("video_s_per_wall_s", "video s / wall s", "ratio"),
    ]
    return PaperTable("concurrency-summary", "Concurrent runs per concurrency level",
                      "A success is a video downloaded and verified; job seconds are those of verified successes "
                      "only; success % of the jobs that reached an outcome (Wilson interval). "
                      + metrics.statistics_rule, columns, rows)


def _latency(metrics: RunMetrics) -> PaperTable:
    rows = [{"endpoint": endpoint.endpoint, "probes": endpoint.probes,
             **_distribution("answered", "ms", endpoint.answered),
             "errors": endpoint.error_count, "errors_by_kind": endpoint.error_kinds or None}
            for endpoint in metrics.latency]
    columns = [Column("endpoint", "endpoint"), Column("probes", "probes", "int"),
               *_distribution_columns("answered", "ms", "ms", "answered"),
               Column("errors", "errors", "int"), Column("errors_by_kind", "errors by kind", latex=False)]
    return PaperTable("api-latency-summary", "API latency per endpoint",
                      "Time of each answer in ms, answered probes only; probes without the expected answer are "
                      "counted under errors. " + metrics.statistics_rule, columns, rows)


def _videos(metrics: RunMetrics) -> PaperTable:
    rows = [video.model_dump() for video in metrics.videos]
    columns = [
        Column("job_id", "job", "hash"), Column("stage", "stage"), Column("ok", "ok"),
        Column("frames_decoded", "frames", "int"), Column("decode_errors", "decode errors", "int"),
        Column("video_seconds", "video s", "s"), Column("audio_seconds", "audio s", "s"),
        Column("reported_seconds", "reported s", "s"), Column("resolution", "resolution"),
        Column("size_bytes", "bytes", "int"), Column("sha256", "sha256", "hash"),
        Column("hash_stable", "hash stable", latex=False), Column("problems", "problems"),
    ]
    return PaperTable("video-integrity", "Integrity of every downloaded video",
                      "Each video decoded in full (PyAV): frames, decode errors, decoded video and audio seconds "
                      "next to the server's reported seconds, size and SHA-256.", columns, rows)


def _usage(metrics: RunMetrics) -> PaperTable:
    rows = [{"service": usage.name, "samples": usage.samples, "cpu_mean_pct_of_one_core": usage.cpu_mean,
             "cpu_peak_pct_of_one_core": usage.cpu_peak, "rss_mean_mb": usage.rss_mean_mb,
             "rss_peak_mb": usage.rss_peak_mb} for usage in metrics.run_usage]
    columns = [
        Column("service", "service"), Column("samples", "samples", "int"),
        Column("cpu_mean_pct_of_one_core", "CPU mean %", "pct"),
        Column("cpu_peak_pct_of_one_core", "CPU peak %", "pct"),
        Column("rss_mean_mb", "RSS mean MB", "mb"), Column("rss_peak_mb", "RSS peak MB", "mb"),
    ]
    cores = metrics.machine.cpu_count
    return PaperTable("resource-usage", "Resource usage per service under load (single and concurrent stages)",
                      "CPU in % of one core (100 = one core busy"
                      + (f"; {cores} cores, so at most {cores * 100} %" if cores else "") + "); RSS in MB of 2^20 "
                      "bytes; deployment = the services summed at each sampling instant.", columns, rows)


def _memory(metrics: RunMetrics) -> PaperTable:
    rows = [{"stage": row.stage, "level": row.level, "instants": row.instants,
             "idle_rss_mb": row.baseline_rss_mb, "peak_rss_mb": row.deployment_peak_rss_mb,
             **_distribution("per_job", "mb", row.per_job_mb), "jobs_per_gib": row.jobs_per_gib}
            for row in metrics.per_job_memory]
    columns = [Column("stage", "stage"), Column("level", "level", "int"), Column("instants", "instants", "int"),
               Column("idle_rss_mb", "idle RSS MB", "mb"), Column("peak_rss_mb", "peak RSS MB", "mb"),
               *_distribution_columns("per_job", "mb", "mb", "per-job MB"),
               Column("jobs_per_gib", "jobs per GiB", "ratio")]
    return PaperTable("per-job-memory", "Memory per job",
                      "Per stage and level: the deployment's idle and peak RSS, and each job's share of the RSS "
                      "above idle at each instant with jobs in flight, (RSS - idle) / jobs in flight, in MB. "
                      + metrics.statistics_rule, columns, rows)


def _conformance(metrics: RunMetrics) -> PaperTable:
    # a run that checked no rule has no table (its rules would all read "not checked"), as in the reports
    checked = any(rule.checked for rule in metrics.conformance)
    rows = [{**rule.model_dump(), "result": rule_result(rule)} for rule in metrics.conformance] if checked else []
    columns = [Column("rule", "rule"), Column("source", "source"), Column("observations", "observations", "int"),
               Column("violations", "violations", "int"), Column("result", "result"),
               Column("example", "example", latex=False)]
    return PaperTable("contract-conformance", "Conformance to the API contract",
                      "Each rule of the contract as the run saw it: observed on the campaign's own traffic or probed "
                      "by a request made to check it; a rule with 0 observations was not checked.", columns, rows)


def _faults(metrics: RunMetrics) -> PaperTable:
    rows = [fault.model_dump() for fault in metrics.faults]
    columns = [
        Column("service", "service"), Column("fault", "fault"), Column("recovered", "recovered"),
        Column("recovery_s", "healthy again s", "s"), Column("first_success_s", "first success s", "s"),
        Column("jobs_failed_during", "jobs failed", "int"), Column("jobs_stuck", "jobs stuck", "int"),
        Column("hung", "hung"), Column("named_dependency", "error named it"),
        Column("health_during", "health during", latex=False),
        Column("job_error_during", "job error during", latex=False), Column("detail", "detail", latex=False),
    ]
    return PaperTable("fault-recovery", "Recovery from injected faults",
                      "Per experiment: seconds from restoring the service until health is healthy again and until a "
                      "new job delivers a verified video; jobs under the fault that failed, or were not terminal "
                      "once the deployment recovered.", columns, rows)


def _key(name: str) -> str:
    """A name (an endpoint's, a service's) as part of a column name: "jobs list" → "jobs_list"."""
    return re.sub(r"\W+", "_", name).strip("_")


def _median(figure: Distribution) -> tuple[float | None, Interval | None]:
    return figure.median, figure.ci if figure.ci_of == "median" else None


def _rounds(metrics: RunMetrics) -> PaperTable:
    """One row per round: its success, each level's median job seconds, each endpoint's median ms and each
    service's mean RSS and CPU under load, each median with its n and (from n >= 5) its interval."""
    per_round = metrics.rounds.per_round
    levels = sorted({g.level for figures in per_round for g in figures.levels if g.level is not None})
    endpoints = list(dict.fromkeys(e.endpoint for figures in per_round for e in figures.latency))
    services = list(dict.fromkeys(u.name for figures in per_round for u in figures.usage))
    rows = []
    for figures in per_round:
        row: dict[str, Any] = {
            "round": figures.round, "seconds": figures.seconds, "jobs": figures.jobs,
            "verified_successes": figures.success.k, "decided_jobs": figures.success.n,
            "interrupted_jobs": figures.interrupted_jobs, "success_fraction": figures.success.value,
            "success_ci": figures.success.ci, "downtime_before_s": figures.downtime_s,
        }
        for group in figures.levels:
            row[f"job_level{group.level}_n"] = group.seconds.n
            row[f"job_level{group.level}_median_s"], row[f"job_level{group.level}_ci"] = _median(group.seconds)
        for endpoint in figures.latency:
            name = f"latency_{_key(endpoint.endpoint)}"
            row[f"{name}_n"] = endpoint.answered.n
            row[f"{name}_median_ms"], row[f"{name}_ci"] = _median(endpoint.answered)
        for usage in figures.usage:
            name = _key(usage.name)
            row[f"{name}_samples"] = usage.samples
            row[f"{name}_rss_mean_mb"] = usage.rss_mean_mb
            row[f"{name}_cpu_mean_pct_of_one_core"] = usage.cpu_mean
        rows.append(row)
    columns = [
        Column("round", "round", "int"), Column("seconds", "s", "s", latex=False), Column("jobs", "jobs", "int"),
        Column("verified_successes", "verified", "int"), Column("decided_jobs", "decided jobs", "int", latex=False),
        Column("interrupted_jobs", "interrupted", "int", latex=False),
        Column("success_fraction", "success %", "rate", ci="success_ci"),
        *(column for level in levels for column in (
            Column(f"job_level{level}_n", f"level {level} n", "int", latex=False),
            Column(f"job_level{level}_median_s", f"level {level} median s", "s", ci=f"job_level{level}_ci"))),
        *(column for endpoint in endpoints for name in [f"latency_{_key(endpoint)}"] for column in (
            Column(f"{name}_n", f"{endpoint} n", "int", latex=False),
            Column(f"{name}_median_ms", f"{endpoint} median ms", "ms", ci=f"{name}_ci"))),
        *(column for name in map(_key, services) for column in (
            Column(f"{name}_samples", f"{name} samples", "int", latex=False),
            Column(f"{name}_rss_mean_mb", f"{name} RSS MB", "mb", latex=name == "deployment"),
            Column(f"{name}_cpu_mean_pct_of_one_core", f"{name} CPU %", "pct", latex=False))),
        Column("downtime_before_s", "downtime before s", "s", latex=False),
    ]
    return PaperTable("rounds", "Figures per round",
                      "Each round of the campaign by the same rules as the pooled figures: success % of its jobs that "
                      "reached an outcome (Wilson interval); job seconds of its verified successes and ms of its "
                      "answered probes as medians with n (interval from n >= 5, bootstrap); RSS MB and CPU % of one "
                      "core as means of its single and concurrent stages' samples; downtime: seconds services were "
                      "unreachable before it.", columns, rows)


def _round_trends(metrics: RunMetrics) -> PaperTable:
    rows = [{**row, "slope_ci": Interval(low=row["ci_low"], high=row["ci_high"]) if row["ci_low"] is not None
             else None} for row in trend_rows(metrics)]
    columns = [Column("what", "figure"), Column("test", "test"), Column("n", "rounds", "int"),
               Column("slope", "slope", "value", ci="slope_ci"), Column("unit", "slope unit"),
               Column("p_value", "p", "value"), Column("significant", "significant"),
               Column("sentence", "in words", latex=False)]
    return PaperTable("round-trends", "Trends across the rounds",
                      f"Per figure: {TREND_METHOD}. The {COCHRAN_ARMITAGE} slope is the rounds' shares' weighted "
                      "least-squares slope, in percentage points per round, with no interval.", columns, rows)


def environment_rows(metrics: RunMetrics) -> list[dict[str, Any]]:
    """What the run was taken with, one item a row; none for a run that did not record its environment."""
    env = metrics.environment
    if not env.recorded:
        return []
    items = {
        "CPU model": env.cpu_model, "CPU cores (logical)": env.cpu_cores,
        "CPU cores (physical)": env.cpu_physical_cores,
        "memory bytes": round(env.memory_mb * MB) if env.memory_mb is not None else None, "OS": env.os,
        "kernel": env.kernel, "architecture": env.architecture, "Python": env.python,
        **{f"{name} version": version for name, version in env.packages.items()},
        "PyAV's FFmpeg": env.pyav_ffmpeg, **{name: version for name, version in env.libav.items()},
        "eSpeak NG (bundled TTS)": env.espeak_ng, "ffmpeg (bundled stack)": env.stack_ffmpeg,
        "Redis": env.redis, "LLM model": env.llm_model, "LLM digest": env.llm_digest,
        "project version": env.project_version, "git commit": env.git_commit,
        "uncommitted changes": env.git_dirty, "profile sha256": env.profile_sha256,
        "started": env.started_at, "finished": env.finished_at,
    }
    return [{"item": item, "value": value} for item, value in items.items()]


def _environment(metrics: RunMetrics) -> PaperTable:
    return PaperTable("environment", "Environment of the run",
                      "As recorded in the run's manifest at its start; a missing value was not found or does not "
                      "apply (the bundled stack's programs for a remote target).",
                      [Column("item", "item"), Column("value", "value")], environment_rows(metrics))


def paper_tables(metrics: RunMetrics) -> list[PaperTable]:
    """The reports' main tables in report order, then the environment; empty ones included (the writers skip
    them)."""
    return [_concurrency(metrics), _latency(metrics), _videos(metrics), _usage(metrics), _memory(metrics),
            _conformance(metrics), _faults(metrics), _rounds(metrics), _round_trends(metrics), _environment(metrics)]


def interval_of(row: dict[str, Any], column: Column) -> Interval | None:
    return row.get(column.ci) if column.ci else None


def write_tables(metrics: RunMetrics, reports_dir: Path, folder: str, suffix: str,
                 render: Callable[[PaperTable], str]) -> list[str]:
    """Write every main table with rows to `reports_dir/<folder>/<table>.<suffix>` as `render` formats it; returns
    their paths relative to reports_dir. A table with no rows has no file (one left by an earlier rendering is
    removed)."""
    out = reports_dir / folder
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in paper_tables(metrics):
        path = out / f"{table.key}.{suffix}"
        if not table.rows:
            path.unlink(missing_ok=True)
            continue
        path.write_text(render(table), encoding="utf-8", newline="")  # CSV's own \r\n line ends kept as written
        written.append(f"{folder}/{path.name}")
    return written
