"""A run's folder: the ledger every measurement is appended to as it is taken, then Parquet + manifest.

The ledger (`measurements.jsonl`) is written line by line and flushed at once, so a crash, a kill or a
timeout loses nothing already measured; the Parquet tables are derived from it at the end (and can be
derived again from it with `rebuild_tables`).
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from analysis.conformance import conformance_rows
from analysis.faults import fault_rows
from analysis.schema import ROUND_COLUMNS, TABLES, conform, frame
from profiles.redact import redact

LEDGER = "measurements.jsonl"
MANIFEST = "manifest.json"
CHECKS = "checks.json"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


class Ledger:
    """Append-only JSON-lines record of one run, shared by every thread of the process.

    It carries where the campaign is: `round` (set by the flow as each round starts) and `attempt` (1, +1 per
    resume), stamped on every row recorded unless the row gives its own, so no measuring code passes them on."""

    _open: dict[Path, Ledger] = {}
    _registry_lock = threading.Lock()

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = (run_dir / LEDGER).open("a", encoding="utf-8")
        if torn_end(run_dir / LEDGER):  # a crash mid-write: the next row starts a line of its own, or both are lost
            self._file.write("\n")
        self._counts: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._round, self._attempt = 1, 1
        # a ledger inside a run's folder (the fault experiments' faults/) is in that run's round and attempt
        self._run: Ledger | None = None

    @property
    def round(self) -> int:
        return self._run.round if self._run else self._round

    @round.setter
    def round(self, value: int) -> None:
        self._round = value

    @property
    def attempt(self) -> int:
        return self._run.attempt if self._run else self._attempt

    @attempt.setter
    def attempt(self, value: int) -> None:
        self._attempt = value

    @classmethod
    def of(cls, run_dir: str | Path) -> Ledger:
        """The one ledger of this run folder (tasks in several threads append to the same file)."""
        key = Path(run_dir).resolve()
        with cls._registry_lock:
            if key not in cls._open or cls._open[key]._file.closed:
                ledger = cls(key)
                ledger._run = next((run for folder, run in cls._open.items()
                                    if folder in key.parents and not run._file.closed), None)
                cls._open[key] = ledger
            return cls._open[key]

    def record(self, table: str, **row) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        stamp = {name: getattr(self, name) for name in ROUND_COLUMNS if row.get(name) is None}
        line = redact(json.dumps({"table": table, **row, **stamp}, default=str))  # nothing secret is written
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            self._counts[table] += 1

    def count(self, table: str) -> int:
        """Rows this process has recorded in `table` so far (for progress reporting)."""
        return self._counts[table]

    def close(self) -> None:
        with self._lock:
            self._file.close()


def torn_end(path: Path) -> bool:
    """Whether the file's last line has no end (a process killed while writing it)."""
    with path.open("rb") as file:
        if file.seek(0, 2) == 0:
            return False
        file.seek(-1, 2)
        return file.read(1) != b"\n"


def read_ledger(run_dir: Path) -> dict[str, list[dict]]:
    """Rows per table from the ledger; a torn last line (a crash mid-write) is skipped, not fatal."""
    rows: dict[str, list[dict]] = {name: [] for name in TABLES}
    path = run_dir / LEDGER
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict):  # a damaged line that happens to parse ("12", "null"): no row either
            continue
        table = row.pop("table", None)
        if table in rows:
            rows[table].append(row)
    return rows


# a job is one slot of one batch of a stage, in one round, in one attempt of the campaign: a stage cut by a crash
# and run again on resume gives new rows (attempt + 1), so the cut job stays recorded as interrupted
JOB_KEY = ("round", "attempt", "stage", "level", "batch", "slot")


def job_key(row: dict) -> tuple:
    """A job row's key; a row from before rounds existed is round 1, attempt 1."""
    return tuple(row.get(name) or 1 if name in ROUND_COLUMNS else row.get(name) for name in JOB_KEY)


def latest_job_rows(rows: list[dict]) -> list[dict]:
    """One row per job: a job is recorded when submitted and again as its outcome becomes known, so each
    JOB_KEY is its rows merged in order, later fields winning; first-seen order is kept."""
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = job_key(row)
        merged[key] = {**merged.get(key, {}), **row}
    return list(merged.values())


def rebuild_tables(run_dir: Path) -> dict[str, pl.DataFrame]:
    """Write `<table>.parquet` for every table from the ledger and return the frames; the derived `conformance`
    table is computed from the others (analysis.conformance), never read from the ledger, and with the status
    answers and videos of the ledgers inside the run folder (the fault experiments' faults/): the contract's rules
    check their jobs, which are in no table of the run and so in no figure."""
    ledger = read_ledger(run_dir)
    ledger["jobs"] = latest_job_rows(ledger["jobs"])
    # the fault experiments' figures come from what they saw (older runs recorded only the figures)
    ledger["faults"] = fault_rows(ledger["fault_events"]) or ledger["faults"]
    frames = {name: frame(name, rows) for name, rows in ledger.items()}
    inner = [read_ledger(path.parent) for path in sorted(run_dir.glob(f"*/{LEDGER}"))]
    outside = {name: frame(name, [row for rows in inner for row in rows[name]]) for name in ("status_trace", "videos")}
    frames["conformance"] = frame("conformance", conformance_rows(frames, outside))
    for name, df in frames.items():
        df.write_parquet(run_dir / f"{name}.parquet")
    return frames


def load_tables(run_dir: Path) -> dict[str, pl.DataFrame]:
    """The stored tables of a run (Parquet), each with its schema even when empty."""
    paths = {name: run_dir / f"{name}.parquet" for name in TABLES}
    # conform: a run stored before a column existed (round, attempt) still reads in today's shape
    return {name: conform(name, pl.read_parquet(path)) if path.exists() else frame(name, [])
            for name, path in paths.items()}


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(redact(json.dumps(data, indent=2, default=str)), encoding="utf-8")  # nothing secret is written
    tmp.replace(path)


def read_json(path: Path, default=None):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default
