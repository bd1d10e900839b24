"""A run's Markdown reports, rendered from its `RunMetrics` only (analysis.metrics computes every figure).

The report structure lives in Jinja2 templates (artifacts/templates): one template per report, built
from one template per section, so a new section is a template. This module holds what the templates
call: the one number format (`fmt`), tables (`table`, the column lists, the row builders) and the
sentences worded once for several sections (`headline`, `success_text`, the paper's statements). A
figure that was not measured shows "—" and its sentence says so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel

from analysis.faults import FaultResult
from analysis.metrics import (
    Endpoint,
    Incident,
    Job,
    JobGroup,
    RunMetrics,
    StageOutcome,
    ci_text,
    ended_without_video,
    listed,
    plural,
    videos_sentence,
)
from analysis.rounds import JOB_STAGES
from analysis.stats import CI_MIN_N, P95_MIN_N, P99_MIN_N, Distribution, Rate
from analysis.trends import MIN_POINTS
from artifacts.paper_tables import (  # the main tables' columns and rows, for the templates too
    CONFORMANCE_COLUMNS,  # noqa: F401
    FAULT_COLUMNS,  # noqa: F401
    MARKDOWN,
    OUTCOME_WORDS,
    TREND_METHOD,
    USAGE_COLUMNS,
    VIDEO_COLUMNS,  # noqa: F401
    Column,
    conformance_rows,  # noqa: F401
    main_table,
    outcomes_text,
    paper_tables,
    usage_rows,
)

if TYPE_CHECKING:  # drawing needs matplotlib; rendering only reads a drawn figure's fields
    from artifacts.figures import DrawnFigure, LeftOut

MISSING = "—"
NOT_REPORTED = "not reported"
DECIMALS = {"s": 2, "ms": 1, "pct": 1, "mb": 1, "ratio": 2}
NUMERIC = {*DECIMALS, "rate", "int"}
HASH_PREFIX = 12
PHASES = ("script", "audio", "visual", "compose")  # the job table's phase columns (<phase>_s), after queued
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
    if kind == "ci":  # a Distribution: its interval, worded with the statistic it is of
        return interval(value)
    if kind == "rate_ci":  # a Rate: its Wilson interval in percent
        return ci_text(value.ci, _shown("rate")) if value.ci else None
    if kind == "median_n":  # a Distribution: its median with its n (and interval)
        return median_cell(value)
    if kind == "name":
        return PurePath(value).name
    if kind == "value":
        text = f"{value:.4g}" if isinstance(value, float) else value if isinstance(value, str) else json.dumps(
            value, default=str)
        return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"
    return value


def fmt(value, kind: str = "text") -> str:
    """The one number format: "s"/"ratio" 2 decimals, "ms"/"pct"/"mb" 1, "rate" (0..1) as percent with 1;
    "hash" a prefix, "id" as is, "name" a file name, "value" any JSON-ish value; "ci" a Distribution's interval,
    "rate_ci" a Rate's, "median_n" a Distribution's median with its n; missing → "—"."""
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
    return f"{rate_text(group.success)} verified{stuck_text(group)}{not_counted(group)}"


def stuck_text(group: JobGroup) -> str:
    """"; 1 never started (stuck pending)": jobs the server left pending are failures, named apart from the rest."""
    return f"; {group.stuck_pending} {OUTCOME_WORDS['stuck_pending']}" if group.stuck_pending else ""


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


def _shown_cell(value, column: Column, unreported: dict[str, str]) -> str:
    return NOT_REPORTED if _missing(value) and column.reports in unreported else fmt(value, column.kind)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def field(row: dict | BaseModel, key: str):
    """A row's value for a column: rows are dicts or the metrics' own models."""
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


def table(columns: list[Column], rows: list[dict | BaseModel], none: str = "No data.",
          unreported: dict[str, str] | None = None) -> str:
    """A Markdown table of the columns the reports show (numbers right-aligned), or `none` in italics when there
    are no rows. An empty cell of a column whose server field is `unreported` reads "not reported" instead of "—"."""
    if not rows:
        return f"_{none}_"
    columns = [column for column in columns if MARKDOWN in column.outputs]
    lines = [
        "| " + " | ".join(column.header for column in columns) + " |",
        "|" + "|".join("---:" if column.kind in NUMERIC else "---" for column in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(_shown_cell(field(row, c.name), c, unreported or {})) for c in columns) + " |"
              for row in rows]
    return "\n".join(lines)


def _first_up(text: str) -> str:
    """A clause as the start of a sentence (str.capitalize would lower the rest)."""
    return text[:1].upper() + text[1:]


def cpu_scale(metrics: RunMetrics) -> str:
    cores = metrics.machine.cpu_count
    if cores is None:
        return "CPU is in % of one core (100 = one core busy; the machine's core count was not recorded)."
    return CPU_SCALE.format(cores=cores, top=cores * 100)


# ---- the reports' own tables (the main tables are artifacts.paper_tables') -----------------------

JOB_COLUMNS = [
    Column("job_id", "job"), Column("document", "document", "name"), Column("outcome", "outcome"),
    Column("server_status", "server status"), Column("total_seconds", "end-to-end s", "s"),
    Column("queued_s", "queued s", "s"),
    *(Column(f"{phase}_s", f"{phase} s", "s", reports="phase") for phase in PHASES),
    Column("processing_seconds", "server s", "s", reports="processing_time_seconds"),
    Column("reported_video_seconds", "reported video s", "s", reports="video.duration_seconds"),
    Column("decoded_video_seconds", "decoded video s", "s"), Column("scenes", "scenes", "int", reports="script_scenes"),
    Column("failure", "failure"),
]
BATCH_COLUMNS = [Column("level", "level", "int"), Column("batch", "batch", "int")]
def job_rows(metrics: RunMetrics, stage: str) -> list[dict]:
    rows = []
    for job in metrics.jobs_of(stage):
        row = job.model_dump()
        if job.status_from_trace:
            row["server_status"] = f"{job.server_status} (last seen)"
        rows.append(row)
    return rows


def report_table(metrics: RunMetrics, key: str, none: str) -> str:
    """A main table (artifacts.paper_tables) as the reports show it."""
    shown = main_table(metrics, key)
    return table(shown.columns, shown.rows, none, metrics.unreported)


def main_tables(metrics: RunMetrics) -> dict[str, list[dict]]:
    """The main tables as the reports show them, rows keyed by column header, for Prefect table artifacts."""
    return {shown.key: [{c.header: plain(row.get(c.name), c.kind) for c in shown.columns_of(MARKDOWN)}
                        for row in shown.rows]
            for shown in paper_tables(metrics) if shown.key != "environment"}


STAGE_COLUMNS = [Column("stage", "stage"), Column("outcome", "outcome"), Column("seconds", "seconds", "s"),
                 Column("detail", "detail")]
SERVICE_COLUMNS = [Column("service", "service"), Column("url", "url"), Column("ok", "ok"),
                   Column("version", "version"), Column("detail", "detail"), Column("fix", "fix")]
TRACKING_COLUMNS = [Column("stage", "stage"), Column("jobs", "jobs (n)", "int"),
                    Column("tracked", "tracked correctly", "int"), Column("accuracy", "accuracy %", "rate"),
                    Column("observations", "status observations", "int")]
TRACKING_PROBLEM_COLUMNS = [Column("job_id", "job"), Column("stage", "stage"), Column("outcome", "outcome"),
                            Column("observations", "observations", "int"),
                            Column("tracking_problems", "tracking problems")]
FAILURE_COLUMNS = [Column("job_id", "job"), Column("stage", "stage"), Column("level", "level", "int"),
                   Column("outcome", "outcome"), Column("server_status", "server status"),
                   Column("failure", "failure")]
CHECK_COLUMNS = [Column("suite", "suite"), Column("expectation", "expectation"), Column("column", "column"),
                 Column("result", "result"), Column("observed", "observed", "value"),
                 Column("expected", "expected", "value"), Column("details", "details", "value")]
MACHINE_COLUMNS = [Column("service", "stage"), *USAGE_COLUMNS[1:4],
                   Column("rss_mean_mb", "memory in use mean MB", "mb"),
                   Column("rss_peak_mb", "memory in use peak MB", "mb")]


def concurrent_job_rows(metrics: RunMetrics) -> list[dict]:
    return sorted(job_rows(metrics, "concurrent"),
                  key=lambda row: (row["level"] or 0, row["round"] or 0, row["attempt"] or 0, row["batch"] or 0))


def job_columns(metrics: RunMetrics, columns: list[Column]) -> list[Column]:
    """A table of jobs with, first, the round (a campaign of several) and the attempt (jobs of several starts of the
    campaign) each was run in; a run of one round and one start reads as before."""
    where = [Column("round", "round", "int")] if multi_round(metrics) else []
    if len({job.attempt for job in metrics.jobs}) > 1:
        where.append(Column("attempt", "attempt", "int"))
    return where + columns


def tracking_rows(metrics: RunMetrics) -> list[dict]:
    return [{"stage": row.stage, "jobs": row.tracked.n, "tracked": row.tracked.k, "accuracy": row.tracked.value,
             "observations": row.observations} for row in metrics.tracking]


def failed_job_rows(metrics: RunMetrics) -> list[dict]:
    """Jobs without a verified video: the job stages' first (with their last status seen), then any other."""
    failed = [row for stage in JOB_STAGES for row in job_rows(metrics, stage) if not row["succeeded"]]
    return failed + [job.model_dump() for job in metrics.jobs if not job.succeeded and job.stage not in JOB_STAGES]


