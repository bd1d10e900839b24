"""Putting a run in front of people: report files on disk and Prefect artifacts in the UI.

Artifact keys carry the profile (`smoke-integration-performance-report`), so a smoke run never becomes
the seed campaign's latest report. An interrupted run publishes its artifacts without a key: Prefect keeps
them on the flow run only, so a run cut short never becomes its profile's latest report. Only reports
about something the run measured are published as artifacts (a run that stopped at verification
publishes its verification and reliability reports, never an empty performance report over the last real
one); every report is still written to the run folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from analysis.metrics import RunMetrics, metrics_of
from artifacts.compare import no_previous_text, previous_run, write_comparison
from artifacts.figures import left_out, write_figures
from artifacts.html import to_html
from artifacts.latex import write_latex_tables
from artifacts.markdown import REPORTS, main_tables, measured, render_reports
from artifacts.tables_csv import write_csv_tables

PROGRESS_KEY = "campaign-progress"


def artifact_key(name: str, profile: str | None) -> str:
    """(`integration_performance_report.md`, `smoke`) → `smoke-integration-performance-report`: Prefect keys
    allow lowercase letters, digits and dashes only; a profile given as a path keeps its file stem."""
    stem = re.sub(r"[^a-z0-9]+", "-", Path(name).stem.lower()).strip("-")
    prefix = re.sub(r"[^a-z0-9]+", "-", Path(profile or "unnamed").stem.lower()).strip("-") or "unnamed"
    return f"{prefix}-{stem}"


def published_key(name: str, metrics: RunMetrics) -> str | None:
    """The key a report or table of this run is published under: its profile's key for a run that reached its
    end, none for an interrupted run (a keyless artifact stays on its flow run, never the latest of a key)."""
    return None if metrics.interrupted else artifact_key(name, metrics.profile_name)


def start_progress(total_jobs: int, profile: str | None = None, rounds: int | None = 1) -> str:
    """The campaign's progress artifact: a share of the jobs planned (rounds), or of the soak's time."""
    planned = f"Jobs finished out of {total_jobs} planned" + (f" in {rounds} rounds" if rounds and rounds > 1 else "")
    return str(create_progress_artifact(0.0, key=artifact_key(PROGRESS_KEY, profile),
                                        description=planned if rounds else "Time elapsed of the soak's duration"))


def report_progress(progress_id: str | None, percent: float, where: str) -> None:
    """Move the progress artifact to `percent` done, described by where the campaign is ('round 2 of 3,
    concurrent: 7/18 jobs done; the 11 jobs left: about 3 min 10 s')."""
    if progress_id is None:
        return
    update_progress_artifact(progress_id, min(100.0, max(0.0, percent)), description=where)


def write_reports(run_dir: Path, metrics: RunMetrics | None = None, for_prefect: bool = False) -> dict[str, str]:
    """Render every report from the run's figures into `reports/` (md + html, the figures as PNG and SVG, the
    main tables as LaTeX and CSV); returns the reports by file name, as written (figures linked relative to
    the report), or `for_prefect` as its artifacts show them (figures named by their absolute path)."""
    metrics = metrics or metrics_of(run_dir)
    out = run_dir / "reports"
    out.mkdir(parents=True, exist_ok=True)
    figures, unreported = write_figures(metrics, out), left_out(metrics)
    write_latex_tables(metrics, out)
    write_csv_tables(metrics, out)
    reports = render_reports(metrics, figures, unreported)
    for name, markdown in reports.items():
        (out / name).write_text(markdown, encoding="utf-8")
        (out / name).with_suffix(".html").write_text(to_html(markdown, REPORTS[name].title), encoding="utf-8")
    return render_reports(metrics, figures, unreported, reports_dir=out) if for_prefect else reports


@task(name="publish-reports", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, timeout_seconds=600)
def publish_reports(run_dir: str) -> list[str]:
    """Write the reports and publish what the run measured as Prefect artifacts, keyed by profile unless the
    run was interrupted."""
    folder = Path(run_dir)
    metrics = metrics_of(folder)
    reports = write_reports(folder, metrics, for_prefect=True)
    cut_short = " (interrupted)" if metrics.interrupted else ""
    for name, markdown in reports.items():
        if measured(metrics, REPORTS[name]):
            create_markdown_artifact(markdown, key=published_key(name, metrics),
                                     description=f"{name} of run {folder.name}{cut_short}")
    for key, rows in main_tables(metrics).items():
        if rows:
            create_table_artifact(rows, key=published_key(key, metrics),
                                  description=f"{key} of run {folder.name}{cut_short}")
    get_run_logger().info("reports written to %s", folder / "reports")
    return sorted(str(folder / "reports" / name) for name in reports)


@task(name="publish-comparison", cache_policy=NO_CACHE, timeout_seconds=600)
def publish_comparison(run_dirs: list[str], name: str = "comparison") -> str:
    """Compare stored runs (the first the baseline; artifacts.compare), write the report into the last run's
    reports/ and publish it as a markdown artifact keyed `<profile of the last run>-<name>` (no key when that run
    was interrupted, like its reports). Returns the Markdown report's path; NotARun or ValueError (fewer than two
    runs) fail the task with what is wrong."""
    folders = [Path(run_dir) for run_dir in run_dirs]
    path = write_comparison(folders)
    metrics = metrics_of(folders[-1])
    cut_short = " (interrupted)" if metrics.interrupted else ""
    create_markdown_artifact(path.read_text(encoding="utf-8"), key=published_key(name, metrics),
                             description=f"runs {', '.join(folder.name for folder in folders)} compared{cut_short}")
    get_run_logger().info("comparison written to %s", path)
    return str(path)


@task(name="compare-with-previous", cache_policy=NO_CACHE, timeout_seconds=600)
def publish_comparison_with_previous(run_dir: str) -> str | None:
    """Compare the run with the previous run of its profile and plan that reached its end (artifacts.compare) and
    publish it through publish_comparison, as `<profile>-comparison-with-previous`; a run with none says so in the
    log, and an earlier run that cannot be read is reported, never failing the campaign that measured. Returns the
    Markdown report's path."""
    folder, logger = Path(run_dir), get_run_logger()
    try:
        previous = previous_run(folder)
    except (OSError, ValueError) as exc:  # a results_dir that cannot be listed
        logger.warning("no comparison with the previous run: %s: %s", type(exc).__name__, exc)
        return None
    if previous is None:
        logger.info("%s", no_previous_text(folder))
        return None
    try:
        return publish_comparison([str(previous), run_dir], name="comparison-with-previous")
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:  # a damaged or half-written earlier run
        logger.warning("no comparison with the previous run %s: %s: %s", previous, type(exc).__name__, exc)
        return None
