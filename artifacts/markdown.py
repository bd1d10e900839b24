"""A run's Markdown reports, formatted from its `RunMetrics` only (analysis.metrics computes every figure).

A report is a header plus sections; each section is one function of the metrics, shared by the three
main reports and the per-test reports, so every figure is worded in one place. A figure that was not
measured shows "—" and its sentence says so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from analysis.metrics import (
    Endpoint,
    Incident,
    JobGroup,
    RunMetrics,
    StageOutcome,
    ci_text,
    ended_without_video,
    plural,
    videos_sentence,
)
from analysis.stats import Distribution, Rate

MISSING = "—"
DECIMALS = {"s": 2, "ms": 1, "pct": 1, "mb": 1, "ratio": 2}
NUMERIC = {*DECIMALS, "rate", "int"}
HASH_PREFIX = 12
VALUE_WIDTH = 160  # GX observed/expected/details are free-form: keep table cells readable
CPU_SCALE = "CPU is in % of one core (100 = one core busy; the machine has {cores} cores, so at most {top} %)."


# ---- formatting ---------------------------------------------------------------------------------

def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value)) or value == ""


def plain(value, kind: str):
    """A value ready to show: `fmt` renders it as text, table artifacts hand it on as is (JSON-safe)."""
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
        text = f"{value:.4g}" if isinstance(value, float) else value if isinstance(value, str) else json.dumps(
            value, default=str)
        return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"
    return value


def fmt(value, kind: str = "text") -> str:
    """The one number format: "s"/"ratio" 2 decimals, "ms"/"pct"/"mb" 1, "rate" (0..1) as percent with 1;
    "hash" a prefix, "name" a file name, "value" any JSON-ish value; missing → "—"."""
    shown = plain(value, kind)
    if shown is None:
        return MISSING
    if isinstance(shown, bool):
        return "yes" if shown else "no"
    if kind == "rate":
        kind = "pct"
    if kind in DECIMALS:
        return f"{shown:.{DECIMALS[kind]}f}"
    return str(shown)


def unit_kind(unit: str) -> str:
    return {"s": "s", "ms": "ms", "MB": "mb"}.get(unit, "ratio")


def _shown(kind: str) -> Callable[[float], str]:
    """`fmt` for one kind, as `ci_text` takes it."""
    return lambda value: fmt(value, kind)


def interval(figure: Distribution) -> str | None:
    """"9.50–11.80 (median)", or None below the n that supports an interval."""
    if figure.ci is None:
        return None
    return f"{ci_text(figure.ci, _shown(unit_kind(figure.unit)))} ({figure.ci_of})"


def rate_text(share: Rate) -> str:
    """"2 of 4 (50.0 %, 95 % CI 15.0–85.0 %)"; "0 of 0 (no job)"."""
    if not share.n:
        return "0 of 0 (none attempted)"
    ci = f", 95 % CI {ci_text(share.ci, _shown('rate'))} %" if share.ci else ""
    return f"{share.k} of {share.n} ({fmt(share.value, 'rate')} %{ci})"


def not_counted(group: JobGroup, noun: str | None = None) -> str:
    """" (1 interrupted, not counted)", with `noun` " (1 job interrupted, not counted)"; "" when none was: a job
    cut off by the run's stop is counted beside the success rate, never in it."""
    if not group.interrupted:
        return ""
    count = plural(group.interrupted, noun) if noun else str(group.interrupted)
    return f" ({count} interrupted, not counted)"


def success_text(group: JobGroup) -> str:
    """"2 of 3 (66.7 %) verified (1 interrupted, not counted)"; "no verified figure: 4 jobs interrupted" when
    no job reached an outcome."""
    if not group.success.n:
        return (f"no verified figure: {plural(group.interrupted, 'job')} interrupted" if group.interrupted
                else "no job was run")
    return f"{rate_text(group.success)} verified{not_counted(group)}"


