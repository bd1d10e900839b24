"""A campaign run's Markdown and HTML reports, computed from its stored tables, manifest and checks only.

A report is a header plus sections; each section is one function of the run, shared by the three
main reports and the per-test reports, so every figure is computed and worded in one place. Every
statistic comes from analysis.stats / analysis.resources; a figure that cannot be computed shows "—".
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

import polars as pl
from markdown_it import MarkdownIt

from analysis import resources
from analysis.schema import TABLES, empty
from analysis.stats import rate, summarize

MISSING = "—"
DECIMALS = {"s": 2, "ms": 1, "pct": 1, "mb": 1, "ratio": 2}
NUMERIC = {*DECIMALS, "rate", "int"}
HASH_PREFIX = 12
VALUE_WIDTH = 160  # GX observed/expected/details are free-form: keep table cells readable


# ---- formatting ---------------------------------------------------------------------------------

def _missing(value) -> bool:
    """None, NaN, ±inf (no figure, and not JSON either) or an empty string."""
    return value is None or (isinstance(value, float) and not math.isfinite(value)) or value == ""


def _plain(value, kind: str):
    """A value ready to show: `fmt` renders it as text, `main_tables` hands it on as is (JSON-safe)."""
    if _missing(value):
        return None
    if kind == "rate":
        return round(value * 100, DECIMALS["pct"])
    if kind in DECIMALS:
        return round(value, DECIMALS[kind])
    if kind == "hash":
        return value[:HASH_PREFIX]
    if kind == "name":
        return PurePath(value).name
    if kind == "value":
        if isinstance(value, float):
            text = f"{value:.4g}"
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
        return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"
    return value


def fmt(value, kind: str = "text") -> str:
    """The one number format: seconds "s" and "ratio" 2 decimals, "ms"/"pct"/"mb" 1, "rate" (0..1) as
    percent with 1; "hash" a prefix, "name" a file name, "value" any JSON-ish value; missing → "—"."""
    shown = _plain(value, kind)
    if shown is None:
        return MISSING
    if isinstance(shown, bool):
        return "yes" if shown else "no"
    if kind == "rate":
        kind = "pct"
    if kind in DECIMALS:
        return f"{shown:.{DECIMALS[kind]}f}"
    return str(shown)


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    kind: str = "text"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def table(columns: list[Column], rows: list[dict], none: str = "No data.") -> str:
    """A Markdown table (numbers right-aligned), or `none` in italics when there are no rows."""
    if not rows:
        return f"_{none}_"
    lines = [
        "| " + " | ".join(column.header for column in columns) + " |",
        "|" + "|".join("---:" if column.kind in NUMERIC else "---" for column in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(fmt(row.get(c.key), c.kind)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def section(title: str, *parts: str) -> str:
    return "\n\n".join([f"## {title}", *(part for part in parts if part)])


# ---- the run ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    frames: dict[str, pl.DataFrame]
    manifest: dict
    checks: list[dict]

    @classmethod
    def of(cls, frames: dict, manifest: dict | None, checks: list[dict] | None) -> Run:
        """Every table present (empty when not stored), so sections never special-case a missing one."""
        complete = {name: frames[name] if frames.get(name) is not None else empty(name) for name in TABLES}
        return cls(complete, manifest or {}, list(checks or []))

    def jobs(self, *stages: str) -> pl.DataFrame:
        jobs = self.frames["jobs"]
        return jobs.filter(pl.col("stage").is_in(list(stages))) if stages else jobs

    @property
    def thresholds(self) -> dict:
        return (self.manifest.get("profile") or {}).get("thresholds") or {}


def _succeeded(jobs: pl.DataFrame) -> pl.DataFrame:
    return jobs.filter(pl.col("succeeded").fill_null(False))


def _success_line(jobs: pl.DataFrame, what: str) -> str:
    done = _succeeded(jobs).height
    return f"{done} of {jobs.height} {what} succeeded (success rate {fmt(rate(done, jobs.height), 'rate')} %)."


# ---- rows shared by sections and Prefect table artifacts ----------------------------------------

def concurrency_rows(frames: dict[str, pl.DataFrame]) -> list[dict]:
    jobs = frames["jobs"].filter(pl.col("stage") == "concurrent")
    batches = frames["batches"].filter(pl.col("stage") == "concurrent")
    levels = sorted(set(jobs["level"].drop_nulls().to_list()) | set(batches["level"].drop_nulls().to_list()))
    rows = []
    for level in levels:
        at_level = jobs.filter(pl.col("level") == level)
        done = _succeeded(at_level)
        walls = batches.filter(pl.col("level") == level)["wall_seconds"].drop_nulls().to_list()
        wall = sum(walls) or None
        seconds = summarize(at_level["total_seconds"].to_list())
        rows.append({
            "level": level, "jobs": at_level.height, "successes": done.height,
            "success_rate": rate(done.height, at_level.height),
            "p50_s": seconds.p50, "p95_s": seconds.p95, "p99_s": seconds.p99, "wall_s": wall,
            "jobs_per_minute": done.height / (wall / 60) if wall else None,
            "video_s_per_wall_s": sum(done["video_seconds"].drop_nulls().to_list()) / wall if wall else None,
        })
    return rows


def latency_rows(frames: dict[str, pl.DataFrame]) -> list[dict]:
    rows = []
    for (endpoint,), probes in frames["latency"].group_by("endpoint", maintain_order=True):
        ms = summarize(probes["ms"].to_list())
        rows.append({
            "endpoint": endpoint, "n": probes.height, "min_ms": ms.min, "p50_ms": ms.p50, "p95_ms": ms.p95,
            "p99_ms": ms.p99, "max_ms": ms.max, "errors": probes.filter(~pl.col("ok").fill_null(False)).height,
        })
    return rows


def video_rows(frames: dict[str, pl.DataFrame]) -> list[dict]:
    return [
        {**video, "resolution": f"{video['width']}x{video['height']}" if video["width"] and video["height"] else None}
        for video in frames["videos"].iter_rows(named=True)
    ]


CONCURRENCY_COLUMNS = [
    Column("level", "level", "int"), Column("jobs", "jobs", "int"), Column("successes", "successes", "int"),
    Column("success %", "success_rate", "rate"), Column("p50 s", "p50_s", "s"), Column("p95 s", "p95_s", "s"),
    Column("p99 s", "p99_s", "s"), Column("wall s", "wall_s", "s"),
    Column("jobs/min", "jobs_per_minute", "ratio"), Column("video s per wall s", "video_s_per_wall_s", "ratio"),
]
LATENCY_COLUMNS = [
    Column("endpoint", "endpoint"), Column("n", "n", "int"), Column("min ms", "min_ms", "ms"),
    Column("p50 ms", "p50_ms", "ms"), Column("p95 ms", "p95_ms", "ms"), Column("p99 ms", "p99_ms", "ms"),
    Column("max ms", "max_ms", "ms"), Column("errors", "errors", "int"),
]
VIDEO_COLUMNS = [
    Column("job", "job_id"), Column("stage", "stage"), Column("ok", "ok"), Column("frames", "frames_decoded", "int"),
    Column("decode errors", "decode_errors", "int"), Column("video s", "video_seconds", "s"),
    Column("audio s", "audio_seconds", "s"), Column("reported s", "reported_seconds", "s"),
    Column("resolution", "resolution"), Column("size bytes", "size_bytes", "int"),
    Column("sha256", "sha256", "hash"), Column("hash stable", "hash_stable"), Column("problems", "problems"),
]
USAGE_COLUMNS = [
    Column("service", "service"), Column("samples", "samples", "int"),
    Column("CPU mean %", "cpu_mean_percent", "pct"), Column("CPU max %", "cpu_max_percent", "pct"),
    Column("RSS mean MB", "rss_mean_mb", "mb"), Column("RSS max MB", "rss_max_mb", "mb"),
]
JOB_COLUMNS = [
    Column("job", "job_id"), Column("document", "document", "name"), Column("status", "status"),
    Column("end-to-end s", "total_seconds", "s"), Column("queued s", "queued_s", "s"),
    Column("script s", "script_s", "s"), Column("audio s", "audio_s", "s"), Column("visual s", "visual_s", "s"),
    Column("compose s", "compose_s", "s"), Column("server s", "processing_seconds", "s"),
    Column("video s", "video_seconds", "s"), Column("scenes", "scenes", "int"),
]
BATCH_COLUMNS = [Column("level", "level", "int"), Column("batch", "batch", "int")]


def main_tables(frames: dict[str, pl.DataFrame]) -> dict[str, list[dict]]:
    """The main tables as rows keyed by column header, for Prefect table artifacts."""
    frames = Run.of(frames, None, None).frames
    tables = {
        "concurrency-summary": (CONCURRENCY_COLUMNS, concurrency_rows(frames)),
        "api-latency-summary": (LATENCY_COLUMNS, latency_rows(frames)),
        "video-integrity": (VIDEO_COLUMNS, video_rows(frames)),
        "resource-usage": (USAGE_COLUMNS, resources.usage_by_service(frames["samples"])),
    }
    return {
        key: [{c.header: _plain(row.get(c.key), c.kind) for c in columns} for row in rows]
        for key, (columns, rows) in tables.items()
    }


# ---- header -------------------------------------------------------------------------------------

def verdict(checks: list[dict], outcome: str | None = None) -> str:
    if not checks:
        stopped = f": {outcome}" if outcome and outcome not in ("measured", "running") else ""
        return f"not validated (no expectation results{stopped})"
    failed = sum(1 for check in checks if not check.get("success"))
    if not failed:
        return f"all {len(checks)} checks passed"
    return f"{failed} of {len(checks)} checks FAILED"


def _targets(run: Run) -> str:
    recorded = run.manifest.get("services") or {}
    declared = {name: entry for name, entry in recorded.items() if isinstance(entry, dict)}
    verified = {row["service"]: row for row in run.frames["services"].iter_rows(named=True)}
    parts = []
    for name in dict.fromkeys([*declared, *verified]):
        url = declared.get(name, {}).get("url") or verified.get(name, {}).get("url")
        version = declared.get(name, {}).get("version") or verified.get(name, {}).get("version")
        ok = verified.get(name, {}).get("ok")
        state = "not verified" if ok is None else "verified" if ok else "verification FAILED"
        parts.append(f"{name} `{fmt(url)}` (version {fmt(version)}, {state})")
    # besides the services the manifest may name what they serve, e.g. llm_model
    parts += [f"{name.replace('_', ' ')} {fmt(value)}" for name, value in recorded.items() if name not in declared]
    return "; ".join(parts) or MISSING


def _duration(started: str | None, finished: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except (TypeError, ValueError):
        return None


def _machine(machine: dict) -> str:
    if not machine:
        return MISSING
    memory = machine.get("memory_bytes")
    return (
        f"{fmt(machine.get('hostname'))}: {fmt(machine.get('platform'))}, Python {fmt(machine.get('python'))}, "
        f"{fmt(machine.get('cpu_count'), 'int')} CPUs, {fmt(resources.to_mb(memory), 'mb')} MB memory"
    )


def header(run: Run, title: str) -> str:
    manifest = run.manifest
    profile = manifest.get("profile") or {}
    description = f" — {profile['description']}" if profile.get("description") else ""
    started, finished = manifest.get("started_at"), manifest.get("finished_at")
    lines = [
        f"- **Run:** {fmt(manifest.get('run_id'))}",
        f"- **Profile:** {fmt(manifest.get('profile_name') or profile.get('name'))}{description}",
        f"- **Targets:** {_targets(run)}",
        f"- **Started:** {fmt(started)}; **finished:** {fmt(finished)} ({fmt(_duration(started, finished), 's')} s)",
        f"- **Machine:** {_machine(manifest.get('machine') or {})}",
        f"- **Verdict:** {verdict(run.checks, manifest.get('outcome'))}",
    ]
    return f"# {title}\n\n" + "\n".join(lines)


# ---- sections -----------------------------------------------------------------------------------

def service_verification(run: Run) -> str:
    services = run.frames["services"]
    ok = services.filter(pl.col("ok").fill_null(False)).height
    columns = [Column("service", "service"), Column("url", "url"), Column("ok", "ok"), Column("version", "version"),
               Column("detail", "detail"), Column("fix", "fix")]
    return section(
        "Service verification",
        f"{ok} of {services.height} services answered as the contract expects; no load is sent otherwise.",
        table(columns, services.to_dicts(), "No service was checked."),
    )


def baseline_resources(run: Run) -> str:
    return section(
        "Baseline (idle) resources",
        "Sampled before any job was submitted (stage `baseline`). RSS is the resident memory of each service's "
        "processes in MB (2^20 bytes); `total` is the four services together.",
        table(USAGE_COLUMNS, resources.baseline_by_service(run.frames["samples"]), "No baseline samples."),
    )


def single_request(run: Run) -> str:
    return section(
        "Single request",
        "One document submitted alone. End-to-end seconds run from the upload to the terminal status as the "
        "client saw it; queued/script/audio/visual/compose are the seconds the job spent in each state and "
        "phase as polled; server s is the `processing_time_seconds` the server reports.",
        table(JOB_COLUMNS, run.jobs("single").to_dicts(), "No single request was run."),
    )


def _threshold_line(run: Run, *parts: tuple[str, str, str, str]) -> str:
    """The profile's thresholds for a section's figures, as (label, key, kind, unit)."""
    shown = [f"{label} {fmt(run.thresholds[key], kind)} {unit}" for label, key, kind, unit in parts
             if run.thresholds.get(key) is not None]
    return f"Profile thresholds: {', '.join(shown)}." if shown else ""


def concurrent_runs(run: Run) -> str:
    return section(
        "Concurrent runs",
        "Per concurrency level: job seconds are end-to-end seconds of every job at the level (failed and "
        "timed-out ones included); wall s is the batches' wall time; jobs/min = successful jobs / wall minutes; "
        "video s per wall s = seconds of video produced by successful jobs / wall seconds.",
        _threshold_line(run, ("success rate ≥", "success_rate", "rate", "%"),
                        ("p95 job time ≤", "p95_job_seconds", "s", "s")),
        table(CONCURRENCY_COLUMNS, concurrency_rows(run.frames), "No concurrent run was recorded."),
    )


def concurrent_jobs(run: Run) -> str:
    jobs = run.jobs("concurrent").sort(["level", "batch"], nulls_last=True).to_dicts()
    return section("Concurrent jobs", table(BATCH_COLUMNS + JOB_COLUMNS, jobs, "No concurrent job was run."))


def api_latency(run: Run) -> str:
    return section(
        "API latency",
        "Response time of each probed endpoint in milliseconds, every probe included; errors are probes "
        "without the expected answer.",
        _threshold_line(run, ("p95 API latency ≤", "p95_api_latency_ms", "ms", "ms")),
        table(LATENCY_COLUMNS, latency_rows(run.frames), "No latency probe was recorded."),
    )


def sequential_reliability(run: Run) -> str:
    jobs = run.jobs("sequential")
    return section(
        "Sequential reliability",
        _success_line(jobs, "jobs submitted one after another") if jobs.height else "",
        table(JOB_COLUMNS, jobs.to_dicts(), "No sequential job was run."),
    )


def status_tracking(run: Run) -> str:
    jobs = run.jobs().with_columns(tracked=pl.col("tracking_problems").fill_null("") == "")
    per_stage = [
        {"stage": stage, "jobs": part.height, "tracked": part["tracked"].sum(),
         "accuracy": rate(part["tracked"].sum(), part.height),
         "observations": part["observations"].sum() if part["observations"].null_count() < part.height else None}
        for (stage,), part in jobs.group_by("stage", maintain_order=True)
    ]
    problems = jobs.filter(~pl.col("tracked")).to_dicts()
    stage_columns = [Column("stage", "stage"), Column("jobs", "jobs", "int"),
                     Column("tracked correctly", "tracked", "int"), Column("accuracy %", "accuracy", "rate"),
                     Column("status observations", "observations", "int")]
    problem_columns = [Column("job", "job_id"), Column("stage", "stage"), Column("status", "status"),
                       Column("observations", "observations", "int"), Column("tracking problems", "tracking_problems")]
    return section(
        "Status tracking",
        "A job is tracked correctly when the campaign recorded no tracking problem for it while polling its "
        "status (`tracking_problems` of the jobs table).",
        table(stage_columns, per_stage, "No job was tracked."),
        table(problem_columns, problems, "No job had tracking problems.") if jobs.height else "",
    )


def video_integrity(run: Run) -> str:
    rows = video_rows(run.frames)
    checked = set(run.frames["videos"]["job_id"].to_list())
    unchecked = [job for job in _succeeded(run.jobs())["job_id"].to_list() if job not in checked]
    passed = sum(1 for row in rows if row["ok"])
    summary = f"{passed} of {len(rows)} downloaded videos passed every check." if rows else ""
    return section(
        "Video integrity",
        summary,
        table(VIDEO_COLUMNS, rows, "No video was checked."),
        f"Successful jobs without a checked video: {', '.join(unchecked)}." if unchecked else "",
    )


def failures(run: Run) -> str:
    jobs = run.jobs()
    columns = [Column("job", "job_id"), Column("stage", "stage"), Column("level", "level", "int"),
               Column("status", "status"), Column("error", "error")]
    failed = jobs.filter(~pl.col("succeeded").fill_null(False)).to_dicts()
    return section("Failures", table(columns, failed, "No job failed." if jobs.height else "No job was run."))


def expectation_outcomes(run: Run) -> str:
    passed = sum(1 for check in run.checks if check.get("success"))
    rows = [{**check, "result": "pass" if check.get("success") else "FAIL"} for check in run.checks]
    columns = [Column("suite", "suite"), Column("expectation", "expectation"), Column("column", "column"),
               Column("result", "result"), Column("observed", "observed", "value"),
               Column("expected", "expected", "value"), Column("details", "details", "value")]
    return section(
        "Expectation outcomes (Great Expectations)",
        f"{passed} passed, {len(rows) - passed} failed." if rows else "",
        table(columns, rows, "Not validated: the run stopped before validation."),
    )


def resource_usage(run: Run) -> str:
    return section(
        "Resources during the runs",
        "Samples of the single and concurrent stages, per service and for the four together (`total`).",
        table(USAGE_COLUMNS, resources.usage_by_service(run.frames["samples"]), "No samples during the runs."),
    )


def per_job_resources(run: Run) -> str:
    usage = resources.per_job_usage(run.frames["samples"], run.jobs())
    overall = usage["overall"]
    columns = [Column("job", "job_id"), Column("stage", "stage"), Column("level", "level", "int"),
               Column("samples", "samples", "int"), Column("peak RSS MB", "peak_rss_mb", "mb"),
               Column("mean CPU %", "mean_cpu_percent", "pct"), Column("peak CPU %", "peak_cpu_percent", "pct")]
    return section(
        "Resources per job",
        "The `total` samples between a job's submission and its terminal status: the whole stack's use while "
        "the job ran (jobs running at the same time share it).",
        f"Over the {overall['jobs_with_samples']} of {overall['jobs']} jobs with samples: mean peak RSS "
        f"{fmt(overall['mean_peak_rss_mb'], 'mb')} MB, max peak RSS {fmt(overall['max_peak_rss_mb'], 'mb')} MB, "
        f"mean CPU {fmt(overall['mean_cpu_percent'], 'pct')} %, peak CPU {fmt(overall['peak_cpu_percent'], 'pct')} %."
        if overall["jobs"] else "",
        table(columns, usage["jobs"], "No job was run."),
    )


def jobs_per_gib(run: Run) -> str:
    samples = run.frames["samples"]
    rows = resources.jobs_per_gb(samples, run.jobs(), resources.baseline_by_service(samples))
    columns = [Column("level", "level", "int"), Column("samples", "samples", "int"),
               Column("peak total RSS MB", "peak_total_rss_mb", "mb"),
               Column("baseline total RSS MB", "baseline_total_rss_mb", "mb"),
               Column("MB per concurrent job", "marginal_mb_per_job", "mb"),
               Column("jobs per GiB", "jobs_per_gib", "ratio")]
    return section(
        "Jobs per GB",
        "Definition: for each concurrency level L, take the peak `total` RSS during the level's batches (first "
        "submission to last terminal status), subtract the mean `total` RSS at baseline and divide by L: the "
        "marginal MB one more concurrent job costs. Jobs per GiB = 1024 / that margin; none when the margin is "
        "not positive (memory did not grow measurably) or no sample fell in the window.",
        table(columns, rows, "No concurrent run was recorded."),
    )


def machine_totals(run: Run) -> str:
    columns = [Column("stage", "stage"), *USAGE_COLUMNS[1:4],
               Column("memory in use mean MB", "rss_mean_mb", "mb"), Column("memory in use max MB", "rss_max_mb", "mb")]
    return section(
        "Machine totals",
        f"Machine: {_machine(run.manifest.get('machine') or {})}. The whole machine per stage, other users included.",
        table(columns, resources.machine_by_stage(run.frames["samples"]), "No machine samples."),
    )


# ---- for a paper --------------------------------------------------------------------------------

def _response_time_sentence(run: Run) -> str:
    done = _succeeded(run.jobs("single"))
    mean = summarize(done["total_seconds"].to_list()).mean
    if mean is None:
        return "No single video generation request succeeded, so no average response time can be given."
    return (f"The system achieved an average response time of {fmt(mean, 's')} seconds for single video "
            f"generation requests ({plural(done.height, 'successful request')}).")


def _concurrency_sentences(rows: list[dict]) -> list[str]:
    if not rows:
        return ["No concurrent run was recorded, so no success rate under concurrency can be given."]
    return [
        f"The system maintained a {fmt(row['success_rate'], 'rate')}% success rate when processing "
        f"{plural(row['level'], 'concurrent job')} ({row['successes']} of {row['jobs']})."
        if row["success_rate"] is not None else f"No job finished at concurrency level {row['level']}."
        for row in rows
    ]


def _throughput_sentence(rows: list[dict]) -> str:
    measured = [row for row in rows if row["jobs_per_minute"] is not None]
    if not measured:
        return "No throughput can be given: no concurrent batch with a measured wall time was recorded."
    best = max(measured, key=lambda row: row["jobs_per_minute"])
    return (f"It reached a throughput of {fmt(best['jobs_per_minute'], 'ratio')} videos per minute at "
            f"{plural(best['level'], 'concurrent job')} ({fmt(best['video_s_per_wall_s'], 'ratio')} seconds of "
            f"video per wall second).")


def _memory_sentence(run: Run) -> str:
    overall = resources.per_job_usage(run.frames["samples"], run.jobs())["overall"]
    footprint, cpu = overall["mean_peak_rss_mb"], overall["peak_cpu_percent"]
    if footprint is None or cpu is None:
        return "No resource samples fell within a job's run, so no memory footprint or CPU figure can be given."
    return (f"Video generation ran with an average memory footprint of {fmt(footprint, 'mb')} MB per video "
            f"generation task (peak resident memory of the four services while the task ran), with peak CPU "
            f"utilization of {fmt(cpu, 'pct')}%.")


def _latency_sentence(rows: list[dict]) -> str:
    measured = [row for row in rows if row["p95_ms"] is not None]
    if not measured:
        return "No API latency was measured, so no p95 API latency can be given."
    figures = ", ".join(f"{fmt(row['p95_ms'], 'ms')} ms for {row['endpoint']}" for row in measured)
    return f"The API answered with a p95 API latency of {figures}."


def _reliability_sentences(run: Run) -> list[str]:
    sequential = run.jobs("sequential")
    success = rate(_succeeded(sequential).height, sequential.height)
    videos = video_rows(run.frames)
    return [
        f"Over {plural(sequential.height, 'sequential run')}, {fmt(success, 'rate')}% of jobs completed successfully."
        if sequential.height else "No sequential run was recorded.",
        f"{sum(1 for row in videos if row['ok'])} of {len(videos)} generated videos passed every integrity check "
        f"(decodable H.264 and audio, expected resolution, durations consistent)."
        if videos else "No generated video was checked for integrity.",
    ]


def for_a_paper(run: Run) -> str:
    concurrency = concurrency_rows(run.frames)
    sentences = [
        _response_time_sentence(run),
        *_concurrency_sentences(concurrency),
        _memory_sentence(run),
        _throughput_sentence(concurrency),
        _latency_sentence(latency_rows(run.frames)),
        *_reliability_sentences(run),
    ]
    return section(
        "For a paper",
        "Statements filled in with this run's figures (each one computed in the sections above); a figure that "
        "was not measured is said to be missing rather than given.",
        "\n".join(f"- {sentence}" for sentence in sentences),
    )


# ---- reports ------------------------------------------------------------------------------------

Section = Callable[[Run], str]


@dataclass(frozen=True)
class Report:
    title: str
    sections: tuple[Section, ...]


REPORTS: dict[str, Report] = {
    "integration_performance_report.md": Report(
        "Integration performance report", (single_request, concurrent_runs, api_latency, for_a_paper)),
    "integration_reliability_report.md": Report(
        "Integration reliability report",
        (sequential_reliability, status_tracking, video_integrity, failures, expectation_outcomes)),
    "integration_resources_report.md": Report(
        "Integration resources report",
        (baseline_resources, resource_usage, per_job_resources, jobs_per_gib, machine_totals)),
    "test_service_verification.md": Report("Test: service verification", (service_verification,)),
    "test_baseline_resources.md": Report("Test: baseline resources", (baseline_resources, machine_totals)),
    "test_single_request.md": Report("Test: single request", (single_request,)),
    "test_concurrent_runs.md": Report("Test: concurrent runs", (concurrent_runs, concurrent_jobs, jobs_per_gib)),
    "test_api_latency.md": Report("Test: API latency", (api_latency,)),
    "test_sequential_reliability.md": Report(
        "Test: sequential reliability", (sequential_reliability, status_tracking, failures)),
    "test_video_integrity.md": Report("Test: video integrity", (video_integrity,)),
}


def render_reports(frames: dict[str, pl.DataFrame], manifest: dict, checks: list[dict]) -> dict[str, str]:
    """Every report as Markdown, keyed by file name."""
    run = Run.of(frames, manifest, checks)
    return {
        name: "\n\n".join([header(run, report.title), *(part(run) for part in report.sections)]) + "\n"
        for name, report in REPORTS.items()
    }


# ---- HTML ---------------------------------------------------------------------------------------

# raw HTML off: error messages and details from the services must show as text, never as markup
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:90rem;line-height:1.4}"
    "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}"
    "th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}"
    "code{background:#f3f3f3;padding:0 .2rem}"
)


def to_html(markdown: str, title: str) -> str:
    """A complete, self-contained HTML page of a Markdown report."""
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{_MARKDOWN.render(markdown)}</body>\n</html>\n"
    )
