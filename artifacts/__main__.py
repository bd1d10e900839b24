"""`python -m artifacts RUN_DIR`: render a run's reports again from its stored data, without Prefect.

Every figure in a report is recomputed from the run folder. A run that was cut short (no Parquet
tables yet) gets its tables rebuilt from its ledger first, so what it measured is still reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from artifacts.publish import write_reports
from tasks.store import LEDGER, rebuild_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m artifacts", description=__doc__.splitlines()[0])
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


if __name__ == "__main__":
    sys.exit(main())