def headline(figure: Distribution) -> str:
    """"p95 12.30 s (95 % CI 11.00–14.10, n=25)", "median 10.20 s (min 9.10, max 12.00, n=3)"."""
    if not figure.n:
        return "no value (n=0)"
    name, value = figure.headline
    kind = unit_kind(figure.unit)
    extra = [f"95 % CI {ci_text(figure.ci, _shown(kind))}"] if figure.ci else []
    if name == "median":
        extra.insert(0, f"min {fmt(figure.min, kind)}, max {fmt(figure.max, kind)}")
    return f"{name} {fmt(value, kind)} {figure.unit} ({', '.join([*extra, f'n={figure.n}'])})"


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


def _first_up(text: str) -> str:
    """A clause as the start of a sentence (str.capitalize would lower the rest)."""
    return text[:1].upper() + text[1:]


def section(title: str, *parts: str) -> str:
    return "\n\n".join([f"## {title}", *(part for part in parts if part)])


def cpu_scale(metrics: RunMetrics) -> str:
    cores = metrics.machine.cpu_count
    if cores is None:
        return "CPU is in % of one core (100 = one core busy; the machine's core count was not recorded)."
    return CPU_SCALE.format(cores=cores, top=cores * 100)


# ---- rows shared by sections and Prefect table artifacts ----------------------------------------

def _distribution_cells(prefix: str, figure: Distribution) -> dict:
    return {f"{prefix}n": figure.n, f"{prefix}min": figure.min, f"{prefix}median": figure.median,
            f"{prefix}p95": figure.p95, f"{prefix}p99": figure.p99, f"{prefix}max": figure.max,
            f"{prefix}ci": interval(figure)}


def group_row(group: JobGroup) -> dict:
    outcomes = ", ".join(f"{count} {outcome}" for outcome, count in group.outcomes.items())
    return {
        "level": group.level, "jobs": group.jobs, "successes": group.success.k, "success_rate": group.success.value,
        "success_ci": ci_text(group.success.ci, _shown("rate")) if group.success.ci else None,
        "outcomes": outcomes, **_distribution_cells("s_", group.seconds), "wall_s": group.wall_seconds,
        "jobs_per_minute": group.jobs_per_minute, "video_s_per_wall_s": group.video_seconds_per_wall_second,
    }


def endpoint_row(endpoint: Endpoint) -> dict:
    return {"endpoint": endpoint.endpoint, "probes": endpoint.probes, **_distribution_cells("", endpoint.answered),
            "errors": endpoint.error_count, "error_kinds": endpoint.error_kinds or None}


def _figure_columns(prefix: str, unit: str) -> list[Column]:
    kind = unit_kind(unit)
    return [Column("n", f"{prefix}n", "int"), Column(f"min {unit}", f"{prefix}min", kind),
            Column(f"median {unit}", f"{prefix}median", kind), Column(f"p95 {unit}", f"{prefix}p95", kind),
            Column(f"p99 {unit}", f"{prefix}p99", kind), Column(f"max {unit}", f"{prefix}max", kind),
            Column("95 % CI", f"{prefix}ci")]


CONCURRENCY_COLUMNS = [
    Column("level", "level", "int"), Column("jobs", "jobs", "int"), Column("verified successes", "successes", "int"),
    Column("success %", "success_rate", "rate"), Column("success 95 % CI %", "success_ci"),
    Column("outcomes", "outcomes"), *_figure_columns("s_", "s"), Column("wall s", "wall_s", "s"),
    Column("jobs/min", "jobs_per_minute", "ratio"), Column("video s per wall s", "video_s_per_wall_s", "ratio"),
]
LATENCY_COLUMNS = [Column("endpoint", "endpoint"), Column("probes", "probes", "int"), *_figure_columns("", "ms"),
                   Column("errors", "errors", "int"), Column("errors by kind", "error_kinds")]
