"""Retention on temporary run folders with dummy MP4 files (pure filesystem, no service): the N most recent runs
keep their videos, the current and a running run are never pruned, the manifest notes it, reports still render."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path

import polars as pl
import pytest

from analysis.metrics import metrics_of
from artifacts.__main__ import main
from profiles.settings import ProfileError, load_profile
from tasks.retention import prune_videos, stored_runs

STORED = Path(__file__).parent / "data" / "run"
DAY_S = 24 * 3600.0
VIDEO_BYTES = 1000


def run_folder(results: Path, name: str, started_at: str | None, finished: bool = True, tables: bool = False,
               profile_name: str = "local", soak_s: float | None = None) -> Path:
    """A run folder with a manifest and two dummy videos (one in faults/), the stored run's tables if asked; a run of
    profile `profile_name`, one round or a soak of `soak_s`."""
    folder = results / name
    if tables:
        shutil.copytree(STORED, folder)
        manifest = json.loads((folder / "manifest.json").read_text())
    else:
        folder.mkdir(parents=True)
        manifest = {"profile_name": profile_name, "outcome": "measured",
                    "profile": {"name": profile_name, "campaign": {"rounds": None if soak_s else 1,
                                                                   "duration_s": soak_s}}}
    manifest.update(run_id=name, started_at=started_at,
                    finished_at=manifest.get("finished_at") or "2026-11-27T00:00:00+00:00" if finished else None)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for video in (folder / "videos" / f"{name}.mp4", folder / "faults" / "videos" / "f.mp4"):
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(b"\0" * VIDEO_BYTES)
    return folder


def videos(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.mp4"))


def age(folder: Path, seconds: float) -> None:
    """Every file of the folder last written `seconds` ago."""
    when = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (when, when))


@pytest.fixture
def results(tmp_path) -> Path:
    for day in range(1, 5):
        run_folder(tmp_path, f"run-{day}", f"2026-11-2{day}T02:00:00+00:00")
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "keep.mp4").write_bytes(b"\0")
    return tmp_path


def test_the_most_recent_runs_keep_their_videos_and_older_ones_are_noted(results):
    assert [run.path.name for run in stored_runs(results)] == ["run-4", "run-3", "run-2", "run-1"]
    pruned = prune_videos(results, keep=2)
    assert [(run.run_dir.name, run.files, run.bytes) for run in pruned] == [
        ("run-2", 2, 2 * VIDEO_BYTES), ("run-1", 2, 2 * VIDEO_BYTES)]
    assert len(videos(results / "run-4")) == len(videos(results / "run-3")) == 2
    assert videos(results / "run-2") == videos(results / "run-1") == []
    assert (results / "not-a-run" / "keep.mp4").exists()  # only run folders are touched
    note = json.loads((results / "run-1" / "manifest.json").read_text())["videos_pruned"]
    assert note["files"] == 2 and note["bytes"] == 2 * VIDEO_BYTES and note["keep"] == 2 and note["at"]
    assert "videos_pruned" not in json.loads((results / "run-4" / "manifest.json").read_text())
    assert prune_videos(results, keep=2) == []  # nothing left to prune


def test_keep_zero_is_refused_and_a_dry_run_deletes_nothing(results, capsys):
    with pytest.raises(ValueError, match="keep must be 1 or more"):
        prune_videos(results, keep=0)
    with pytest.raises(SystemExit) as refused:
        main(["prune", str(results), "--keep", "0"])
    assert refused.value.code == 2 and "--keep 0 would delete the videos of every run: give 1 or more" in \
        capsys.readouterr().err
    planned = prune_videos(results, keep=1, dry_run=True)
    assert [run.run_dir.name for run in planned] == ["run-3", "run-2", "run-1"]
    assert all(len(videos(results / f"run-{day}")) == 2 for day in range(1, 5))
    assert all("videos_pruned" not in json.loads((results / f"run-{day}" / "manifest.json").read_text())
               for day in range(1, 5))


def test_never_the_current_run_nor_one_still_running(results):
    running = run_folder(results, "run-0-running", "2026-11-20T02:00:00+00:00", finished=False)
    crashed = run_folder(results, "run-0-crashed", "2026-11-19T02:00:00+00:00", finished=False)
    age(crashed, 2 * DAY_S)  # no end, and nothing written for two days: it died long ago
    pruned = prune_videos(results, keep=1, current=results / "run-2", running_within_s=DAY_S)
    assert {run.run_dir.name for run in pruned} == {"run-3", "run-1", "run-0-crashed"}
    assert len(videos(running)) == 2 and len(videos(results / "run-2")) == 2


def test_a_held_lock_is_running_and_a_free_one_is_not(results):
    """campaign.lock decides (the time rule is for runs stored before it): a run written to a minute ago whose lock
    is free ended (killed), one untouched for two days whose lock a process holds is running."""
    held = run_folder(results, "run-0-held", "2026-11-20T02:00:00+00:00", finished=False)
    killed = run_folder(results, "run-0-killed", "2026-11-19T02:00:00+00:00", finished=False)
    (killed / "campaign.lock").touch()
    age(held, 2 * DAY_S)
    with open(held / "campaign.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        pruned = prune_videos(results, keep=1, running_within_s=DAY_S)
    assert "run-0-killed" in {run.run_dir.name for run in pruned}
    assert "run-0-held" not in {run.run_dir.name for run in pruned} and len(videos(held)) == 2


def test_a_campaign_counts_and_prunes_only_the_runs_of_its_own_plan(tmp_path):
    """The nightly soak's keep_videos_of_runs never reaches a smoke run or a one-round manual run of its profile."""
    soaks = [run_folder(tmp_path, f"soak-{day}", f"2026-11-2{day}T22:00:00+00:00", soak_s=14400.0)
             for day in range(1, 5)]
    smoke = run_folder(tmp_path, "smoke-1", "2026-11-20T03:00:00+00:00", profile_name="smoke")
    manual = run_folder(tmp_path, "manual-1", "2026-11-19T10:00:00+00:00")
    pruned = prune_videos(tmp_path, keep=2, current=soaks[-1])
    assert [run.run_dir.name for run in pruned] == ["soak-2", "soak-1"]
    assert len(videos(smoke)) == len(videos(manual)) == len(videos(soaks[2])) == 2
    # without a current run (python -m artifacts prune) each plan keeps its own most recent
    run_folder(tmp_path, "smoke-2", "2026-11-21T03:00:00+00:00", profile_name="smoke")
    assert [run.run_dir.name for run in prune_videos(tmp_path, keep=1)] == ["soak-3", "smoke-1"]
    assert len(videos(manual)) == 2  # the only run of its plan


