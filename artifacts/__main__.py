"""`python -m artifacts RUN_DIR`: render a run's reports again from its stored data, without Prefect.

Every figure in a report is recomputed from the run folder. A run that was cut short (no Parquet
tables yet) gets its tables rebuilt from its ledger first, so what it measured is still reported.

`python -m artifacts compare RUN_A RUN_B [RUN_C ...]` writes a comparison of stored runs (artifacts/compare.py)
and prints the path of its Markdown report; `python -m artifacts prune RESULTS_DIR --keep N` deletes the videos
of all but the N most recent runs of each plan, keeping their hashes and integrity rows (tasks/retention.py). A run
folder named like a subcommand is rendered as `./compare`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from artifacts.compare import NotARun, compare_with_previous, no_previous_text, write_comparison
from artifacts.publish import write_reports
from profiles.settings import Retention
from tasks.retention import prune_videos, pruned_line
from tasks.store import LEDGER, rebuild_tables

COMMANDS = ("compare", "prune")


def render(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m artifacts", description=__doc__.splitlines()[0],
                                     epilog="Also: python -m artifacts compare --help, python -m artifacts prune "
                                     "--help")
    parser.add_argument("run_dir", type=Path, help="a run folder, e.g. runs/20261124T031500Z-ab12")
    parser.add_argument("--rebuild", action="store_true",
                        help="rebuild the Parquet tables from the ledger even when they exist")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir
    if not (run_dir / LEDGER).is_file() and not list(run_dir.glob("*.parquet")):
        print(f"artifacts: {run_dir} is not a run folder (no {LEDGER}, no tables)", file=sys.stderr)
        return 2
    if args.rebuild or not list(run_dir.glob("*.parquet")):
        rebuild_tables(run_dir)
    try:
        reports = write_reports(run_dir)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:  # a damaged file in the run folder
        print(f"artifacts: cannot render {run_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for name in reports:
        print(run_dir / "reports" / name)
    return 0


def compare(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m artifacts compare",
        description="Compare stored runs: every headline figure side by side, the change from the first run, its "
        "95 %% CI and whether it is significant (Markdown and HTML). Prints the Markdown report's path.")
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                        help="run folders, the first the baseline (two or more; one with --previous)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write the report here (default: the last run's reports/ folder)")
    parser.add_argument("--previous", action="store_true",
                        help="compare the one run given with the previous run of its profile and plan (workload, "
                        "rounds or soak duration) that reached its end in the same results folder")
    args = parser.parse_args(argv)
    if args.previous and (len(args.run_dirs) != 1 or args.out):
        parser.error("--previous takes one run folder and writes into its reports/ (no --out)")
    if not args.previous and len(args.run_dirs) < 2:
        parser.error("give two or more run folders (or one with --previous)")
    try:
        path = compare_with_previous(args.run_dirs[0]) if args.previous else write_comparison(args.run_dirs, args.out)
    except NotARun as exc:
        print(f"artifacts compare: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:  # a damaged file in a run folder
        print(f"artifacts compare: cannot compare: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if path is None:
        print(f"artifacts compare: {no_previous_text(args.run_dirs[0])}", file=sys.stderr)
        return 1
    print(path)
    return 0


def prune(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m artifacts prune",
        description="Delete the videos (*.mp4) of all but the N most recent runs of each profile and plan (the "
        "same workload and rounds or soak duration) in a results folder, keeping their hashes and integrity rows; "
        "each pruned run's manifest notes it, and its reports say so. A run still running is never pruned.")
    parser.add_argument("results_dir", type=Path, help="the profile's results_dir, e.g. runs")
    parser.add_argument("--keep", type=int, required=True, metavar="N",
                        help="how many most recent runs of each profile and plan keep their videos, 1 or more (as "
                        "the setting retention.keep_videos_of_runs)")
    parser.add_argument("--dry-run", action="store_true", help="only print what would be pruned")
    parser.add_argument("--running-within-s", type=float, metavar="SECONDS",
                        default=Retention().running_if_written_within_s,
                        help="a run stored before campaign.lock existed (no lock) with no end, written to within "
                        "this many seconds, is taken to be still running; a run with a lock is running while a "
                        "process holds it (default: %(default)g, as retention.running_if_written_within_s)")
    args = parser.parse_args(argv)
    if args.keep < 1:
        parser.error(f"--keep {args.keep} would delete the videos of every run: give 1 or more (the most recent "
                     "runs of each plan that keep theirs); to keep every run's videos, do not prune")
    if not args.results_dir.is_dir():
        parser.error(f"{args.results_dir} is not a folder")
    try:
        pruned = prune_videos(args.results_dir, args.keep, running_within_s=args.running_within_s,
                              dry_run=args.dry_run)
    except OSError as exc:
        print(f"artifacts prune: {exc}", file=sys.stderr)
        return 1
    for run in pruned:
        print(pruned_line(run, args.dry_run))
    if not pruned:
        print(f"nothing to prune in {args.results_dir}")
    return 1 if any(run.problems for run in pruned) else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return {"compare": compare, "prune": prune}[argv[0]](argv[1:])
    return render(argv)


if __name__ == "__main__":
    sys.exit(main())