def services_line(metrics: RunMetrics) -> str:
    ok = sum(service.ok for service in metrics.services)
    return f"{ok} of {len(metrics.services)} services answered as the contract expects; no load is sent otherwise."


def checks_line(metrics: RunMetrics) -> str:
    passed = sum(check.success for check in metrics.checks)
    return f"{passed} passed, {len(metrics.checks) - passed} failed."


def check_rows(metrics: RunMetrics) -> list[dict]:
    return [{**check.model_dump(), "result": "pass" if check.success else "FAIL"} for check in metrics.checks]


# ---- sentences the templates share ----------------------------------------------------------------

# services whose health answer names them (server: "service", tts: "engine" or "device") but gives no version: what
# the services table records as their version is that name, never a version
NAMED_NOT_VERSIONED = ("server", "tts")


def version_text(service: str, version: str | None) -> str:
    """A services table's version cell: "6.2.14"; for a service that reports no version, "not reported (health
    names it text-to-video)"."""
    if service not in NAMED_NOT_VERSIONED:
        return fmt(version)
    return "not reported" + (f" (health names it {version})" if version else "")


def service_rows(metrics: RunMetrics) -> list[dict]:
    return [{**check.model_dump(), "version": version_text(check.service, check.version)}
            for check in metrics.services]