def test_a_pruned_run_still_renders_and_says_its_videos_were_pruned(tmp_path):
    old = run_folder(tmp_path, "old", "2026-11-20T02:00:00+00:00", tables=True)
    run_folder(tmp_path, "new", "2026-11-21T02:00:00+00:00", tables=True)  # the same plan
    (old / "reports").mkdir()  # rendered when the run ended, before its videos were pruned
    hashes = pl.read_parquet(old / "videos.parquet")["sha256"].to_list()
    [pruned] = prune_videos(tmp_path, keep=1)
    assert pruned.run_dir == old and pruned.problems == []
    assert pl.read_parquet(old / "videos.parquet")["sha256"].to_list() == hashes  # hashes and integrity rows kept
    metrics = metrics_of(old)
    assert metrics.videos_pruned.startswith("videos pruned on ") and \
        metrics.videos_pruned.endswith("(2 files, 0.0 MB) by retention, hashes and integrity rows kept")
    assert len(metrics.videos) == len(hashes)  # the integrity table is still there
    # its reports were rendered again: they say the videos were pruned
    for name in ("test_video_integrity.md", "integration_performance_report.md"):
        assert f"- **Videos:** {metrics.videos_pruned} (videos.parquet)" in (old / "reports" / name).read_text()
    assert (old / "reports" / "test_video_integrity.html").is_file()


def test_the_cli_prunes_and_dry_runs(results, capsys):
    assert main(["prune", str(results), "--keep", "3", "--dry-run"]) == 0
    assert capsys.readouterr().out == f"{results / 'run-1'}: 2 videos, 0.0 MB would be pruned\n"
    assert len(videos(results / "run-1")) == 2
    assert main(["prune", str(results), "--keep", "3"]) == 0
    assert capsys.readouterr().out == f"{results / 'run-1'}: 2 videos, 0.0 MB pruned\n"
    assert main(["prune", str(results), "--keep", "3"]) == 0
    assert capsys.readouterr().out == f"nothing to prune in {results}\n"


def test_the_setting_is_a_count_of_runs_absent_keeps_all_and_zero_is_refused():
    assert load_profile("smoke").retention.keep_videos_of_runs is None
    assert load_profile("smoke", ["retention.keep_videos_of_runs=7"]).retention.keep_videos_of_runs == 7
    for refused in ("0", "-1"):
        with pytest.raises(ProfileError, match="retention.keep_videos_of_runs: must be 1 or more .*leave the key out "
                                               "to keep every run's videos"):
            load_profile("smoke", [f"retention.keep_videos_of_runs={refused}"])
