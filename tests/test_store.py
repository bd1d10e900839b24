"""The run folder: nothing measured is lost, and reports can be rendered again from it alone."""

import json

import polars as pl

from artifacts.__main__ import main as render_again
from artifacts.markdown import REPORTS
from tasks.store import LEDGER, Ledger, load_tables, read_ledger, rebuild_tables


def test_ledger_survives_a_torn_last_line_and_keeps_every_table(tmp_path):
    ledger = Ledger.of(tmp_path)
    assert Ledger.of(tmp_path) is ledger  # one writer per run folder, shared by every task thread
    ledger.record("latency", endpoint="health", i=0, ms=1.5, status_code=200, ok=True)
    ledger.record("jobs", job_id="a", stage="single", status="completed", succeeded=True, total_seconds=3.0)
    with (tmp_path / LEDGER).open("a") as raw:
        raw.write('{"table": "jobs", "job_id": "torn')  # a crash mid-write
    assert ledger.count("jobs") == 1
    rows = read_ledger(tmp_path)
    assert [row["job_id"] for row in rows["jobs"]] == ["a"] and rows["videos"] == []

    frames = rebuild_tables(tmp_path)
    assert frames["jobs"]["total_seconds"].to_list() == [3.0]
    assert load_tables(tmp_path)["videos"].columns == frames["videos"].columns  # empty, but its schema
    assert pl.read_parquet(tmp_path / "latency.parquet")["ms"].to_list() == [1.5]


def test_reports_render_again_from_a_cut_short_run(tmp_path, capsys):
    ledger = Ledger.of(tmp_path / "run")
    ledger.record("services", service="redis", url="redis://x", ok=True, version="7.2", detail="ok", fix="")
    ledger.record("jobs", job_id="j1", stage="single", level=1, batch=0, status="completed", succeeded=True,
                  submitted_at=0.0, finished_at=4.0, total_seconds=4.0, video_seconds=20.0)
    (tmp_path / "run" / "manifest.json").write_text(json.dumps({"run_id": "run", "profile_name": "local"}))
    assert render_again([str(tmp_path / "run")]) == 0
    report = (tmp_path / "run" / "reports" / "integration_performance_report.md").read_text()
    assert "4.00" in report and (tmp_path / "run" / "jobs.parquet").exists()
    assert len(capsys.readouterr().out.splitlines()) == len(REPORTS)


def test_rendering_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path, capsys):
    assert render_again([str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