def _target_version(name: str, version: str | None) -> str:
    """"version 6.2.14"; "version not reported, health names it text-to-video"."""
    if name not in NAMED_NOT_VERSIONED:
        return f"version {fmt(version)}"
    return "version not reported" + (f", health names it {version}" if version else "")


def targets_text(metrics: RunMetrics) -> str:
    parts = [f"{t.name} `{fmt(t.url)}` ({_target_version(t.name, t.version)}, {t.state})" for t in metrics.targets]
    parts += [f"{name.replace('_', ' ')} {value}" for name, value in metrics.target_notes.items()]
    return "; ".join(parts) or MISSING


def machine_text(metrics: RunMetrics) -> str:
    machine, env = metrics.machine, metrics.environment
    if machine == type(machine)():
        return MISSING
    if env.recorded:
        physical = f" ({env.cpu_physical_cores} physical)" if env.cpu_physical_cores else ""
        system = ", ".join(part for part in (env.os, env.kernel, env.architecture) if part) or MISSING
        return (f"{fmt(machine.hostname)}: {fmt(env.cpu_model)}, {fmt(env.cpu_cores, 'int')} CPU cores{physical}, "
                f"{fmt(env.memory_mb, 'mb')} MB memory; {system}; Python {fmt(env.python)}")
    return (f"{fmt(machine.hostname)}: {fmt(machine.platform)}, Python {fmt(machine.python)}, "
            f"{fmt(machine.cpu_count, 'int')} CPU cores, {fmt(machine.memory_mb, 'mb')} MB memory")


def threshold_line(metrics: RunMetrics, names: list[str]) -> str:
    """"Thresholds: <sentence>; <sentence>." for the thresholds whose name ends with one of `names`."""
    shown = [check.sentence for check in metrics.thresholds if any(check.name.endswith(n) for n in names)]
    return "Thresholds: " + "; ".join(shown) + "." if shown else ""


def endpoint_sentence(endpoint: Endpoint) -> str:
    if not endpoint.answered.n:
        return (f"{endpoint.endpoint} {endpoint.silence}: 0 of {endpoint.probes} probes answered as expected "
                f"({endpoint.error_kinds}).")
    errors = f"; {endpoint.error_count} without the expected answer ({endpoint.error_kinds})" if endpoint.errors else ""
    return f"{endpoint.endpoint}: {headline(endpoint.answered)}{errors}."


def videos_line(metrics: RunMetrics) -> str:
    """"Downloaded videos that passed every check: 5 of 5 (…); 2 jobs ended without a downloaded video (see
    Failures)." or "No video was downloaded (7 jobs ended without one), so none could be checked (see Failures)"."""
    without = metrics.jobs_without_video
    if not metrics.videos:
        return _first_up(videos_sentence(metrics.videos_passed, without)) + " (see Failures)."
    beside = f"; {ended_without_video(without)} (see Failures)" if without else ""
    return f"Downloaded videos that passed every check: {rate_text(metrics.videos_passed)}{beside}."


def _fenced(text: str, indent: str = "") -> str:
    """`text` verbatim in a code fence longer than any backtick run inside it (a log line may hold some)."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return "\n".join(indent + line for line in [fence, *text.rstrip("\n").splitlines(), fence])


def incident_item(incident: Incident) -> str:
    """One incident as a list item, with the bundled service's last log lines below it when it died."""
    item = f"- {incident.sentence}"
    if not incident.log_tail or not incident.log_tail.strip():
        return item
    return f"{item}; its log's last lines:\n\n" + _fenced(incident.log_tail, indent="  ")


# ---- reader's notes: why a cell is empty, what a figure measures ---------------------------------

def percentile_note(figures: list[Distribution]) -> str:
    """Why a percentile or interval cell is empty, when one of them is: too few values, not a lost measurement."""
    if not any(figure.p99 is None or figure.ci is None for figure in figures):
        return ""
    return (f"An empty p95, p99 or 95 % CI cell means too few values for that statistic (p95 from n ≥ {P95_MIN_N}, "
            f"p99 from n ≥ {P99_MIN_N}, an interval from n ≥ {CI_MIN_N}), not a missing measurement; a row with "
            "n = 0 had no value to summarise.")


def queueing_note(metrics: RunMetrics) -> str:
    """"Levels above 2 measure queueing" where the target's limit is known (the bundled stack's) and a level
    exceeds it; nothing for an external target, whose limit is unknown."""
    limit = metrics.max_concurrent_jobs
    above = [group.level for group in metrics.levels if limit and group.level and group.level > limit]
    if not above:
        return ""
    return (f"The bundled stack runs at most {plural(limit, 'job')} at once (profile `target.max_concurrent_jobs`): "
            f"levels above {limit} ({', '.join(map(str, above))}) measure queueing as well as generation, their job "
            "time includes the wait for a free slot.")


