"""The run's main tables, defined once: the Markdown reports, the Prefect table artifacts, LaTeX and CSV all read them.

The main tables are the concurrency summary, API latency, video integrity, resource usage, per-job memory,
contract conformance, fault recovery, and for a campaign of several rounds the figures per round and the
trends across them; then the run's environment (LaTeX and CSV only). Rows hold raw values from `RunMetrics`
at full precision, keyed by each column's `name`, which is also its CSV header and carries its unit
(`job_median_s`, `cpu_peak_pct_of_one_core`); `header` is what Markdown and LaTeX print. A value with a 95 %
confidence interval names the row key of its `Interval` (`ci`): CSV writes it as `<name>_ci95_low` /
`<name>_ci95_high`, LaTeX prints it beside the value, and the Markdown reports show it in a column of its
own. A column says which outputs show it (`outputs`); a table with no rows is not written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.conformance import ConformanceRule
from analysis.metrics import JobGroup, RunMetrics, Usage
from analysis.resources import MB
from analysis.stats import Distribution, Interval

MARKDOWN, LATEX, CSV = "markdown", "latex", "csv"
EVERY = frozenset({MARKDOWN, LATEX, CSV})
NOT_LATEX = frozenset({MARKDOWN, CSV})  # a wide or free-form column a paper's table has no room for
NOT_MARKDOWN = frozenset({LATEX, CSV})
ONLY_CSV = frozenset({CSV})
# how the Markdown reports show an interval: in a column of its own, worded (artifacts.markdown.plain)
ONLY_MARKDOWN = frozenset({MARKDOWN})


@dataclass(frozen=True)
class Column:
    name: str  # the row key and CSV header, with its unit: "job_median_s"
    header: str  # what Markdown and LaTeX print: "median s"
    kind: str = "text"  # artifacts.markdown.fmt's kind: "s", "ms", "mb", "rate", "ratio", "int", "hash", "id", …
    ci: str | None = None  # the row key of this value's Interval, if it may have one
    reports: str | None = None  # the server status field it shows (RunMetrics.unreported names the missing ones)
    outputs: frozenset[str] = EVERY  # which outputs show it


@dataclass(frozen=True)
class PaperTable:
    key: str  # file stem and Prefect table artifact key: "concurrency-summary"
    title: str
    note: str  # what the numbers are, with the statistics rule
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def columns_of(self, output: str) -> list[Column]:
        return [column for column in self.columns if output in column.outputs]


# ---- words the tables and the reports share ---------------------------------------------------------

OUTCOME_WORDS = {"stuck_pending": "never started (stuck pending)"}  # a job outcome where its name is not words
LEAST_SQUARES = "least squares (t)"
COCHRAN_ARMITAGE = "Cochran–Armitage"
TREND_METHOD = ("a figure's trend is the least-squares slope per round over the rounds' values, with its 95 % CI from "
                "the t distribution and its p-value; the success rate's is the Cochran–Armitage trend test (normal "
                "approximation, two-sided); "
                "significant at p < 0.05; a trend needs at least 3 rounds. A round's job time and latency are its "
                "medians (verified successes, answered probes), its RSS the mean of its samples during its single "
                "and concurrent stages")


def outcomes_text(group: JobGroup) -> str:
    """"2 succeeded, 1 timed_out, 1 never started (stuck pending)"."""
    return ", ".join(f"{count} {OUTCOME_WORDS.get(outcome, outcome)}" for outcome, count in group.outcomes.items())


def rule_result(rule: ConformanceRule) -> str:
    """A rule never observed was not checked: it neither held nor failed."""
    return "not checked" if not rule.checked else "holds" if rule.holds else "VIOLATED"


# ---- the tables -------------------------------------------------------------------------------------

def _distribution(prefix: str, unit: str, figure: Distribution) -> dict[str, Any]:
    """The cells of a distribution: n, min, median, mean, p95, p99, max, the interval under the statistic it is
    of, and the figure itself for the Markdown interval column."""
    cells: dict[str, Any] = {f"{prefix}_n": figure.n}
    for statistic in ("min", "median", "mean", "p95", "p99", "max"):
        cells[f"{prefix}_{statistic}_{unit}"] = getattr(figure, statistic)
    for statistic in ("median", "p95"):
        cells[f"{prefix}_{statistic}_ci"] = figure.ci if figure.ci_of == statistic else None
    cells[f"{prefix}_ci"] = figure
    return cells


def _distribution_columns(prefix: str, unit: str, kind: str, header: Callable[[str], str],
                          shown: dict[str, frozenset[str]]) -> list[Column]:
    """n, min, median, mean, p95, p99, max and the Markdown interval column, `shown` in the outputs given (CSV
    has every statistic, Markdown its interval column only)."""
    def outputs(statistic: str) -> frozenset[str]:
        return shown.get(statistic, frozenset()) | {CSV}

    return [
        Column(f"{prefix}_n", header("n"), "int", outputs=outputs("n")),
        *(Column(f"{prefix}_{statistic}_{unit}", header(statistic), kind,
                 ci=f"{prefix}_{statistic}_ci" if statistic in ("median", "p95") else None,
                 outputs=outputs(statistic))
          for statistic in ("min", "median", "mean", "p95", "p99", "max")),
        Column(f"{prefix}_ci", header("95 % CI"), "ci", outputs=ONLY_MARKDOWN),
    ]


# the statistics of a summary table (job seconds, latency): Markdown shows them all, LaTeX neither min nor p99 (a
# standard article's text width holds no more columns beside the intervals)
SUMMARY_STATISTICS = {"n": EVERY, "min": NOT_LATEX, "median": EVERY, "p95": EVERY, "p99": NOT_LATEX, "max": EVERY}


def _concurrency(metrics: RunMetrics) -> PaperTable:
    rows = [{
        "level": group.level, "jobs": group.jobs, "verified_successes": group.success.k,
        "decided_jobs": group.success.n, "interrupted_jobs": group.interrupted,
        "success_fraction": group.success.value, "success_ci": group.success.ci, "success_ci_shown": group.success,
        "outcomes": outcomes_text(group), **_distribution("job", "s", group.seconds),
        "wall_s": group.wall_seconds, "jobs_per_minute": group.jobs_per_minute,
        "video_s_per_wall_s": group.video_seconds_per_wall_second,
    } for group in metrics.levels]
    columns = [
        Column("level", "level", "int"), Column("jobs", "jobs", "int"),
        Column("verified_successes", "verified successes", "int"),
        Column("decided_jobs", "decided jobs", "int", outputs=ONLY_CSV),
        Column("interrupted_jobs", "interrupted", "int", outputs=ONLY_CSV),
        Column("success_fraction", "success %", "rate", ci="success_ci"),
        Column("success_ci_shown", "success 95 % CI %", "rate_ci", outputs=ONLY_MARKDOWN),
        Column("outcomes", "outcomes", outputs=NOT_LATEX),
        *_distribution_columns("job", "s", "s", lambda statistic: "n (job s)" if statistic == "n" else
                               statistic if statistic == "95 % CI" else f"{statistic} s", SUMMARY_STATISTICS),
        Column("wall_s", "wall s", "s", outputs=NOT_LATEX), Column("jobs_per_minute", "jobs/min", "ratio"),
        Column("video_s_per_wall_s", "video s per wall s", "ratio"),
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
               *_distribution_columns("answered", "ms", "ms", lambda statistic: "n (answered)" if statistic == "n"
                                      else statistic if statistic == "95 % CI" else f"{statistic} ms",
                                      SUMMARY_STATISTICS),
               Column("errors", "errors", "int"), Column("errors_by_kind", "errors by kind", outputs=NOT_LATEX)]
    return PaperTable("api-latency-summary", "API latency per endpoint",
                      "Time of each answer in ms, answered probes only; probes without the expected answer are "
                      "counted under errors. " + metrics.statistics_rule, columns, rows)


VIDEO_COLUMNS = [
    Column("job_id", "job", "id"), Column("stage", "stage"), Column("ok", "ok"),
    Column("frames_decoded", "frames", "int"), Column("decode_errors", "decode errors", "int"),
    Column("video_seconds", "video s", "s"), Column("audio_seconds", "audio s", "s"),
    Column("reported_seconds", "reported s", "s", reports="video.duration_seconds"),
    Column("resolution", "resolution", outputs=NOT_LATEX),  # checked into ok; a column too many for a paper's page
    Column("size_bytes", "size bytes", "int"),
    Column("sha256", "sha256", "hash", outputs=NOT_LATEX),  # a paper has no use for a hash's prefix
    Column("hash_stable", "hash stable", outputs=NOT_LATEX), Column("problems", "problems"),
]


def _videos(metrics: RunMetrics) -> PaperTable:
    return PaperTable("video-integrity", "Integrity of every downloaded video",
                      "Each video decoded in full (PyAV): frames, decode errors, decoded video and audio seconds "
                      "next to the server's reported seconds, size and SHA-256.", VIDEO_COLUMNS,
                      [video.model_dump() for video in metrics.videos])


# resource usage per service; the reports use the same columns for the baseline, each round and the machine
USAGE_COLUMNS = [
    Column("service", "service"), Column("samples", "samples (n)", "int"),
    Column("cpu_mean_pct_of_one_core", "CPU mean % of one core", "pct"),
    Column("cpu_peak_pct_of_one_core", "CPU peak % of one core", "pct"),
    Column("rss_mean_mb", "RSS mean MB", "mb"), Column("rss_peak_mb", "RSS peak MB", "mb"),
]


def usage_rows(usages: list[Usage]) -> list[dict[str, Any]]:
    return [{"service": usage.name, "samples": usage.samples, "cpu_mean_pct_of_one_core": usage.cpu_mean,
             "cpu_peak_pct_of_one_core": usage.cpu_peak, "rss_mean_mb": usage.rss_mean_mb,
             "rss_peak_mb": usage.rss_peak_mb} for usage in usages]


def _usage(metrics: RunMetrics) -> PaperTable:
    cores = metrics.machine.cpu_count
    return PaperTable("resource-usage", "Resource usage per service under load (single and concurrent stages)",
                      "CPU in % of one core (100 = one core busy"
                      + (f"; {cores} cores, so at most {cores * 100} %" if cores else "") + "); RSS in MB of 2^20 "
                      "bytes; deployment = the services summed at each sampling instant.", USAGE_COLUMNS,
                      usage_rows(metrics.run_usage))


def _memory(metrics: RunMetrics) -> PaperTable:
    rows = [{"stage": row.stage, "level": row.level, "instants": row.instants,
             "idle_rss_mb": row.baseline_rss_mb, "peak_rss_mb": row.deployment_peak_rss_mb,
             **_distribution("per_job", "mb", row.per_job_mb), "jobs_per_gib": row.jobs_per_gib}
            for row in metrics.per_job_memory]
    columns = [Column("stage", "stage"), Column("level", "level", "int"),
               Column("instants", "instants (n)", "int"),
               Column("idle_rss_mb", "deployment idle RSS MB", "mb"),
               Column("peak_rss_mb", "deployment peak RSS MB", "mb"),
               *_distribution_columns("per_job", "mb", "mb", lambda statistic: f"per-job {statistic}"
                                      if statistic == "95 % CI" else f"per-job MB {statistic}",
                                      {"median": EVERY, "max": EVERY}),
               Column("jobs_per_gib", "jobs per GiB", "ratio")]
    return PaperTable("per-job-memory", "Memory per job",
                      "Per stage and level: the deployment's idle and peak RSS, and each job's share of the RSS "
                      "above idle at each instant with jobs in flight, (RSS - idle) / jobs in flight, in MB. "
                      + metrics.statistics_rule, columns, rows)


CONFORMANCE_COLUMNS = [Column("rule", "rule"), Column("source", "source"),
                       Column("observations", "observations", "int"), Column("violations", "violations", "int"),
                       Column("result", "result"), Column("example", "example", outputs=NOT_LATEX)]


def conformance_rows(metrics: RunMetrics) -> list[dict[str, Any]]:
    return [{**rule.model_dump(), "result": rule_result(rule)} for rule in metrics.conformance]


def _conformance(metrics: RunMetrics) -> PaperTable:
    # a run that checked no rule has no table to write or publish (its rules would all read "not checked"); the
    # reports still list them
    checked = any(rule.checked for rule in metrics.conformance)
    return PaperTable("contract-conformance", "Conformance to the API contract",
                      "Each rule of the contract as the run saw it: observed on the campaign's own traffic or probed "
                      "by a request made to check it; a rule with 0 observations was not checked.",
                      CONFORMANCE_COLUMNS, conformance_rows(metrics) if checked else [])


FAULT_COLUMNS = [
    Column("service", "service"), Column("fault", "fault"), Column("recovered", "recovered"),
    Column("recovery_s", "healthy again s", "s"), Column("first_success_s", "first success s", "s"),
    Column("jobs_failed_during", "jobs failed during", "int"),
    Column("submissions_refused", "submissions refused", "int"), Column("jobs_stuck", "jobs stuck", "int"),
    Column("hung", "hung"), Column("health_during", "health during", outputs=NOT_LATEX),
    Column("named_dependency", "job error named the service"),
    # free-form: the Markdown reports give them under the table, one experiment each (markdown.fault_notes)
    Column("job_error_during", "job error during", outputs=ONLY_CSV),
    Column("detail", "detail", outputs=ONLY_CSV),
]


def _faults(metrics: RunMetrics) -> PaperTable:
    return PaperTable("fault-recovery", "Recovery from injected faults",
                      "Per experiment: seconds from restoring the service until health is healthy again and until a "
                      "new job delivers a verified video; jobs under the fault that failed, submissions it refused, "
                      "and jobs not terminal once the deployment recovered.", FAULT_COLUMNS,
                      [fault.model_dump() for fault in metrics.faults])


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
            "success_ci": figures.success.ci, "success_ci_shown": figures.success,
            "downtime_before_s": figures.downtime_s,
        }
        for group in figures.levels:
            name = f"job_level{group.level}"
            row[f"{name}_n"], row[name] = group.seconds.n, group.seconds
            row[f"{name}_median_s"], row[f"{name}_ci"] = _median(group.seconds)
        for endpoint in figures.latency:
            name = f"latency_{_key(endpoint.endpoint)}"
            row[f"{name}_n"], row[name] = endpoint.answered.n, endpoint.answered
            row[f"{name}_median_ms"], row[f"{name}_ci"] = _median(endpoint.answered)
        for usage in figures.usage:
            name = _key(usage.name)
            row[f"{name}_samples"] = usage.samples
            row[f"{name}_rss_mean_mb"] = usage.rss_mean_mb
            row[f"{name}_cpu_mean_pct_of_one_core"] = usage.cpu_mean
        rows.append(row)
    columns = [
        Column("round", "round", "int"), Column("seconds", "seconds", "s", outputs=NOT_LATEX),
        Column("jobs", "jobs", "int"), Column("verified_successes", "verified successes", "int"),
        Column("decided_jobs", "decided jobs", "int", outputs=ONLY_CSV),
        Column("success_fraction", "success %", "rate", ci="success_ci"),
        Column("success_ci_shown", "success 95 % CI %", "rate_ci", outputs=ONLY_MARKDOWN),
        Column("interrupted_jobs", "interrupted", "int", outputs=NOT_LATEX),
        # a median with its n: Markdown in one cell ("13.00 (n=2)"), LaTeX with its interval, CSV in columns
        *(column for level in levels for name in [f"job_level{level}"] for column in (
            Column(f"{name}_n", f"level {level} n", "int", outputs=ONLY_CSV),
            Column(f"{name}_median_s", f"level {level} median s", "s", ci=f"{name}_ci", outputs=NOT_MARKDOWN),
            Column(name, f"level {level} median s", "median_n", outputs=ONLY_MARKDOWN))),
        *(column for endpoint in endpoints for name in [f"latency_{_key(endpoint)}"] for column in (
            Column(f"{name}_n", f"{endpoint} n", "int", outputs=ONLY_CSV),
            # a column per endpoint beside those per level: more than a paper's page holds (their trends are in
            # round-trends)
            Column(f"{name}_median_ms", f"{endpoint} median ms", "ms", ci=f"{name}_ci", outputs=ONLY_CSV),
            Column(name, f"{endpoint} median ms", "median_n", outputs=ONLY_MARKDOWN))),
        *(column for service in services for name in [_key(service)] for column in (
            Column(f"{name}_samples", f"{service} samples", "int", outputs=ONLY_CSV),
            Column(f"{name}_rss_mean_mb", f"{service} RSS mean MB", "mb",
                   outputs=EVERY if service == "deployment" else ONLY_CSV),
            Column(f"{name}_cpu_mean_pct_of_one_core", f"{service} CPU mean % of one core", "pct",
                   outputs=ONLY_CSV))),
        Column("downtime_before_s", "downtime before s", "s", outputs=NOT_LATEX),
    ]
    return PaperTable("rounds", "Figures per round",
                      "Each round of the campaign by the same rules as the pooled figures: success % of its jobs that "
                      "reached an outcome (Wilson interval); job seconds of its verified successes and ms of its "
                      "answered probes as medians with n (interval from n >= 5, bootstrap); RSS MB and CPU % of one "
                      "core as means of its single and concurrent stages' samples; downtime: seconds services were "
                      "unreachable before it.", columns, rows)


def trend_rows(metrics: RunMetrics) -> list[dict]:
    """Every trend across the rounds as raw values: the success rate's slope in percentage points per round."""
    rounds = metrics.rounds
    rows = []
    if rounds.success_trend:
        trend = rounds.success_trend
        rows.append({"what": trend.what, "test": COCHRAN_ARMITAGE, "n": trend.rounds,
                     "slope": trend.slope * 100 if trend.slope is not None else None,
                     "unit": "percentage points per round", "ci_low": None, "ci_high": None, "slope_ci": None,
                     "p_value": trend.p_value, "significant": trend.significant, "sentence": trend.sentence})
    rows += [{"what": trend.what, "test": LEAST_SQUARES, "n": trend.n, "slope": trend.slope,
              "unit": f"{trend.unit} per {trend.per}", "ci_low": trend.ci.low if trend.ci else None,
              "ci_high": trend.ci.high if trend.ci else None, "slope_ci": trend.ci, "p_value": trend.p_value,
              "significant": trend.significant, "sentence": trend.sentence} for trend in rounds.trends]
    return rows


