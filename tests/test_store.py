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


def test_a_ledger_reopened_after_a_torn_line_keeps_its_next_row_and_skips_damage(tmp_path):
    """kill -9 mid-write leaves a last line with no end: a resumed campaign's first row must not be glued to it."""
    (tmp_path / LEDGER).write_text('{"table": "jobs", "job_id": "a", "stage": "single"}\n12\nnull\n'
                                   '{"table": "jobs", "job_id": "to\xe9rn', encoding="latin-1")  # not UTF-8 either
    Ledger(tmp_path).record("jobs", job_id="b", stage="single")  # a new process's ledger, as after a resume
    assert [row["job_id"] for row in read_ledger(tmp_path)["jobs"]] == ["a", "b"]


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


def test_every_row_carries_the_round_and_attempt_the_ledger_is_in(tmp_path):
    ledger = Ledger.of(tmp_path)
    ledger.record("latency", endpoint="health", i=0, ms=1.0)
    ledger.round, ledger.attempt = 2, 3
    ledger.record("latency", endpoint="health", i=0, ms=2.0)
    ledger.record("latency", endpoint="health", i=1, ms=3.0, round=1)  # a row that gives its own round keeps it
    Ledger.of(tmp_path / "faults").record("faults", service="tts", fault="killed")  # a run's sub-ledger follows it
    latency = rebuild_tables(tmp_path)["latency"]
    assert latency.select("round", "attempt", "ms").rows() == [(1, 1, 1.0), (2, 3, 2.0), (1, 3, 3.0)]
    [fault] = read_ledger(tmp_path / "faults")["faults"]
    assert (fault["round"], fault["attempt"]) == (2, 3)


def test_a_job_cut_by_a_crash_and_its_rerun_on_resume_are_two_rows(tmp_path):
    ledger = Ledger.of(tmp_path)
    ledger.round = 2
    key = {"stage": "concurrent", "level": 2, "batch": 0, "slot": 1}
    ledger.record("jobs", job_id="cut", outcome="running", **key)  # then kill -9
    ledger.record("jobs", job_id="done", outcome="running", **{**key, "round": 1})
    ledger.record("jobs", outcome="succeeded", succeeded=True, **{**key, "round": 1})
    ledger.attempt = 2  # resumed: the cut job is closed, then its stage is run again
    ledger.record("jobs", outcome="interrupted", **key, attempt=1)
    ledger.record("jobs", job_id="rerun", outcome="succeeded", succeeded=True, **key)
    jobs = rebuild_tables(tmp_path)["jobs"]
    assert jobs.select("job_id", "round", "attempt", "outcome").rows() == [
        ("cut", 2, 1, "interrupted"), ("done", 1, 1, "succeeded"), ("rerun", 2, 2, "succeeded")]


def test_a_run_stored_before_rounds_reads_as_round_one(tmp_path):
    old = pl.DataFrame({"stage": ["single"], "outcome": ["completed"]})
    old.write_parquet(tmp_path / "stages.parquet")
    (tmp_path / LEDGER).write_text('{"table": "jobs", "job_id": "a", "stage": "single", "outcome": "succeeded"}\n')
    assert load_tables(tmp_path)["stages"].select("round", "attempt", "stage").rows() == [(1, 1, "single")]
    assert rebuild_tables(tmp_path)["jobs"].select("round", "attempt").rows() == [(1, 1)]
