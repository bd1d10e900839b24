"""Retention: the videos of old runs are deleted, so a nightly deployment does not fill the disk.

Only the MP4 files of a run folder go (videos/ and faults/ alike). Everything its reports are rendered from
stays: the ledger, the Parquet tables with every video's SHA-256 and integrity row, the manifest and the
checks. The manifest records what was pruned and when (analysis.retention), and the run's reports are rendered
again, so they say so.

Runs are the folders of results_dir with a manifest, newest first by their recorded start. Retention counts the
runs of one plan (analysis.plans: the same profile, workload and rounds or soak duration): at the end of a
campaign, the `keep` most recent runs of ITS plan keep their videos and no other run is touched, so the nightly
soak's setting never prunes a smoke or a manual run that shares its results_dir; `python -m artifacts prune` keeps
the `keep` most recent of each plan. Never pruned: the current run, and a run still running, which is a run whose
campaign.lock a process holds (tasks.run.campaign_running, the one test of it). A run stored before that lock
existed has none: with no end recorded, it is taken to be running while its folder was written to within
`running_if_written_within_s` (a run killed long ago has no end either).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from analysis.plans import plan_of
from analysis.retention import PRUNED
from profiles.settings import Retention
from tasks.store import MANIFEST, read_json, write_json

VIDEO_PATTERN = "*.mp4"


class StoredRun(BaseModel):
    path: Path
    manifest: dict
    started: float  # the manifest's started_at as epoch seconds (the manifest's mtime where it has none)

    @property
    def finished(self) -> bool:
        return bool(self.manifest.get("finished_at"))


class Pruned(BaseModel):
    run_dir: Path
    files: int  # deleted (or, in a dry run, to delete)
    bytes: int
    # what went wrong: "videos/x.mp4: Permission denied" (a file not deleted), reports that could not be rendered
    problems: list[str] = []


def _epoch(iso) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if isinstance(iso, str) else None
    except ValueError:
        return None


def stored_runs(results_dir: Path) -> list[StoredRun]:
    """The run folders of `results_dir` (a folder with a readable manifest), newest start first; anything else
    there is not a run and is left alone."""
    runs = []
    for folder in sorted(Path(results_dir).iterdir()) if Path(results_dir).is_dir() else []:
        path = folder / MANIFEST
        try:
            manifest = read_json(path, None) if folder.is_dir() else None
            started = _epoch(manifest.get("started_at")) if isinstance(manifest, dict) else None
            if isinstance(manifest, dict):
                runs.append(StoredRun(path=folder, manifest=manifest,
                                      started=started if started is not None else path.stat().st_mtime))
        except (OSError, ValueError):  # a manifest being written, or damaged: not a run retention can reason about
            continue
    return sorted(runs, key=lambda run: (run.started, run.path.name), reverse=True)


def last_written(folder: Path) -> float:
    """The newest modification time of anything in the folder (the ledger grows while a run measures)."""
    times = [folder.stat().st_mtime]
    for path in folder.rglob("*"):
        try:
            times.append(path.stat().st_mtime)
        except OSError:  # deleted meanwhile
            continue
    return max(times)


def still_running(run: StoredRun, now: float, within_s: float) -> bool:
    """Its campaign.lock is held; for a run stored before the lock existed (none), no end and written to within
    `within_s`. A lock that cannot be opened counts as held: a run retention cannot judge keeps its videos."""
    if run.finished:
        return False
    from tasks.run import LOCK, campaign_running  # imported here: tasks.run loads Great Expectations

    if (run.path / LOCK).exists():
        try:
            return campaign_running(run.path)
        except OSError:
            return True
    return now - last_written(run.path) < within_s


def plan_key(run: StoredRun) -> str:
    return json.dumps(plan_of(run.manifest), sort_keys=True, default=str)


def beyond_keep(runs: list[StoredRun], keep: int, plan: str | None = None) -> list[StoredRun]:
    """The runs (newest first) that are not among the `keep` most recent of their plan; with `plan`, of that plan
    only."""
    seen: dict[str, int] = {}
    older = []
    for run in runs:
        key = plan_key(run)
        if plan is not None and key != plan:
            continue
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > keep:
            older.append(run)
    return older


def prune_videos(results_dir: Path, keep: int, *, current: Path | None = None,
                 running_within_s: float = Retention().running_if_written_within_s, dry_run: bool = False,
                 now: float | None = None) -> list[Pruned]:
    """Delete the MP4 files of every run but the `keep` most recent of its plan (with `current`, of the current run's
    plan only), never the current one nor one still running; note it in each pruned run's manifest. `dry_run`
    deletes and notes nothing. Returns what was (or would be) pruned, oldest run last. ValueError for `keep` < 1: 0
    is no way to say "keep all" (that is not pruning)."""
    if keep < 1:
        raise ValueError(f"keep must be 1 or more, got {keep}")
    now = time.time() if now is None else now
    skip = current.resolve() if current is not None else None
    runs = stored_runs(results_dir)
    plan = None
    if skip is not None:
        this = next((run for run in runs if run.path.resolve() == skip), None)
        if this is None:  # the current run has no readable manifest: nothing says which runs are of its plan
            return []
        plan = plan_key(this)
    pruned = []
    for run in beyond_keep(runs, keep, plan):
        if run.path.resolve() == skip or still_running(run, now, running_within_s):
            continue
        videos = [path for path in sorted(run.path.rglob(VIDEO_PATTERN)) if path.is_file()]
        if not videos:
            continue
        sizes = {path: path.stat().st_size for path in videos}
        failed = []
        if not dry_run:
            for path in videos:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    failed.append(f"not deleted: {path.relative_to(run.path)}: {exc.strerror or exc}")
                    sizes.pop(path)
        files, size = len(sizes), sum(sizes.values())
        if files and not dry_run:
            manifest = read_json(run.path / MANIFEST, {})  # as it is now, not as listed
            before = manifest.get(PRUNED) if isinstance(manifest.get(PRUNED), dict) else {}
            write_json(run.path / MANIFEST, {**manifest, PRUNED: {
                "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
                "files": files + int(before.get("files") or 0),
                "bytes": size + int(before.get("bytes") or 0), "keep": keep}})
        if files and not dry_run and (run.path / "reports").is_dir():
            failed += rewrite_reports(run.path)
        pruned.append(Pruned(run_dir=run.path, files=files, bytes=size, problems=failed))
    return pruned


def rewrite_reports(run_dir: Path) -> list[str]:
    """Render a pruned run's reports again, so they say its videos were pruned; [why not] when that failed."""
    from artifacts.publish import write_reports  # imported here: artifacts.compare imports this module

    try:
        write_reports(run_dir)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:  # a damaged file in an old run folder
        return [f"reports not rendered again: {type(exc).__name__}: {exc}"]
    return []