def unreported_notes(metrics: RunMetrics, columns: list[Column], rows: list[dict | BaseModel]) -> list[str]:
    """"The server reports no phases: time per phase not measured.": for each server field a table shows that the
    server never filled in and that no row of the table has a value of either."""
    empty = {column.reports for column in columns if column.reports in metrics.unreported}
    empty -= {column.reports for column in columns for row in rows if not _missing(field(row, column.name))}
    return [_first_up(words) + "." for name, words in metrics.unreported.items() if name in empty]


def job_table_notes(metrics: RunMetrics, jobs: list[Job]) -> list[str]:
    """Why cells of a job table are empty: the server fields it never reports, and a phase no poll saw."""
    notes = unreported_notes(metrics, JOB_COLUMNS, jobs)
    phases = [f"{phase}_s" for phase in PHASES]
    if "phase" not in metrics.unreported and any(
            job.total_seconds is not None and any(getattr(job, name) is None for name in phases) for job in jobs):
        notes.append("An empty phase cell (—): no status poll saw the job in that phase (shorter than the polling "
                     "interval, or never reached).")
    return notes


# ---- contract conformance, identical videos, faults ----------------------------------------------

# how a fault reads in a sentence, after the service's name
FAULT_WORDS = {"killed": "was killed and restarted", "frozen": "was frozen and resumed",
               "slow": "was made slow and restored", "restarted_with_jobs": "was restarted with jobs in flight",
               "killed_with_jobs": "was killed with jobs in flight and restarted"}


def conformance_summary(metrics: RunMetrics) -> str:
    """"5 of 7 checked contract rules hold; 2 rules not checked (no observation)."."""
    if not metrics.conformance:
        return "No contract rule was checked in this run."
    checked = [rule for rule in metrics.conformance if rule.checked]
    unchecked = len(metrics.conformance) - len(checked)
    if not checked:
        return f"No contract rule could be checked (0 observations of each of the {len(metrics.conformance)} rules)."
    held = sum(rule.holds for rule in checked)
    beside = f"; {plural(unchecked, 'rule')} not checked (no observation)" if unchecked else ""
    return f"{held} of {len(checked)} checked contract rules hold{beside}."


def identical_video_sentences(metrics: RunMetrics) -> list[str]:
    return [f"Jobs {listed(group)} produced byte-identical videos (the same SHA-256): a server-side cache hit? If so "
            "their job times measure the cache, not a generation (`workload.unique_documents` makes every upload "
            "unique)." for group in metrics.identical_videos]


def _fault_name(fault: FaultResult) -> str:
    """"tts was killed and restarted", "the server was killed with jobs in flight and restarted"."""
    service = "the server" if fault.service == "server" else fault.service
    words = FAULT_WORDS.get(fault.fault, f"had the fault {fault.fault}")
    if fault.fault == "frozen" and fault.injected_by == "launcher":  # how, only where we know: SIGSTOP by us
        words = "was frozen (SIGSTOP) and resumed"
    return f"{service} {words}"


def fault_sentence(fault: FaultResult) -> str:
    """"After tts was killed and restarted, the server reported healthy again after 2.10 s and the first new job
    succeeded after 9.80 s."; a fault that could not be injected says why."""
    if fault.state == "interrupted":
        return f"The experiment where {_fault_name(fault)}: injected, interrupted before recovery was measured."
    if fault.recovered is None:
        why = fault.detail or "no detail was recorded"
        return f"The experiment where {_fault_name(fault)} could not be run: {why}."
    health = (f"the server reported healthy again after {fmt(fault.recovery_s, 's')} s" if fault.recovery_s is not None
              else "the server never reported healthy again")
    job = (f"the first new job succeeded after {fmt(fault.first_success_s, 's')} s"
           if fault.first_success_s is not None else "no new job succeeded")
    verdict = "" if fault.recovered else "the deployment did not recover: "
    return f"After {_fault_name(fault)}, {verdict}{health} and {job}."


def fault_during_sentence(fault: FaultResult) -> str:
    """What the deployment did while the fault lasted: what health said, jobs failed and whether their error
    named the service, hung jobs, jobs left stuck."""
    if fault.recovered is None:
        return ""
    said = f"health said '{fault.health_during}'" if fault.health_during else "health said nothing"
    failed = plural(fault.jobs_failed_during, "job") + " failed" if fault.jobs_failed_during else "no job failed"
    if fault.submissions_refused:
        failed += f", {plural(fault.submissions_refused, 'submission')} refused"
    if fault.named_dependency is not None and (fault.jobs_failed_during or fault.submissions_refused):
        failed += f" and the job error {'named' if fault.named_dependency else 'did not name'} {fault.service}"
    hung = "; a job under the fault hung (no terminal status within its bound)" if fault.hung else ""
    stuck = (f"{plural(fault.jobs_stuck, 'job')} stayed stuck after recovery" if fault.jobs_stuck
             else "no job was left stuck")
    return f"While the fault lasted, {said} and {failed}{hung}; {stuck}."


