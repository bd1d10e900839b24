"""Putting a run in front of people: report files on disk and Prefect artifacts in the UI."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from artifacts.render import REPORTS, main_tables, render_reports, to_html
from tasks.store import CHECKS, MANIFEST, Ledger, load_tables, read_json

PROGRESS_KEY = "integration-campaign-progress"


def artifact_key(report_name: str) -> str:
    """`integration_performance_report.md` → `integration-performance-report` (the stable UI key)."""
    return Path(report_name).stem.replace("_", "-").lower()


def start_progress(total_jobs: int) -> str:
    return str(create_progress_artifact(0.0, key=PROGRESS_KEY,
                                        description=f"Jobs finished out of {total_jobs} planned"))


def report_progress(run_dir: str, progress_id: str | None, total_jobs: int) -> None:
    """Move the progress artifact to the share of planned jobs recorded so far."""
    if progress_id is None or total_jobs <= 0:
        return
    done = Ledger.of(run_dir).count("jobs")
    update_progress_artifact(progress_id, min(100.0, 100.0 * done / total_jobs),
                             description=f"{done} of {total_jobs} jobs finished")


def write_reports(run_dir: Path) -> dict[str, str]:
    """Render every report from the run's stored tables, manifest and checks into `reports/` (md + html)."""
    reports = render_reports(load_tables(run_dir), read_json(run_dir / MANIFEST, {}), read_json(run_dir / CHECKS, []))
    out = run_dir / "reports"
    out.mkdir(parents=True, exist_ok=True)
    for name, markdown in reports.items():
        (out / name).write_text(markdown, encoding="utf-8")
        (out / name).with_suffix(".html").write_text(to_html(markdown, REPORTS[name].title), encoding="utf-8")
    return reports


@task(name="publish-reports", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, timeout_seconds=600)
def publish_reports(run_dir: str) -> list[str]:
    """Write the reports and publish them as Prefect artifacts under stable keys, with the main tables."""
    folder = Path(run_dir)
    reports = write_reports(folder)
    for name, markdown in reports.items():
        create_markdown_artifact(markdown, key=artifact_key(name), description=f"{name} of run {folder.name}")
    for key, rows in main_tables(load_tables(folder)).items():
        if rows:
            create_table_artifact(rows, key=key, description=f"{key} of run {folder.name}")
    get_run_logger().info("reports written to %s", folder / "reports")
    return sorted(str(folder / "reports" / name) for name in reports)