VIDEO_COLUMNS = [
    Column("job", "job_id"), Column("stage", "stage"), Column("ok", "ok"), Column("frames", "frames_decoded", "int"),
    Column("decode errors", "decode_errors", "int"), Column("video s", "video_seconds", "s"),
    Column("audio s", "audio_seconds", "s"), Column("reported s", "reported_seconds", "s"),
    Column("resolution", "resolution"), Column("size bytes", "size_bytes", "int"),
    Column("sha256", "sha256", "hash"), Column("hash stable", "hash_stable"), Column("problems", "problems"),
]
USAGE_COLUMNS = [
    Column("service", "name"), Column("samples (n)", "samples", "int"),
    Column("CPU mean % of one core", "cpu_mean", "pct"), Column("CPU peak % of one core", "cpu_peak", "pct"),
    Column("RSS mean MB", "rss_mean_mb", "mb"), Column("RSS peak MB", "rss_peak_mb", "mb"),
]
JOB_COLUMNS = [
    Column("job", "job_id"), Column("document", "document", "name"), Column("outcome", "outcome"),
    Column("server status", "server_status"), Column("end-to-end s", "total_seconds", "s"),
    Column("queued s", "queued_s", "s"), Column("script s", "script_s", "s"), Column("audio s", "audio_s", "s"),
    Column("visual s", "visual_s", "s"), Column("compose s", "compose_s", "s"),
    Column("server s", "processing_seconds", "s"), Column("reported video s", "reported_video_seconds", "s"),
    Column("decoded video s", "decoded_video_seconds", "s"), Column("scenes", "scenes", "int"),
    Column("failure", "failure"),
]
BATCH_COLUMNS = [Column("level", "level", "int"), Column("batch", "batch", "int")]
MEMORY_COLUMNS = [
    Column("stage", "stage"), Column("level", "level", "int"), Column("instants (n)", "instants", "int"),
    Column("deployment idle RSS MB", "baseline_rss_mb", "mb"),
    Column("deployment peak RSS MB", "deployment_peak_rss_mb", "mb"),
    Column("per-job MB median", "per_job_median", "mb"), Column("per-job MB max", "per_job_max", "mb"),
    Column("per-job 95 % CI", "per_job_ci"), Column("jobs per GiB", "jobs_per_gib", "ratio"),
]


def job_rows(metrics: RunMetrics, stage: str) -> list[dict]:
    rows = []
    for job in metrics.jobs_of(stage):
        row = job.model_dump()
        if job.status_from_trace:
            row["server_status"] = f"{job.server_status} (last seen)"
        rows.append(row)
    return rows


def memory_rows(metrics: RunMetrics) -> list[dict]:
    return [{**row.model_dump(), "per_job_median": row.per_job_mb.median, "per_job_max": row.per_job_mb.max,
             "per_job_ci": interval(row.per_job_mb)} for row in metrics.per_job_memory]


def main_tables(metrics: RunMetrics) -> dict[str, list[dict]]:
    """The main tables as rows keyed by column header, for Prefect table artifacts."""
    tables = {
        "concurrency-summary": (CONCURRENCY_COLUMNS, [group_row(group) for group in metrics.levels]),
        "api-latency-summary": (LATENCY_COLUMNS, [endpoint_row(endpoint) for endpoint in metrics.latency]),
        "video-integrity": (VIDEO_COLUMNS, [video.model_dump() for video in metrics.videos]),
        "resource-usage": (USAGE_COLUMNS, [usage.model_dump() for usage in metrics.run_usage]),
        "per-job-memory": (MEMORY_COLUMNS, memory_rows(metrics)),
    }
    return {
        key: [{c.header: plain(row.get(c.key), c.kind) for c in columns} for row in rows]
        for key, (columns, rows) in tables.items()
    }


# ---- header -------------------------------------------------------------------------------------

def _targets(metrics: RunMetrics) -> str:
    parts = [f"{t.name} `{fmt(t.url)}` (version {fmt(t.version)}, {t.state})" for t in metrics.targets]
    parts += [f"{name.replace('_', ' ')} {value}" for name, value in metrics.target_notes.items()]
    return "; ".join(parts) or MISSING


def machine_text(metrics: RunMetrics) -> str:
    machine = metrics.machine
    if machine == type(machine)():
        return MISSING
    return (f"{fmt(machine.hostname)}: {fmt(machine.platform)}, Python {fmt(machine.python)}, "
            f"{fmt(machine.cpu_count, 'int')} CPU cores, {fmt(machine.memory_mb, 'mb')} MB memory")