def fault_notes(fault: FaultResult) -> str:
    """The free-form words of a measured experiment, kept out of its table row so the table stays readable:
    the error of a job under the fault, in the server's words, and what the stage noted (a not-run experiment's
    reason is its sentence already)."""
    if fault.recovered is None:
        return ""
    error = f" A job's error under the fault: “{fault.job_error_during.rstrip('.')}”." if fault.job_error_during else ""
    return error + (f" Noted: {fault.detail}." if fault.detail else "")


def faults_summary(metrics: RunMetrics) -> str:
    if not metrics.faults:
        return (f"No fault was injected: {metrics.faults_skipped}." if metrics.faults_skipped else
                "No fault experiment was recorded in this run.")
    run = [fault for fault in metrics.faults if fault.state == "measured"]
    recovered = sum(bool(fault.recovered) for fault in run)
    cut = sum(fault.state == "interrupted" for fault in metrics.faults)
    skipped = sum(fault.state == "not_run" for fault in metrics.faults)
    return (f"The deployment recovered from {recovered} of {plural(len(run), 'measured fault')}"
            + (f"; {plural(cut, 'experiment')} injected and interrupted before recovery was measured" if cut else "")
            + (f"; {plural(skipped, 'experiment')} could not be run" if skipped else "") + ".")


# ---- the environment and figures -----------------------------------------------------------------

def software_text(metrics: RunMetrics) -> str:
    """Library, FFmpeg, eSpeak NG, Redis and LLM versions, or why they are unknown."""
    env = metrics.environment
    if not env.recorded:
        return "not recorded (the run was made by a version that did not record its environment)"
    parts = [f"{name} {version or 'not installed'}" for name, version in env.packages.items()]
    parts += [f"PyAV's FFmpeg {env.pyav_ffmpeg}"] if env.pyav_ffmpeg else []
    # the bundled stack's server and tts report no version (targets_text): their parts' versions are these
    parts += ([f"the bundled tts's eSpeak NG {env.espeak_ng}"
               + (f" ({env.espeak_ng_source})" if env.espeak_ng_source else "")] if env.espeak_ng else [])
    parts += ([f"the bundled server's ffmpeg {env.stack_ffmpeg} (the server itself is this project's stack/: see "
               "Project)"] if env.stack_ffmpeg else [])
    parts += [f"Redis {env.redis}"] if env.redis else []
    if env.llm_model:
        digest = f" (digest {fmt(env.llm_digest, 'hash')})" if env.llm_digest else ""
        parts.append(f"LLM model {env.llm_model}{digest}")
    return ", ".join(parts) or MISSING


def project_version(env) -> str:
    """"t2v-bench 0.1.0 at commit 0123456789ab (with uncommitted changes)"; "t2v-bench 0.1.0, not run from a git
    checkout (no commit recorded)"."""
    version = f"t2v-bench {env.project_version}" if env.project_version else "t2v-bench (version not recorded)"
    if not env.git_commit:
        return f"{version}, not run from a git checkout (no commit recorded)"
    return (f"{version} at commit {fmt(env.git_commit, 'hash')}"
            + (" (with uncommitted changes)" if env.git_dirty else ""))


def project_text(metrics: RunMetrics) -> str:
    """"t2v-bench 0.1.0 at commit 0123456789ab (with uncommitted changes); profile sha256 abcdef012345"."""
    env = metrics.environment
    if not env.recorded:
        return "not recorded"
    return f"{project_version(env)}; profile sha256 {fmt(env.profile_sha256, 'hash')}"


# ---- for a paper ----------------------------------------------------------------------------------

def response_time_sentence(metrics: RunMetrics) -> str:
    group = metrics.single
    if group is None or not group.jobs:
        return "No single request was run, so no response time can be given."
    if not group.seconds.n:
        return (f"The single video generation request delivered no verified video ({outcomes_text(group)}), so no "
                "response time can be given.")
    rounds = len({job.round for job in metrics.jobs_of("single")})
    pooled = f", pooled over {rounds} rounds" if rounds > 1 else ""
    median = "a median of " if group.seconds.n > 1 else ""
    return (f"A single video generation request delivered a verified video in {median}"
            f"{fmt(group.seconds.median, 's')} seconds ({plural(group.seconds.n, 'request')}{pooled}).")


def pooled_single_text(metrics: RunMetrics) -> str:
    """"Pooled over 3 rounds (one single request each), 3 of 3 (100.0 %) delivered a verified video in a median of
    12.30 s (min 11.00, max 13.00, n=3)": the single request of a campaign of several (each round's own, a stage cut
    and run again counted once: its re-run)."""
    group, jobs = metrics.single, metrics.jobs_of("single")
    rounds = len({job.round for job in jobs})
    each = "one single request each" if rounds == len(jobs) else plural(len(jobs), "single request")
    lead = f"Pooled over {plural(rounds, 'round')} ({each})"
    if group is None or not group.success.n:
        return f"{lead}, no single request reached an outcome ({outcomes_text(group)})." if group else f"{lead}."
    seconds = group.seconds
    if not seconds.n:
        return f"{lead}, {rate_text(group.success)} delivered a verified video{not_counted(group)}."
    ci = [f"95 % CI {ci_text(seconds.ci, _shown('s'))}"] if seconds.ci and seconds.ci_of == "median" else []
    spread = ", ".join([f"min {fmt(seconds.min, 's')}, max {fmt(seconds.max, 's')}", *ci, f"n={seconds.n}"])
    return (f"{lead}, {rate_text(group.success)} delivered a verified video in a median of {fmt(seconds.median, 's')} "
            f"s ({spread}){not_counted(group)}.")