def _round_trends(metrics: RunMetrics) -> PaperTable:
    columns = [Column("what", "figure"), Column("test", "test"), Column("n", "rounds (n)", "int"),
               Column("slope", "slope", "value", ci="slope_ci"), Column("unit", "slope unit"),
               Column("ci_low", "95 % CI low", "value", outputs=ONLY_MARKDOWN),
               Column("ci_high", "95 % CI high", "value", outputs=ONLY_MARKDOWN),
               Column("p_value", "p", "value"), Column("significant", "significant"),
               Column("sentence", "in words", outputs=ONLY_CSV)]
    return PaperTable("round-trends", "Trends across the rounds",
                      f"Per figure: {TREND_METHOD}. The {COCHRAN_ARMITAGE} slope is the rounds' shares' weighted "
                      "least-squares slope, in percentage points per round, with no interval.", columns,
                      trend_rows(metrics))


# the main tables in report order, by key (the Prefect table artifacts' and the files' names)
MAIN_TABLES: dict[str, Callable[[RunMetrics], PaperTable]] = {
    "concurrency-summary": _concurrency, "api-latency-summary": _latency, "video-integrity": _videos,
    "resource-usage": _usage, "per-job-memory": _memory, "contract-conformance": _conformance,
    "fault-recovery": _faults, "rounds": _rounds, "round-trends": _round_trends,
}


def main_table(metrics: RunMetrics, key: str) -> PaperTable:
    return MAIN_TABLES[key](metrics)


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
    """The main tables in report order, then the environment; empty ones included (the writers skip them)."""
    return [*(build(metrics) for build in MAIN_TABLES.values()), _environment(metrics)]


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
