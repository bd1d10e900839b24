"""A run folder belongs to one campaign: a run id whose folder exists is refused, and the folder left as it was."""

from __future__ import annotations

import json

import pytest

from tasks.run import RunRefused, new_run_folder, run_folder


def snapshot(folder):
    return {path.relative_to(folder): (path.stat().st_mtime_ns, path.read_bytes())
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def old_run(tmp_path):
    run = tmp_path / "nightly"
    (run / "reports").mkdir(parents=True)
    (run / "measurements.jsonl").write_text('{"table": "jobs", "job_id": "a"}\n')
    (run / "manifest.json").write_text('{"outcome": "measured"}')
    (run / "reports" / "integration_performance_report.md").write_text("# old figures\n")
    return run


def test_a_new_run_id_gets_a_new_folder(tmp_path):
    assert run_folder(tmp_path, "run-1") == tmp_path / "run-1" and not (tmp_path / "run-1").exists()
    assert new_run_folder(tmp_path, "run-1").is_dir()


def test_a_taken_run_id_is_refused_and_its_folder_untouched(old_run):
    before = snapshot(old_run)
    for check in (run_folder, new_run_folder):
        with pytest.raises(RunRefused) as refused:
            check(old_run.parent, "nightly")
        message = str(refused.value)
        assert "run id 'nightly' is taken" in message and str(old_run) in message
        assert f"--resume {old_run}" in message
    assert snapshot(old_run) == before


@pytest.mark.parametrize("run_id", ["../elsewhere", "a/b", ".hidden", "", "two words"])
def test_a_run_id_that_is_not_a_plain_name_is_refused(tmp_path, run_id):
    with pytest.raises(RunRefused, match="letters, digits"):
        new_run_folder(tmp_path / "runs", run_id)
    assert not (tmp_path / "runs").exists()


def test_the_campaign_refuses_a_taken_run_id_before_anything_starts(prefect_server, old_run, caplog):
    from flows.full_suite import full_suite

    before = snapshot(old_run)
    state = full_suite(profile="smoke", overrides=[f'results_dir="{old_run.parent}"'], run_id="nightly",
                       return_state=True)
    assert state.is_failed() and state.message.startswith("run id 'nightly' is taken")
    assert "Traceback" not in caplog.text  # bad input from the run form is one line, not a traceback
    assert snapshot(old_run) == before
    assert sorted(path.name for path in old_run.parent.iterdir()) == ["nightly"]


def test_resuming_a_folder_whose_manifest_is_damaged_is_refused_in_one_line(old_run, capsys):
    from flows.full_suite import main

    (old_run / "manifest.json").write_text('{"outcome": "running", "invocation": {"profile": "sm')  # cut mid-write
    before = snapshot(old_run)
    assert main(["--resume", str(old_run)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "manifest.json: not readable as JSON (Unterminated string" in line and "cannot be resumed" in line
    assert snapshot(old_run) == before


@pytest.mark.parametrize(("given", "refusal"), [
    ({"profile": "seed"}, "resume continues nightly with its own profile 'smoke': profile 'seed' cannot go with it"),
    ({"run_id": "other"}, "resume continues nightly in its own folder: run id 'other' cannot go with it"),
])
def test_a_resume_refuses_a_profile_or_run_id_other_than_its_campaigns(prefect_server, old_run, caplog, given,
                                                                      refusal):
    """From the run form a resume given another profile ran the recorded one while the UI showed the one given."""
    from flows.full_suite import full_suite

    (old_run / "manifest.json").write_text(json.dumps({"outcome": "running",
                                                       "invocation": {"profile": "smoke", "overrides": []}}))
    before = snapshot(old_run)
    state = full_suite(**given, resume=str(old_run), return_state=True)
    assert state.is_failed() and state.message.startswith(refusal)
    assert "Traceback" not in caplog.text
    assert snapshot(old_run) == before