def header(metrics: RunMetrics, title: str) -> str:
    description = f" — {metrics.profile_description}" if metrics.profile_description else ""
    finished = (f"{fmt(metrics.finished_at)} ({fmt(metrics.duration_seconds, 's')} s)" if metrics.finished_at
                else "never: the run was interrupted before its end")
    stages = ", ".join(f"{stage.stage} {stage.outcome}" for stage in metrics.stages)
    lines = [
        f"- **Run:** {fmt(metrics.run_id)}",
        f"- **Profile:** {fmt(metrics.profile_name)}{description}",
        f"- **Targets:** {_targets(metrics)}",
        f"- **Started:** {fmt(metrics.started_at)}; **finished:** {finished}",
        f"- **Machine:** {machine_text(metrics)}",
        *([f"- **Stages:** {stages}"] if stages else []),
        f"- **Verdict:** {metrics.verdict}",
    ]
    banner = (["> **Interrupted run.** Jobs in flight when it stopped are shown as `interrupted` with the status "
               "last seen; no expectation was validated."] if metrics.interrupted else [])
    return "\n\n".join([f"# {title}", "\n".join(lines), *banner])


# ---- sections -----------------------------------------------------------------------------------

def _stage_sentence(stage: StageOutcome) -> str:
    if stage.outcome == "failed":
        return f"Stage **{stage.stage}** failed: {stage.detail or 'no detail was recorded'}."
    detail = f" ({stage.detail})" if stage.detail else ""
    return f"Stage **{stage.stage}** was interrupted by the run's stop{detail}."


def stage_outcomes(metrics: RunMetrics) -> str:
    columns = [Column("stage", "stage"), Column("outcome", "outcome"), Column("seconds", "seconds", "s"),
               Column("detail", "detail")]
    failed = [_stage_sentence(stage) for stage in metrics.stages if stage.outcome in ("failed", "interrupted")]
    return section("Stages", table(columns, [stage.model_dump() for stage in metrics.stages],
                                   "No stage outcome was recorded."), "\n".join(failed))


def service_verification(metrics: RunMetrics) -> str:
    services = metrics.services
    ok = sum(service.ok for service in services)
    columns = [Column("service", "service"), Column("url", "url"), Column("ok", "ok"), Column("version", "version"),
               Column("detail", "detail"), Column("fix", "fix")]
    return section(
        "Service verification",
        f"{ok} of {len(services)} services answered as the contract expects; no load is sent otherwise."
        if services else "",
        table(columns, [service.model_dump() for service in services], "No service was checked."),
    )


def baseline_resources(metrics: RunMetrics) -> str:
    return section(
        "Baseline (idle) resources",
        "Sampled before any job was submitted (stage `baseline`). RSS is the resident memory of each service's "
        "processes in MB (2^20 bytes); `deployment` is the services summed at each sampling instant (its peak is "
        "the peak of that sum). " + cpu_scale(metrics),
        table(USAGE_COLUMNS, [usage.model_dump() for usage in metrics.baseline_usage], "No baseline samples."),
    )


def _single_sentence(metrics: RunMetrics) -> str:
    jobs = metrics.jobs_of("single")
    if not jobs:
        return ""
    job = jobs[0]
    if job.outcome == "interrupted":
        seen = f"the status last seen was `{job.server_status}`" if job.server_status else "no status was seen"
        polled = f" after {plural(job.observations, 'status observation')}" if job.observations else ""
        return f"The single request was **interrupted**: {seen}{polled}."
    if job.succeeded:
        return f"The single request delivered a verified video in {fmt(job.total_seconds, 's')} s."
    return f"The single request did not deliver a verified video ({job.outcome}): {job.failure or 'no detail'}."


def single_request(metrics: RunMetrics) -> str:
    return section(
        "Single request",
        "One document submitted alone. End-to-end seconds run from the upload to the terminal status as the "
        "client saw it; queued/script/audio/visual/compose are the seconds the job spent in each state and "
        "phase as polled; server s is the `processing_time_seconds` the server reports; reported video s is the "
        "server's duration, decoded video s what the downloaded video holds.",
        _single_sentence(metrics),
        table(JOB_COLUMNS, job_rows(metrics, "single"), "No single request was run."),
    )


def _threshold_line(metrics: RunMetrics, *names: str) -> str:
    shown = [check.sentence for check in metrics.thresholds if any(check.name.endswith(n) for n in names)]
    return "Thresholds: " + "; ".join(shown) + "." if shown else ""


