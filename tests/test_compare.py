"""Comparing stored runs (pure: no service): the stored smoke run against a copy made slower and less successful,
the intervals of a change on synthetic data, the CLI, missing figures in words, the previous run of a profile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analysis.comparison import (
    TOO_FEW,
    Change,
    Figure,
    change,
    compare,
    excludes_zero,
    quantile_difference,
    rate_difference,
)
from analysis.metrics import metrics_of
from analysis.stats import Interval, rate
from artifacts.__main__ import main
from artifacts.compare import compare_with_previous, interval_cell, previous_run, signed, write_comparison

STORED = Path(__file__).parent / "data" / "run"
SLOWER_S = 10.0  # added to every sequential job of run B: every resampled median difference is then > 0
FAILED_AT_5 = 3  # jobs of level 5 that fail in run B


def stored_copy(folder: Path, started_at: str | None = None, **manifest) -> Path:
    shutil.copytree(STORED, folder)
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.update(run_id=folder.name, **({"started_at": started_at} if started_at else {}), **manifest)
    path.write_text(json.dumps(data))
    return folder


def worse(folder: Path) -> Path:
    """Run B: sequential jobs SLOWER_S slower, FAILED_AT_5 jobs of level 5 failed (no video), no level 2, no tts
    kill experiment."""
    jobs = pl.read_parquet(folder / "jobs.parquet")
    level_5 = (pl.col("stage") == "concurrent") & (pl.col("level") == 5)
    failing = jobs.filter(level_5)["job_id"].to_list()[:FAILED_AT_5]
    jobs = jobs.filter(~((pl.col("stage") == "concurrent") & (pl.col("level") == 2))).with_columns(
        total_seconds=pl.when(pl.col("stage") == "sequential").then(pl.col("total_seconds") + SLOWER_S)
        .otherwise(pl.col("total_seconds")),
        succeeded=pl.when(pl.col("job_id").is_in(failing)).then(False).otherwise(pl.col("succeeded")),
        outcome=pl.when(pl.col("job_id").is_in(failing)).then(pl.lit("failed")).otherwise(pl.col("outcome")),
    )
    jobs.write_parquet(folder / "jobs.parquet")
    batches = pl.read_parquet(folder / "batches.parquet")
    batches.filter(~((pl.col("stage") == "concurrent") & (pl.col("level") == 2))).write_parquet(
        folder / "batches.parquet")
    videos = pl.read_parquet(folder / "videos.parquet")
    videos.filter(~pl.col("job_id").is_in(failing)).write_parquet(folder / "videos.parquet")
    faults = pl.read_parquet(folder / "faults.parquet")
    faults.filter(~((pl.col("service") == "tts") & (pl.col("fault") == "killed"))).write_parquet(
        folder / "faults.parquet")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    return (stored_copy(root / "a", "2026-11-25T02:00:00+00:00"),
            worse(stored_copy(root / "b", "2026-11-26T02:00:00+00:00")))


@pytest.fixture(scope="module")
def comparison(runs):
    return compare([metrics_of(run) for run in runs])


def row(comparison, section: str, figure: str):
    rows = next(s for s in comparison.sections if s.title == section).rows
    return next(r for r in rows if r.figure == figure)


# ---- the intervals, on synthetic data ------------------------------------------------------------

def test_a_rate_difference_is_newcombes_hybrid_score_interval():
    # Newcombe (1998), Statistics in Medicine 17:873, table II, example (a) 56/70 − 48/80, method 10
    ci = rate_difference(rate(48, 80), rate(56, 70))
    assert ci.low == pytest.approx(0.0524, abs=5e-4) and ci.high == pytest.approx(0.3339, abs=5e-4)
    assert excludes_zero(ci)
    same = rate_difference(rate(10, 10), rate(10, 10))
    assert same.low < 0 < same.high and not excludes_zero(same)  # 100 % twice is no evidence of a change
    assert rate_difference(rate(3, 4), rate(1, 4)) is None  # n < 5: Wilson gives no interval, nor does the change


def test_a_median_difference_is_bootstrapped_from_both_samples():
    rng = np.random.default_rng(1)
    base = rng.normal(10, 1, 30)
    shifted = quantile_difference(base, base + 5, 0.5)
    assert 3 < shifted.low < 5 < shifted.high < 7 and excludes_zero(shifted)
    noise = quantile_difference(base, rng.normal(10, 1, 30), 0.5)
    assert noise.low < 0 < noise.high
    assert quantile_difference(base, base[:4], 0.5) is None  # fewer than 5 on a side
    constant = quantile_difference([2.0] * 5, [3.0] * 6, 0.5)
    assert (constant.low, constant.high) == (1.0, 1.0)  # every resample gives the same difference
    assert quantile_difference(base, base, 0.5) == quantile_difference(base, base, 0.5)  # fixed seed


def test_a_change_is_significant_only_where_its_interval_excludes_zero():
    found = change(Figure(value=1.0), Figure(value=1.5), ("A", "B"), quantile_difference([1.0] * 5, [1.5] * 5, 0.5))
    assert found.absolute == 0.5 and found.relative == 0.5 and found.significant
    without = change(Figure(value=1.0), Figure(value=1.5), ("A", "B"))
    assert without.significant is None and without.no_interval == TOO_FEW
    missing = change(Figure(value=1.0), Figure(missing="no level 5"), ("A", "B"))
    assert missing.absolute is None and missing.not_comparable == "not comparable (B: no level 5)"


# ---- two stored runs ---------------------------------------------------------------------------

def test_slower_jobs_are_a_significant_change_of_the_median(comparison):
    seconds = row(comparison, "Job seconds", "median, sequential runs")
    change_b = seconds.changes[0]
    assert change_b.absolute == pytest.approx(SLOWER_S) and change_b.significant
    assert change_b.ci.low > 0
    assert any(r.figure == "median, sequential runs" for _, r, _, _ in comparison.significant())


def test_fewer_successes_change_the_rate_with_a_newcombe_interval(comparison):
    level_5 = row(comparison, "Success rate", "5 concurrent jobs")
    assert [figure.detail for figure in level_5.values] == ["5 of 5 jobs", "2 of 5 jobs"]
    assert level_5.changes[0].absolute == pytest.approx(-0.6)
    assert level_5.changes[0].ci.low < -0.6 < level_5.changes[0].ci.high
    every = row(comparison, "Success rate", "every job")
    assert every.values[1].detail == "9 of 12 jobs"  # level 2's two jobs are gone, three failed


def test_a_figure_one_run_lacks_is_not_comparable_in_words(comparison):
    level_2 = row(comparison, "Job seconds", "median, 2 concurrent jobs")
    assert level_2.values[1].value is None and level_2.values[1].missing == "no 2 concurrent jobs"
    assert level_2.changes[0].not_comparable == "not comparable (B: no 2 concurrent jobs)"
    recovery = row(comparison, "Fault recovery", "tts killed: restore → healthy")
    assert recovery.changes[0].not_comparable.startswith("not comparable (B: not run")


def test_every_headline_figure_is_compared(comparison):
    titles = [section.title for section in comparison.sections]
    assert titles == ["Success rate", "Job seconds", "Throughput", "API latency", "CPU and memory", "Video integrity",
                      "Contract conformance", "Fault recovery"]
    latency = [r.figure for r in next(s for s in comparison.sections if s.title == "API latency").rows]
    assert {"health median", "health p95", "health answered"} <= set(latency)
    resources = [r.figure for r in next(s for s in comparison.sections if s.title == "CPU and memory").rows]
    assert {"server CPU mean", "server RSS peak", "deployment RSS peak"} <= set(resources)
    assert comparison.statement is None  # both runs measured the bundled stack


def test_the_report_marks_significant_changes_and_says_what_is_missing(runs, tmp_path):
    path = write_comparison(list(runs), tmp_path / "out")
    assert path == tmp_path / "out" / "comparison_a_b.md" and path.with_suffix(".html").is_file()
    text = path.read_text()
    assert "| median, sequential runs | s | 0.77 (n=5) | 10.77 (n=5) | +10.00 s (" in text
    assert "**yes**" in text and "- B: Job seconds, median, sequential runs: +10.00 s" in text
    assert "not comparable (B: no 2 concurrent jobs)" in text
    assert "Resource samples are a time series, not independent draws: no interval." in text


def test_the_cli_prints_the_path_of_the_markdown_it_wrote(runs, capsys):
    assert main(["compare", *map(str, runs)]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == runs[1] / "reports" / "comparison_a_b.md" and printed.is_file()
    with pytest.raises(SystemExit) as refused:
        main(["compare", str(runs[0])])
    assert refused.value.code == 2 and "two or more run folders" in capsys.readouterr().err
    assert main(["compare", str(runs[0]), str(runs[0] / "nothing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_bundled_stack_against_a_real_deployment_says_which_is_which(tmp_path):
    real = stored_copy(tmp_path / "seed", profile_name="seed")
    manifest = json.loads((real / "manifest.json").read_text())
    manifest["profile"]["target"] = {"bundled_stack": False, "server_url": "http://localhost:8000"}
    manifest["services"]["server"]["url"] = "http://localhost:8000"
    manifest["services"]["llm_model"] = "qwen3:4b"
    (real / "manifest.json").write_text(json.dumps(manifest))
    found = compare([metrics_of(STORED), metrics_of(real)])
    assert [side.bundled for side in found.runs] == [True, False]
    assert "run A (profile smoke) measured the bundled stack (server http://127.0.0.1:56017, llm " \
           "extractive-planner), which is a stand-in, not a mock" in found.statement
    assert "Run B (profile seed) measured the deployment at http://localhost:8000 (llm qwen3:4b)" in found.statement
    assert "comparison between the mocked and the real system" in found.statement
    assert any("different profiles (smoke, seed)" in note for note in found.notes)


def test_the_previous_run_is_the_last_finished_one_of_the_same_profile(tmp_path):
    older = stored_copy(tmp_path / "1-older", "2026-11-20T02:00:00+00:00")
    previous = stored_copy(tmp_path / "2-previous", "2026-11-21T02:00:00+00:00")
    stored_copy(tmp_path / "3-interrupted", "2026-11-22T02:00:00+00:00", outcome="interrupted")
    stored_copy(tmp_path / "4-other-profile", "2026-11-23T02:00:00+00:00", profile_name="local")
    current = stored_copy(tmp_path / "5-current", "2026-11-24T02:00:00+00:00")
    stored_copy(tmp_path / "6-later", "2026-11-25T02:00:00+00:00")
    other_plan = stored_copy(tmp_path / "4b-other-plan", "2026-11-23T03:00:00+00:00")
    settings(other_plan, concurrency_levels=[1, 2], sequential_jobs=2)
    (tmp_path / "not-a-run").mkdir()
    assert previous_run(current) == previous  # not the later run of the same name with another workload
    assert previous_run(older) is None
    assert compare_with_previous(older) is None
    path = compare_with_previous(current)
    assert path == current / "reports" / "comparison_2-previous_5-current.md" and path.is_file()


def test_a_flow_publishes_the_comparison_with_the_previous_run(prefect_server, tmp_path):
    from prefect import flow
    from prefect.artifacts import Artifact

    from artifacts.publish import publish_comparison, publish_comparison_with_previous

    previous = stored_copy(tmp_path / "previous", "2026-11-21T02:00:00+00:00")
    current = worse(stored_copy(tmp_path / "current", "2026-11-22T02:00:00+00:00"))
    first = stored_copy(tmp_path / "first-of-its-profile", "2026-11-23T02:00:00+00:00", profile_name="local")

    @flow
    def campaign_end(run_dirs: list[str]) -> list[str | None]:
        return [publish_comparison_with_previous(run_dir) for run_dir in run_dirs]

    written = campaign_end([str(current), str(first)])
    assert written == [str(current / "reports" / "comparison_previous_current.md"), None]
    published = Artifact.get("smoke-comparison-with-previous")
    assert published.type == "markdown" and "- B: Job seconds, median, sequential runs: +10.00 s" in published.data
    assert Artifact.get("local-comparison-with-previous") is None

    @flow
    def comparing(run_dirs: list[str]) -> str:  # a comparison made inside any flow is an artifact too
        return publish_comparison(run_dirs)

    assert comparing([str(first), str(previous)]) == str(previous / "reports" / "comparison_first-of-its-profile_"
                                                         "previous.md")
    assert "different profiles (local, smoke)" in Artifact.get("smoke-comparison").data


def test_the_nightly_soak_deployment_compares_with_the_previous_run_and_prunes_old_videos():
    """prefect.yaml as `prefect deploy` reads it (Prefect's own model of the file), its soak's parameters as the
    flow validates them, and its profile with the overrides as the campaign loads them."""
    import yaml
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint

    from profiles.settings import load_profile

    root = Path(__file__).resolve().parents[1]
    deployments = {d.name: d for d in PrefectYamlModel.model_validate(
        yaml.safe_load((root / "prefect.yaml").read_text())).deployments}
    soak = deployments["nightly-soak"]
    flow = load_flow_from_entrypoint(str(root / soak.entrypoint))
    parameters = flow.validate_parameters(soak.parameters)
    assert parameters["compare_with_previous"] is True and parameters["duration"] == "4h"
    settings = load_profile(parameters["profile"], parameters["overrides"])
    assert settings.name == "local" and settings.retention.keep_videos_of_runs > 0
    [schedule] = soak.schedules
    assert CronSchedule(cron=schedule.cron, timezone=schedule.timezone).timezone == "UTC"


def test_runs_of_different_round_counts_are_said_to_pool_their_rounds():
    one = metrics_of(STORED)
    soak = one.model_copy(update={"rounds": one.rounds.model_copy(update={"count": 12})})
    [note] = compare([one, soak]).notes
    assert note.startswith("The runs have different numbers of rounds (A: 1, B: 12): each figure pools")


def settings(run_dir: Path, sha256: str = "0" * 64, **workload) -> Path:
    """The run's manifest as if its profile had other workload settings (and so another profile_sha256)."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["profile"]["workload"].update(workload)
    manifest["environment"]["profile_sha256"] = sha256
    path.write_text(json.dumps(manifest))
    return run_dir


def test_a_shared_profile_name_with_other_settings_is_said_and_each_setting_named(tmp_path):
    stored = stored_copy(tmp_path / "stored", "2026-11-20T02:00:00+00:00")
    today = settings(stored_copy(tmp_path / "today", "2026-11-27T02:00:00+00:00"), concurrency_levels=[1, 2],
                     sequential_jobs=2)
    manifest = json.loads((today / "manifest.json").read_text())
    manifest["profile"]["target"]["redis_url"] = "redis://:hunter2@redis.example:6379/0"
    (today / "manifest.json").write_text(json.dumps(manifest))
    text = write_comparison([stored, today]).read_text()
    assert "Runs A and B both used profile smoke, but not with the same settings (profile sha256 df7c77edabb7 in A, " \
           "000000000000 in B)" in text
    assert "- workload.concurrency_levels: [1, 2, 5] in A, [1, 2] in B" in text
    assert "- workload.sequential_jobs: 5 in A, 2 in B" in text
    assert "target.redis_url: null in A, " in text and "hunter2" not in text  # secrets masked
    assert "profile sha256" not in write_comparison([stored, stored_copy(tmp_path / "same")]).read_text()


def test_a_change_that_rounds_to_zero_shows_no_sign():
    assert [signed(value, "s") for value in (-0.001, 0.001, -0.35, 1.2)] == ["0.00", "0.00", "−0.35", "+1.20"]
    assert signed(-0.0004, "rate") == "0.0" and signed(-0.5, "int") == "0"
    near_zero = Change(absolute=-2.0, ci=Interval(low=-5.058, high=-0.013), significant=True)
    assert interval_cell(near_zero, "ms") == "−5.058 to −0.013"  # a significant interval never reads "to 0.0"


def test_a_fault_reads_its_last_result_worded_by_its_state():
    """A faults stage cut and run again has two results of an experiment: the last one counts; one not measured
    says why by its state (interrupted is not 'could not be run')."""
    stored = metrics_of(STORED)
    tts_killed = next(f for f in stored.faults if (f.service, f.fault) == ("tts", "killed"))
    cut = tts_killed.model_copy(update={"state": "interrupted", "recovered": None, "recovery_s": None,
                                        "first_success_s": None, "detail": "interrupted by the run's stop"})
    not_run = tts_killed.model_copy(update={"state": "not_run", "recovered": None, "recovery_s": None,
                                            "first_success_s": None, "detail": "tts could not be killed"})
    others = [f for f in stored.faults if f is not tts_killed]
    resumed = stored.model_copy(update={"faults": [cut, *others, tts_killed]})  # cut, then run again
    runs = [stored.model_copy(update={"faults": [cut, *others]}), resumed,
            stored.model_copy(update={"faults": [not_run, *others]})]
    values = row(compare(runs), "Fault recovery", "tts killed: restore → healthy").values
    assert values[0].missing == "injected, interrupted before recovery was measured: interrupted by the run's stop"
    assert values[1].value == tts_killed.recovery_s
    assert values[2].missing == "could not be run: tts could not be killed"