def _verified_sentence(lead: str, group: JobGroup) -> str:
    """"<lead>, 2 of 3 (…) jobs delivered a verified video; job time … (1 job interrupted, not counted)." or,
    when no job reached an outcome, "<lead>, no success rate can be given: 4 jobs interrupted by the run's stop"."""
    if not group.success.n:
        return (f"{lead}, no success rate can be given: {plural(group.interrupted, 'job')} interrupted by the run's "
                "stop.")
    return (f"{lead}, {rate_text(group.success)} jobs delivered a verified video"
            + (f"; job time {headline(group.seconds)}" if group.seconds.n else "") + stuck_text(group)
            + not_counted(group, "job") + ".")


def concurrency_sentences(metrics: RunMetrics) -> list[str]:
    if not metrics.levels:
        return ["No concurrent run was recorded, so no success rate under concurrency can be given."]
    return [_verified_sentence(f"With {plural(group.level, 'concurrent job')}", group) for group in metrics.levels]


def throughput_sentence(metrics: RunMetrics) -> str:
    measured_levels = [group for group in metrics.levels if group.jobs_per_minute]
    if not measured_levels:
        return "No throughput can be given: no concurrent batch delivered a verified video in a measured wall time."
    best = max(measured_levels, key=lambda group: group.jobs_per_minute)
    return (f"It reached a throughput of {fmt(best.jobs_per_minute, 'ratio')} verified videos per minute at "
            f"{plural(best.level, 'concurrent job')} ({fmt(best.video_seconds_per_wall_second, 'ratio')} seconds of "
            f"decoded video per wall second, from {plural(best.success.k, 'video')}).")


def resource_sentence(metrics: RunMetrics) -> str:
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


def latency_sentence(metrics: RunMetrics) -> str:
    if not metrics.latency:
        return "No API latency was measured."
    return "API latency, answered probes only: " + " ".join(endpoint_sentence(endpoint) for endpoint in metrics.latency)


def sequential_sentence(metrics: RunMetrics) -> str:
    group = metrics.sequential
    if not group or not group.jobs:
        return "No sequential run was recorded."
    return _verified_sentence(f"Over {plural(group.jobs, 'sequential run')}", group)


def integrity_sentence(metrics: RunMetrics) -> str:
    without = metrics.jobs_without_video
    if not metrics.videos:
        return (_first_up(videos_sentence(metrics.videos_passed, without)) + " for integrity." if without else
                "No generated video was checked for integrity.")
    beside = f"; {ended_without_video(without)}" if without else ""
    return (f"{rate_text(metrics.videos_passed)} downloaded videos passed every integrity check (decodable H.264 and "
            f"audio, expected resolution, durations consistent){beside}.")


# ---- rounds ---------------------------------------------------------------------------------------

ROUND_USAGE_COLUMNS = [Column("round", "round", "int"), *USAGE_COLUMNS]
ROUND_STAGES_TEXT = "the single request, the concurrent runs, the API latency and the sequential reliability"
LISTED_ROUNDS = 10  # up to this many rounds a sentence lists each one's figure; beyond, their range


def multi_round(metrics: RunMetrics) -> bool:
    """A campaign of several rounds: its sections pool them and a Rounds section shows each (one round: neither)."""
    return metrics.rounds.count > 1


def round_list(rounds: list[int]) -> str:
    """"round 3", "rounds 1, 2 and 4"."""
    return f"round {rounds[0]}" if len(rounds) == 1 else f"rounds {listed([str(number) for number in rounds])}"


def stages_text(metrics: RunMetrics) -> str:
    """"verification completed, single completed"; over rounds "verification completed; single completed in 4 rounds;
    latency completed in rounds 1, 2 and 3 and failed in round 4"."""
    if not multi_round(metrics):
        return ", ".join(f"{stage.stage} {stage.outcome}" for stage in metrics.stages)
    by_stage: dict[str, dict[str, list[int]]] = {}
    for stage in metrics.stages:
        by_stage.setdefault(stage.stage, {}).setdefault(stage.outcome, []).append(stage.round)
    parts = []
    for name, outcomes in by_stage.items():
        runs = sum(len(rounds) for rounds in outcomes.values())
        if runs == 1:
            parts.append(f"{name} {next(iter(outcomes))}")
        elif len(outcomes) == 1:
            parts.append(f"{name} {next(iter(outcomes))} in {runs} rounds")
        else:
            parts.append(f"{name} " + " and ".join(f"{outcome} in {round_list(rounds)}"
                                                   for outcome, rounds in outcomes.items()))
    return "; ".join(parts)