def concurrent_runs(metrics: RunMetrics) -> str:
    return section(
        "Concurrent runs",
        "Per concurrency level. A success is a job whose video was downloaded and passed every integrity "
        "check. Job seconds (n, min … max) are end-to-end seconds of those verified successes only; failed, "
        "timed-out and interrupted jobs are counted under outcomes, never in a percentile. Wall s is the "
        "batches' wall time; jobs/min = verified successes / wall minutes; video s per wall s = decoded seconds "
        "of the verified videos / wall seconds. " + metrics.statistics_rule,
        _threshold_line(metrics, "success rate", "job time"),
        table(CONCURRENCY_COLUMNS, [group_row(group) for group in metrics.levels], "No concurrent run was recorded."),
    )


def concurrent_jobs(metrics: RunMetrics) -> str:
    rows = sorted(job_rows(metrics, "concurrent"), key=lambda row: (row["level"] or 0, row["batch"] or 0))
    return section("Concurrent jobs", table(BATCH_COLUMNS + JOB_COLUMNS, rows, "No concurrent job was run."))


def _endpoint_sentence(endpoint: Endpoint) -> str:
    if not endpoint.answered.n:
        return (f"{endpoint.endpoint} {endpoint.silence}: 0 of {endpoint.probes} probes answered as expected "
                f"({endpoint.error_kinds}).")
    errors = f"; {endpoint.error_count} without the expected answer ({endpoint.error_kinds})" if endpoint.errors else ""
    return f"{endpoint.endpoint}: {headline(endpoint.answered)}{errors}."


def api_latency(metrics: RunMetrics) -> str:
    return section(
        "API latency",
        "Time of each answer in milliseconds, answered probes only (a probe that timed out, was refused, got a "
        "wrong status or a body that is not JSON has no latency and is counted under errors by kind). "
        + metrics.statistics_rule,
        _threshold_line(metrics, "API latency", *(endpoint.endpoint for endpoint in metrics.latency)),
        "\n".join(f"- {_endpoint_sentence(endpoint)}" for endpoint in metrics.latency),
        table(LATENCY_COLUMNS, [endpoint_row(endpoint) for endpoint in metrics.latency],
              "No latency probe was recorded."),
    )


def sequential_reliability(metrics: RunMetrics) -> str:
    group = metrics.sequential
    line = (f"Jobs submitted one after another: {success_text(group)}; job time of "
            f"the verified successes: {headline(group.seconds)}." if group and group.jobs else "")
    return section("Sequential reliability", line,
                   table(JOB_COLUMNS, job_rows(metrics, "sequential"), "No sequential job was run."))


def status_tracking(metrics: RunMetrics) -> str:
    rows = [{"stage": row.stage, "jobs": row.tracked.n, "tracked": row.tracked.k, "accuracy": row.tracked.value,
             "observations": row.observations} for row in metrics.tracking]
    problems = [job.model_dump() for job in metrics.jobs if job.tracking_problems]
    stage_columns = [Column("stage", "stage"), Column("jobs (n)", "jobs", "int"),
                     Column("tracked correctly", "tracked", "int"), Column("accuracy %", "accuracy", "rate"),
                     Column("status observations", "observations", "int")]
    problem_columns = [Column("job", "job_id"), Column("stage", "stage"), Column("outcome", "outcome"),
                       Column("observations", "observations", "int"), Column("tracking problems", "tracking_problems")]
    return section(
        "Status tracking",
        "A job is tracked correctly when the campaign recorded no tracking problem for it while polling its "
        "status (`tracking_problems` of the jobs table).",
        table(stage_columns, rows, "No job was tracked."),
        table(problem_columns, problems, "No job had tracking problems.") if metrics.jobs else "",
    )


def _videos_line(metrics: RunMetrics) -> str:
    """"Downloaded videos that passed every check: 5 of 5 (…); 2 jobs ended without a downloaded video (see
    Failures)." or "No video was downloaded (7 jobs ended without one), so none could be checked (see Failures)"."""
    without = metrics.jobs_without_video
    if not metrics.videos:
        return _first_up(videos_sentence(metrics.videos_passed, without)) + " (see Failures)."
    beside = f"; {ended_without_video(without)} (see Failures)" if without else ""
    return f"Downloaded videos that passed every check: {rate_text(metrics.videos_passed)}{beside}."


