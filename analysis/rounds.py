"""Where a campaign of rounds stands, from its ledger alone (pure): which stages are kept on resume, which jobs
and stages a crash cut, which round to start from, and how many rounds are left.

A campaign runs verification and baseline once, then rounds of ROUND_STAGES, then conformance and faults once.
A stage of a round is kept when its last row (over every attempt) says completed or failed: it ran to its end.
One whose last row is running (the process died: kill -9) or interrupted (a stop request) was cut, and is run
again on resume; the ledger is the only state, so this holds whatever killed the process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import polars as pl

from tasks.store import job_key

ROUND_STAGES = ("single", "concurrent", "latency", "sequential")
ENDED = ("completed", "failed")  # a stage that ran to its end (a failed one is a measurement too)
CUT = ("running", "interrupted")  # a stage whose end was never reached


def _round_of(row: dict) -> int:
    return row.get("round") or 1


def last_stage_rows(stage_rows: list[dict]) -> dict[tuple[int, str], dict]:
    """(round, stage) → its last recorded row, over every attempt (the ledger's order is the order of events)."""
    return {(_round_of(row), row["stage"]): row for row in stage_rows}


ALWAYS_RUN = ("verification",)  # a resumed campaign's services are new (a fresh bundled stack): verified again


def kept_stages(stage_rows: list[dict]) -> set[tuple[int, str]]:
    """(round, stage) of every stage that ran to its end: a resumed campaign does not run it again."""
    return {key for key, row in last_stage_rows(stage_rows).items()
            if row.get("outcome") in ENDED and key[1] not in ALWAYS_RUN}


def cut_stages(stage_rows: list[dict]) -> list[dict]:
    """The last row of each stage a crash left "running": it never recorded an end."""
    return [row for row in last_stage_rows(stage_rows).values() if row.get("outcome") == "running"]


def cut_jobs(job_rows: list[dict]) -> list[dict]:
    """Each job (JOB_KEY) whose rows, merged, still say "running": in flight when the process died."""
    merged: dict[tuple, dict] = {}
    for row in job_rows:
        merged[job_key(row)] = {**merged.get(job_key(row), {}), **row}
    return [row for row in merged.values() if row.get("outcome") == "running"]


def rerun_in_place(jobs: pl.DataFrame) -> pl.DataFrame:
    """The jobs a resumed campaign is judged on: a job interrupted in an earlier attempt was cut by the crash and
    its stage run again by a later attempt, whose job counts in its place (the cut one stays in the tables,
    recorded apart as interrupted)."""
    last = jobs["attempt"].max() if jobs.height else None
    return jobs.filter(~((pl.col("outcome") == "interrupted") & (pl.col("attempt") < last))) if last else jobs


def next_attempt(rows: dict[str, list[dict]]) -> int:
    """The attempt a resumed campaign records under: one more than any recorded."""
    return 1 + max((row.get("attempt") or 1 for table in rows.values() for row in table), default=0)


def round_done(kept: set[tuple[int, str]], round_: int) -> bool:
    return all((round_, stage) in kept for stage in ROUND_STAGES)


def resume_round(kept: set[tuple[int, str]], rounds: int | None, time_left: bool) -> int:
    """The round a (resumed) campaign starts in: the first whose stages are not all kept. When every recorded
    round is done, the next one if there is one to run (rounds planned, or a soak with time left), else the last
    (its kept stages are skipped; what comes after the rounds still runs in it)."""
    recorded = max((round_ for round_, _ in kept), default=0)
    for round_ in range(1, recorded + 1):
        if not round_done(kept, round_):
            return round_
    more = recorded < rounds if rounds is not None else time_left
    return recorded + 1 if more or recorded == 0 else recorded


def campaign_rounds(first: int, rounds: int | None, deadline: float | None, clock: Callable[[], float],
                    stopped: Callable[[], bool]) -> Iterator[int]:
    """The rounds to run from `first`: up to `rounds`, or, for a soak (rounds None), each next round only while
    the clock is before the deadline (the round in flight always finishes). The first is always run: a resumed
    round whose start was recorded finishes even past the deadline. None after a stop request."""
    round_ = first
    while not stopped():
        yield round_
        round_ += 1
        if (rounds is not None and round_ > rounds) or (rounds is None and (deadline is None or clock() >= deadline)):
            return


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90m', '8h', '1d', '45s' or plain seconds ('3600') → seconds; ValueError saying what is accepted."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)] if match else 0
    if seconds <= 0:
        raise ValueError(f"duration {text!r}: expected a positive number of seconds or a number with a unit, "
                         "e.g. 90m, 8h, 1d")
    return seconds