def pruned_line(pruned: Pruned, dry_run: bool = False) -> str:
    """"runs/20261120T020000Z-ab12: 14 videos, 12.4 MB pruned" (and the files that could not be deleted)."""
    failed = f"; {'; '.join(pruned.problems)}" if pruned.problems else ""
    return (f"{pruned.run_dir}: {pruned.files} {'video' if pruned.files == 1 else 'videos'}, "
            f"{pruned.bytes / 2 ** 20:.1f} MB {'would be pruned' if dry_run else 'pruned'}{failed}")


@task(name="prune-old-videos", cache_policy=NO_CACHE)
def prune_old_videos(results_dir: Path, retention: Retention, current_run: str) -> int:
    """Retention at the end of a campaign: prune the videos of old runs as the profile says; returns the runs
    pruned. A file that cannot be deleted is reported, never fails the campaign that measured."""
    logger = get_run_logger()
    if retention.keep_videos_of_runs is None:  # retention off
        return 0
    try:
        pruned = prune_videos(results_dir, retention.keep_videos_of_runs, current=Path(current_run),
                              running_within_s=retention.running_if_written_within_s)
    except OSError as exc:
        logger.warning("retention: could not prune the videos of old runs in %s: %s", results_dir, exc)
        return 0
    for run in pruned:
        logger.info("retention: %s", pruned_line(run))
    logger.info("retention: the %d most recent runs of this profile and plan in %s keep their videos; %d older "
                "runs pruned",
                retention.keep_videos_of_runs, results_dir, len(pruned))
    return len(pruned)