def resumed_text(metrics: RunMetrics) -> str:
    """"started 2 times (resumed once); round 2 concurrent: 2 jobs (1 succeeded, 1 interrupted) and 12 status answers
    of the cut attempt 1 are not counted: the stage was run again by attempt 2; the figures cover the whole
    campaign": each stage a crash cut and a resume ran again counts once, its re-run; a job in flight at a cut whose
    stage was not run again stays in the figures, interrupted."""
    attempts = metrics.rounds.attempts
    resumed = "once" if attempts == 2 else f"{attempts - 1} times"
    left = sum(1 for job in metrics.jobs if job.outcome == "interrupted" and job.attempt < attempts)
    kept = [f"{plural(left, 'job')} in flight when it was cut {'is' if left == 1 else 'are'} shown interrupted "
            "(not run again)"] if left else []
    return "; ".join([f"started {attempts} times (resumed {resumed})", *(run.sentence for run in metrics.cut_runs),
                      *kept, "the figures cover the whole campaign"])


def stage_columns(metrics: RunMetrics) -> list[Column]:
    return [Column("round", "round", "int"), *STAGE_COLUMNS] if multi_round(metrics) else STAGE_COLUMNS


def stage_words(metrics: RunMetrics, stage: StageOutcome) -> str:
    """"**latency**", over rounds "**latency** in round 4": a stage named in a sentence."""
    return f"**{stage.stage}**" + (f" in round {stage.round}" if multi_round(metrics) else "")


def median_cell(figure: Distribution) -> str | None:
    """"13.00 (n=2)", "13.00 (95 % CI 12.00–14.00, n=7)": a round's median with its n, and its interval where n
    supports one; None (shown "—") for no value."""
    if not figure.n:
        return None
    kind = unit_kind(figure.unit)
    ci = f"95 % CI {ci_text(figure.ci, _shown(kind))}, " if figure.ci and figure.ci_of == "median" else ""
    return f"{fmt(figure.median, kind)} ({ci}n={figure.n})"


def round_usage_rows(metrics: RunMetrics) -> list[dict]:
    return [{"round": figures.round, **row} for figures in metrics.rounds.per_round
            for row in usage_rows(figures.usage)]


def rounds_intro(metrics: RunMetrics) -> str:
    if not multi_round(metrics):
        return "The campaign ran one round."
    return (f"The campaign ran {metrics.rounds.count} rounds, each repeating {ROUND_STAGES_TEXT} (verification and "
            "baseline ran once before them). The other sections pool the rounds: every round's values together as "
            "one sample, each figure with its n and, from n ≥ 5, its 95 % CI. Here each round by the same rules (a "
            "median with its n, an interval from n ≥ 5; a round's seconds are its four stages' own spans summed, "
            "without the verification, baseline, conformance or faults run in it, waits, or the time between a crash "
            "and its resume), then the trend of each figure across the rounds.")


def pooled_sentence(metrics: RunMetrics) -> str:
    """"Pooled over 4 rounds, 7 of 8 (87.5 %, 95 % CI 52.9–97.8 %) jobs delivered a verified video; per round 100.0 %,
    100.0 %, 100.0 % and 50.0 % (n = 2, 2, 2 and 2)."."""
    rounds = metrics.rounds
    if not rounds.pooled_success.n:
        return f"Pooled over {rounds.count} rounds, no job reached an outcome."
    return (f"Pooled over {rounds.count} rounds, {rate_text(rounds.pooled_success)} jobs delivered a verified video; "
            f"per round {per_round_success(metrics)}.")


def per_round_success(metrics: RunMetrics) -> str:
    """"100.0 %, 100.0 % and 50.0 % (n = 2, 2 and 2)"; over more than LISTED_ROUNDS rounds "from 50.0 % (round 4) to
    100.0 % (n = 2 to 6)"; a round with no job that reached an outcome is left out."""
    decided = [figures for figures in metrics.rounds.per_round if figures.success.n]
    if not decided:
        return "no job reached an outcome"
    counts = [figures.success.n for figures in decided]
    if len(decided) <= LISTED_ROUNDS:
        shares = [f"{fmt(figures.success.value, 'rate')} %" for figures in decided]
        return f"{listed(shares)} (n = {listed([str(n) for n in counts])})"
    low = min(decided, key=lambda figures: figures.success.value)
    high = max(figures.success.value for figures in decided)
    n = f"n = {counts[0]} each" if len(set(counts)) == 1 else f"n = {min(counts)} to {max(counts)}"
    return (f"from {fmt(low.success.value, 'rate')} % (round {low.round}) to {fmt(high, 'rate')} % ({n}, "
            f"{len(decided)} rounds)")


def trend_method() -> str:
    return TREND_METHOD + "."


def trend_sentences(metrics: RunMetrics) -> list[str]:
    """The success trend, then job time, latency drift and RSS per service, each a sentence with its test."""
    rounds = metrics.rounds
    success = [rounds.success_trend.sentence] if rounds.success_trend else []
    return [f"{sentence}." for sentence in [*success, *(trend.sentence for trend in rounds.trends)]]


def downtime_sentences(metrics: RunMetrics) -> list[str]:
    return [wait.sentence + "." for wait in metrics.rounds.downtime]