def video_integrity(metrics: RunMetrics) -> str:
    unchecked = metrics.unchecked_successes
    return section(
        "Video integrity",
        _videos_line(metrics) if metrics.videos or metrics.jobs_without_video else "",
        table(VIDEO_COLUMNS, [video.model_dump() for video in metrics.videos], "No video was checked."),
        f"Successful jobs without a checked video: {', '.join(unchecked)}." if unchecked else "",
    )


def failures(metrics: RunMetrics) -> str:
    columns = [Column("job", "job_id"), Column("stage", "stage"), Column("level", "level", "int"),
               Column("outcome", "outcome"), Column("server status", "server_status"), Column("failure", "failure")]
    failed = [row for stage in ("single", "concurrent", "sequential") for row in job_rows(metrics, stage)
              if not row["succeeded"]]
    failed += [job.model_dump() for job in metrics.jobs
               if not job.succeeded and job.stage not in ("single", "concurrent", "sequential")]
    incidents = "\n".join(_incident_item(incident) for incident in metrics.incidents)
    return section(
        "Failures",
        "A job without a verified video, with the server's last status kept apart from the outcome.",
        table(columns, failed, "Every job delivered a verified video." if metrics.jobs else "No job was run."),
        f"What went wrong with the services, earliest first:\n\n{incidents}" if incidents else "",
    )


def _fenced(text: str, indent: str = "") -> str:
    """`text` verbatim in a code fence longer than any backtick run inside it (a log line may hold some)."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return "\n".join(indent + line for line in [fence, *text.rstrip("\n").splitlines(), fence])


def _incident_item(incident: Incident) -> str:
    """One incident as a list item, with the bundled service's last log lines below it when it died."""
    item = f"- {incident.sentence}"
    if not incident.log_tail or not incident.log_tail.strip():
        return item
    return f"{item}; its log's last lines:\n\n" + _fenced(incident.log_tail, indent="  ")


def expectation_outcomes(metrics: RunMetrics) -> str:
    passed = sum(check.success for check in metrics.checks)
    rows = [{**check.model_dump(), "result": "pass" if check.success else "FAIL"} for check in metrics.checks]
    columns = [Column("suite", "suite"), Column("expectation", "expectation"), Column("column", "column"),
               Column("result", "result"), Column("observed", "observed", "value"),
               Column("expected", "expected", "value"), Column("details", "details", "value")]
    thresholds = "\n".join(f"- {'met' if check.passed else 'NOT met'}: {check.sentence}"
                           for check in metrics.thresholds)
    return section(
        "Expectation outcomes (Great Expectations)",
        (f"Thresholds, measured against the profile:\n\n{thresholds}" if metrics.validated else
         f"Thresholds, against what was measured before the run stopped (not validated):\n\n{thresholds}")
        if thresholds else "",
        f"{passed} passed, {len(rows) - passed} failed." if rows else "",
        table(columns, rows, "Not validated: the run stopped before validation."),
    )


def resource_usage(metrics: RunMetrics) -> str:
    return section(
        "Resources during the runs",
        "Samples of the single and concurrent stages, per service and for the deployment (the services summed "
        "at each sampling instant; its peak is the peak of that sum). " + cpu_scale(metrics)
        + " Samples are a time series, not independent draws: they carry no confidence interval.",
        table(USAGE_COLUMNS, [usage.model_dump() for usage in metrics.run_usage], "No samples during the runs."),
    )


def per_job_memory(metrics: RunMetrics) -> str:
    return section(
        "Memory per job",
        "At each sampling instant with jobs in flight: per-job MB = (deployment RSS − its idle baseline RSS) / "
        "jobs in flight at that instant. Shown beside the deployment's peak RSS (all services together, not one "
        "job's). n is the number of such instants. Jobs per GiB = 1024 / the largest per-job share (none when "
        "memory did not grow above idle). " + metrics.statistics_rule,
        table(MEMORY_COLUMNS, memory_rows(metrics), "No sample fell while a job was in flight."),
    )


