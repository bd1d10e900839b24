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
ONCE_AFTER = ("conformance", "faults")  # after the last round
JOB_STAGES = ("single", "concurrent", "sequential")  # the stages whose jobs are under test
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


# tables whose every row belongs to one stage, though they have no stage column
STAGE_OF_TABLE = {"latency": "latency", "services": "verification", "contract_probes": "conformance",
                  "faults": "faults", "fault_events": "faults"}


def set_aside_reruns(frames: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """(counted, set aside): every table's rows split by one rule, the same for the figures (analysis.metrics) and
    the expectations (tasks.run). A stage cut by a crash is run again from its start, so its rows of the cut
    attempt (the jobs it had finished as well as those in flight, its batches, probes, samples, videos, status
    answers) are set aside: for each (round, stage), rows from an attempt earlier than the last attempt that ran
    it are not counted; its re-run counts in their place. A table with neither round, attempt nor a stage (its
    own column or STAGE_OF_TABLE), and a stage that never ran again, keep every row."""
    stages = frames.get("stages")
    if stages is None or not stages.height or not {"round", "attempt", "stage"} <= set(stages.columns):
        return dict(frames), {}
    last = stages.group_by("round", "stage").agg(last_attempt=pl.col("attempt").max())
    counted, aside = {}, {}
    for name, table in frames.items():
        stage = pl.col("stage") if "stage" in table.columns else \
            pl.lit(STAGE_OF_TABLE[name]) if name in STAGE_OF_TABLE else None
        if stage is None or not table.height or not {"round", "attempt"} <= set(table.columns):
            counted[name] = table
            continue
        earlier = (table.select("round", "attempt", _stage=stage).with_row_index("_row")
                   .join(last, left_on=["round", "_stage"], right_on=["round", "stage"], how="left")
                   .sort("_row")
                   .select((pl.col("attempt") < pl.col("last_attempt")).fill_null(False))
                   .to_series())
        counted[name] = table.filter(~earlier)
        if earlier.any():
            aside[name] = table.filter(earlier)
    return counted, aside


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