def rounds_paper_sentences(metrics: RunMetrics) -> list[str]:
    """For a paper: the pooled success over rounds, every trend with its test, and the downtime."""
    pooled = [pooled_sentence(metrics)] if multi_round(metrics) else []
    return pooled + (trend_sentences(metrics) if multi_round(metrics) else []) + downtime_sentences(metrics)


def rounds_console(metrics: RunMetrics) -> list[tuple[str, str]]:
    """The console's (label, text) lines about rounds: success per round, the significant trends (or that none was),
    downtime."""
    rounds = metrics.rounds
    lines = []
    if multi_round(metrics):
        lines.append(("rounds", f"{rounds.count}, the figures above pool them; verified per round: "
                                f"{per_round_success(metrics)}"))
        if rounds.count < MIN_POINTS:
            lines.append(("trends", f"too few rounds for a trend ({rounds.count}; a trend needs at least "
                                    f"{MIN_POINTS})"))
        else:
            lines += [("trend", sentence) for sentence in rounds.significant] or \
                [("trends", f"no significant trend across the {rounds.count} rounds (success, job time, latency, RSS)")]
    lines += [("downtime", wait.sentence) for wait in rounds.downtime]
    return lines


# ---- reports --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    title: str
    measures: tuple[str, ...] = ()  # the stages whose measurements it reports (none: always published)
    figures: tuple[str, ...] = ()  # the figures it shows (artifacts.figures names), when they were drawn


PERFORMANCE_FIGURES = ("job_time_vs_concurrency", "job_time_cdf", "phases", "api_latency", "success_per_round",
                       "job_time_per_round")
# each report's template is artifacts/templates/<file name>.j2
REPORTS: dict[str, Report] = {
    "integration_performance_report.md": Report("Integration performance report", ("single", "concurrent", "latency"),
                                                PERFORMANCE_FIGURES),
    "integration_reliability_report.md": Report("Integration reliability report", figures=("success_per_round",)),
    "integration_resources_report.md": Report("Integration resources report", ("baseline", "single", "concurrent"),
                                              ("resources",)),
    "contract_conformance_report.md": Report("Contract conformance report", ("conformance",)),
    "test_service_verification.md": Report("Test: service verification"),
    "test_baseline_resources.md": Report("Test: baseline resources", ("baseline",), ("resources",)),
    "test_single_request.md": Report("Test: single request", ("single",), ("phases",)),
    "test_concurrent_runs.md": Report("Test: concurrent runs", ("concurrent",),
                                      ("job_time_vs_concurrency", "job_time_cdf", "job_time_per_round")),
    "test_api_latency.md": Report("Test: API latency", ("latency",), ("api_latency",)),
    "test_sequential_reliability.md": Report("Test: sequential reliability", ("sequential",)),
    "test_video_integrity.md": Report("Test: video integrity", ("single", "concurrent", "sequential")),
    "test_error_recovery.md": Report("Test: error handling and recovery", ("faults",)),
}

# what the templates call: this module's formatting helpers, sentences and column lists, by name
_TEMPLATE_GLOBALS = {
    name: value for name, value in globals().items()
    if not name.startswith("_") and (name.endswith("_COLUMNS") or getattr(value, "__module__", None) in
                                     (__name__, "artifacts.paper_tables"))
}


def _environment() -> Environment:
    # trim_blocks/lstrip_blocks: a line holding only a {% tag %} leaves nothing behind, so a template reads as
    # the Markdown it writes; StrictUndefined: a misspelt field is an error, never an empty cell
    environment = Environment(loader=PackageLoader("artifacts", "templates"), autoescape=False,
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)
    environment.globals.update(_TEMPLATE_GLOBALS)
    environment.filters.update(fmt=fmt, plural=plural, first_up=_first_up)
    return environment


TEMPLATES = _environment()


def render_reports(metrics: RunMetrics, figures: Sequence[DrawnFigure] = (),
                   left_out: Sequence[LeftOut] = (), reports_dir: Path | None = None) -> dict[str, str]:
    """Every report as Markdown, keyed by file name; `figures` are the ones drawn (artifacts.figures), each
    linked from the reports about it, and `left_out` the ones not drawn, each listed there with why. With
    `reports_dir` (for Prefect artifacts: Prefect serves no local file, so a relative link is dead in its UI)
    each figure is named by its absolute path on the machine that ran the campaign instead of linked."""
    return {name: TEMPLATES.get_template(f"{name}.j2").render(
                m=metrics, title=report.title, figures_at=reports_dir.resolve() if reports_dir else None,
                shown_figures=[figure for figure in figures if figure.name in report.figures],
                left_out_figures=[figure for figure in left_out if figure.name in report.figures])
            for name, report in REPORTS.items()}


def measured(metrics: RunMetrics, report: Report) -> bool:
    """Whether the run holds measurements of any stage the report is about (a run that stopped at
    verification measured no performance)."""
    held = {
        "baseline": bool(metrics.baseline_usage), "single": bool(metrics.jobs_of("single")),
        "concurrent": bool(metrics.levels), "latency": bool(metrics.latency),
        "sequential": bool(metrics.jobs_of("sequential")),
        "conformance": any(rule.checked for rule in metrics.conformance), "faults": bool(metrics.faults),
    }
    return not report.measures or any(held.get(stage) for stage in report.measures)