def machine_totals(metrics: RunMetrics) -> str:
    columns = [Column("stage", "name"), *USAGE_COLUMNS[1:4], Column("memory in use mean MB", "rss_mean_mb", "mb"),
               Column("memory in use peak MB", "rss_peak_mb", "mb")]
    return section(
        "Machine totals",
        f"Machine: {machine_text(metrics)}. The whole machine per stage, other users included. " + cpu_scale(metrics),
        table(columns, [usage.model_dump() for usage in metrics.machine_usage], "No machine samples."),
    )


# ---- for a paper --------------------------------------------------------------------------------

def _response_time_sentence(metrics: RunMetrics) -> str:
    group = metrics.single
    if group is None or not group.jobs:
        return "No single request was run, so no response time can be given."
    if not group.seconds.n:
        outcome = ", ".join(f"{count} {outcome}" for outcome, count in group.outcomes.items())
        return f"The single video generation request delivered no verified video ({outcome}), so no response time " \
               f"can be given."
    return (f"A single video generation request delivered a verified video in {fmt(group.seconds.median, 's')} "
            f"seconds ({plural(group.seconds.n, 'request')}).")


def _verified_sentence(lead: str, group: JobGroup) -> str:
    """"<lead>, 2 of 3 (…) jobs delivered a verified video; job time … (1 job interrupted, not counted)." or,
    when no job reached an outcome, "<lead>, no success rate can be given: 4 jobs interrupted by the run's stop"."""
    if not group.success.n:
        return (f"{lead}, no success rate can be given: {plural(group.interrupted, 'job')} interrupted by the run's "
                "stop.")
    return (f"{lead}, {rate_text(group.success)} jobs delivered a verified video"
            + (f"; job time {headline(group.seconds)}" if group.seconds.n else "") + not_counted(group, "job") + ".")


def _concurrency_sentences(metrics: RunMetrics) -> list[str]:
    if not metrics.levels:
        return ["No concurrent run was recorded, so no success rate under concurrency can be given."]
    return [_verified_sentence(f"With {plural(group.level, 'concurrent job')}", group) for group in metrics.levels]


def _throughput_sentence(metrics: RunMetrics) -> str:
    measured = [group for group in metrics.levels if group.jobs_per_minute]
    if not measured:
        return "No throughput can be given: no concurrent batch delivered a verified video in a measured wall time."
    best = max(measured, key=lambda group: group.jobs_per_minute)
    return (f"It reached a throughput of {fmt(best.jobs_per_minute, 'ratio')} verified videos per minute at "
            f"{plural(best.level, 'concurrent job')} ({fmt(best.video_seconds_per_wall_second, 'ratio')} seconds of "
            f"decoded video per wall second, from {plural(best.success.k, 'video')}).")


def _resource_sentence(metrics: RunMetrics) -> str:
    deployment = next((usage for usage in metrics.run_usage if usage.name == "deployment"), None)
    shares = [row for row in metrics.per_job_memory if row.per_job_mb.n]
    if deployment is None or deployment.rss_peak_mb is None:
        return "No resource samples were taken during the runs, so no memory or CPU figure can be given."
    cores = metrics.machine.cpu_count
    cpu = (f"its CPU peaked at {fmt(deployment.cpu_peak, 'pct')} % of one core"
           + (f" (the machine has {cores} cores)" if cores else ""))
    memory = ""
    if shares:
        top = max(shares, key=lambda row: row.per_job_mb.max or 0)
        where = f" at concurrency {top.level}" if top.level is not None else f" ({top.stage})"
        memory = (f"; each job's share of the memory above idle was at most {fmt(top.per_job_mb.max, 'mb')} MB"
                  f"{where} (median {fmt(top.per_job_mb.median, 'mb')} MB over {plural(top.per_job_mb.n, 'instant')})")
    return (f"While generating videos, the deployment (all services together) peaked at "
            f"{fmt(deployment.rss_peak_mb, 'mb')} MB resident memory and {cpu}{memory}.")


def _latency_sentence(metrics: RunMetrics) -> str:
    if not metrics.latency:
        return "No API latency was measured."
    return "API latency, answered probes only: " + " ".join(
        _endpoint_sentence(endpoint) for endpoint in metrics.latency)


def _integrity_sentence(metrics: RunMetrics) -> str:
    without = metrics.jobs_without_video
    if not metrics.videos:
        return (_first_up(videos_sentence(metrics.videos_passed, without)) + " for integrity." if without else
                "No generated video was checked for integrity.")
    beside = f"; {ended_without_video(without)}" if without else ""
    return (f"{rate_text(metrics.videos_passed)} downloaded videos passed every integrity check (decodable H.264 and "
            f"audio, expected resolution, durations consistent){beside}.")


def _reliability_sentences(metrics: RunMetrics) -> list[str]:
    group = metrics.sequential
    return [
        _verified_sentence(f"Over {plural(group.jobs, 'sequential run')}", group)
        if group and group.jobs else "No sequential run was recorded.",
        _integrity_sentence(metrics),
    ]


def for_a_paper(metrics: RunMetrics) -> str:
    sentences = [
        _response_time_sentence(metrics),
        *_concurrency_sentences(metrics),
        _resource_sentence(metrics),
        _throughput_sentence(metrics),
        _latency_sentence(metrics),
        *_reliability_sentences(metrics),
    ]
    caveat = ("**This run was interrupted**: these statements cover only what was measured before it stopped."
              if metrics.interrupted else "")
    return section(
        "For a paper",
        "Statements filled in with this run's figures (each one shown in the sections above); a success is a "
        "verified video; a figure that was not measured is said to be missing rather than given.",
        caveat,
        "\n".join(f"- {sentence}" for sentence in sentences),
    )


# ---- reports ------------------------------------------------------------------------------------

Section = Callable[[RunMetrics], str]


@dataclass(frozen=True)
class Report:
    title: str
    sections: tuple[Section, ...]
    measures: tuple[str, ...] = ()  # the stages whose measurements it reports (none: always published)


REPORTS: dict[str, Report] = {
    "integration_performance_report.md": Report(
        "Integration performance report", (stage_outcomes, single_request, concurrent_runs, api_latency, for_a_paper),
        ("single", "concurrent", "latency")),
    "integration_reliability_report.md": Report(
        "Integration reliability report",
        (stage_outcomes, sequential_reliability, status_tracking, video_integrity, failures, expectation_outcomes)),
    "integration_resources_report.md": Report(
        "Integration resources report",
        (baseline_resources, resource_usage, per_job_memory, machine_totals), ("baseline", "single", "concurrent")),
    "test_service_verification.md": Report("Test: service verification", (service_verification,)),
    "test_baseline_resources.md": Report("Test: baseline resources", (baseline_resources, machine_totals),
                                         ("baseline",)),
    "test_single_request.md": Report("Test: single request", (single_request,), ("single",)),
    "test_concurrent_runs.md": Report("Test: concurrent runs", (concurrent_runs, concurrent_jobs, per_job_memory),
                                      ("concurrent",)),
    "test_api_latency.md": Report("Test: API latency", (api_latency,), ("latency",)),
    "test_sequential_reliability.md": Report(
        "Test: sequential reliability", (sequential_reliability, status_tracking, failures), ("sequential",)),
    "test_video_integrity.md": Report("Test: video integrity", (video_integrity,), ("single", "concurrent",
                                                                                  "sequential")),
}


def render_reports(metrics: RunMetrics) -> dict[str, str]:
    """Every report as Markdown, keyed by file name."""
    return {
        name: "\n\n".join([header(metrics, report.title), *(part(metrics) for part in report.sections)]) + "\n"
        for name, report in REPORTS.items()
    }


def measured(metrics: RunMetrics, report: Report) -> bool:
    """Whether the run holds measurements of any stage the report is about (a run that stopped at
    verification measured no performance)."""
    held = {
        "baseline": bool(metrics.baseline_usage), "single": bool(metrics.jobs_of("single")),
        "concurrent": bool(metrics.levels), "latency": bool(metrics.latency),
        "sequential": bool(metrics.jobs_of("sequential")),
    }
    return not report.measures or any(held.get(stage) for stage in report.measures)
