"""Contract conformance: every rule of ../shared/CONTRACT.md checked on what the campaign observed.

`conformance_rows(frames)` turns the stored tables (the polled `status_trace`, the `contract_probes`
answers, ...) into the `conformance` table: one row per rule with how often it could be checked, how
often it was broken and one example. It is pure, so a re-render of a stored run recomputes it.

Two sources: "observed", the campaign's own traffic (every status answer of every job under test, the 202
answer to its upload included, and its decoded video), and "probe", requests the conformance stage made
only to see an answer the campaign never asks for (tasks/conformance.py, one per entry of PROBES). A rule
with 0 observations was not checked: its example then says why, and it has neither held nor failed.

"Observed" also covers jobs that are not under test, so that the rules see failed and cancelled jobs, which a
clean run's own jobs never are: the fault experiments' jobs (their own ledger, `<run>/faults/`, passed as
`outside`) and the conformance probes' job (stage PROBE_STAGE in `status_trace`). An example from one of them
names its stage and says it is not a job under test; none of them is in any figure of the campaign.

`unreported_fields(status_trace)` names the status fields the server never filled in, with what that
leaves unmeasured ("the server reports no phases: time per phase not measured").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

import polars as pl
from pydantic import BaseModel

from analysis.schema import frame
from analysis.tracking import PROMISES, STATUSES, TERMINAL, instant, parsed_time
from analysis.video import parse_resolution

OBSERVED, PROBE = "observed", "probe"
PROBE_STAGE = "conformance"  # the stage under which the probes' own job's status answers are recorded
PHASES = ("upload", "script", "audio", "visual", "compose", "done")
VIDEO_STATUSES = ("completed", "completed_with_errors")  # the statuses a job has a video with
VIDEO_FIELDS = ("video_url", "download_url", "duration_seconds", "size_bytes", "fps", "resolution", "format")
RESULT_FIELDS = ("script_scenes", "processing_time_seconds")
TIMESTAMPS = ("created_at", "updated_at", "completed_at")
SHOWN_BODY = 160  # characters of an answer's body quoted in an example


class ConformanceRule(BaseModel):
    """One rule of the contract as this run saw it (a row of `conformance.parquet`)."""

    rule: str  # what the contract promises, in words: "created_at stays as the 202 answer gave it"
    source: str  # observed (on the campaign's own traffic) | probe (a request made to check it)
    observations: int  # how many times it could be checked (0: not checked, say so)
    violations: int
    example: str | None  # one violation, in words, with its job id or request (0 observations: why not checked)

    @property
    def checked(self) -> bool:
        return self.observations > 0

    @property
    def holds(self) -> bool:
        return self.checked and self.violations == 0


class Probe(NamedTuple):
    """A request the conformance stage makes to see one answer of the contract."""

    what: str  # "cancelling a finished job"
    method: str
    expected: int  # the status code the contract gives

    @property
    def rule(self) -> str:
        return f"{self.what} answers {self.expected}"


# The probes, by the name `contract_probes.probe` records (tasks/conformance.py makes them).
PROBES: dict[str, Probe] = {
    "cancel_finished": Probe("cancelling a finished job", "POST", 409),
    "cancel_unfinished": Probe("cancelling an unfinished job", "POST", 200),
    "cancel_unknown": Probe("cancelling an unknown job", "POST", 404),
    "cancel_not_uuid": Probe("cancelling a job id that is not a UUID", "POST", 400),
    "empty_upload": Probe("an empty upload", "POST", 400),
    "download_unfinished": Probe("downloading an unfinished job's video", "GET", 400),
    "download_unknown": Probe("downloading an unknown job's video", "GET", 404),
    "status_unknown": Probe("the status of an unknown job", "GET", 404),
    "status_not_uuid": Probe("the status of a job id that is not a UUID", "GET", 422),
}

# Status fields a server may leave out (null), where they are expected, and what their absence leaves unmeasured.
_UNREPORTED: dict[str, tuple[str, str]] = {  # field → (statuses where it is expected: "any" | "processing" |
    "phase": ("processing", "the server reports no phases: time per phase not measured"),  # "terminal" | "video")
    "progress": ("any", "the server reports no progress"),
    "message": ("any", "the server reports no status messages"),
    "updated_at": ("any", "the server reports no updated_at"),
    "completed_at": ("terminal", "the server reports no completed_at: when a job ended is known only from polling"),
    "script_scenes": ("video", "the server reports no scene count"),
    "processing_time_seconds": ("video", "the server reports no processing time: only the time seen from outside "
                                         "is measured"),
    "video.duration_seconds": ("video", "the server reports no video duration: each decoded video was compared "
                                        "with its own audio only"),
    "video.size_bytes": ("video", "the server reports no video size"),
    "video.resolution": ("video", "the server reports no video resolution: videos were checked against the "
                                  "profile's expected resolution"),
    "video.fps": ("video", "the server reports no frame rate"),
}


class _Tally:
    """One rule being counted: every observation it applies to, every violation, the first one in words."""

    def __init__(self, rule: str, source: str, unchecked: str | None = None) -> None:
        self.rule, self.source, self.unchecked = rule, source, unchecked
        self.observations = self.violations = 0
        self.example: str | None = None

    def see(self, where: str, problem: str | None) -> None:
        self.observations += 1
        if problem:
            self.violations += 1
            if self.example is None:
                self.example = f"{where}: {problem}"

    def row(self) -> dict:
        example = self.example if self.observations else self.unchecked
        return {"rule": self.rule, "source": self.source, "observations": self.observations,
                "violations": self.violations, "example": example}


def _json(text: str | None):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _clock(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-4] + " UTC" if t is not None else "?"


def _answers(status_trace: pl.DataFrame, under_test: bool = True) -> dict[str, list[dict]]:
    """Each job's recorded status answers in the order they came, each with `where` (words naming it, and the
    job's stage when it is no job under test: `under_test` False, or the probes' job) and its result as an
    object."""
    jobs: dict[str, list[dict]] = {}
    for row in status_trace.sort("t", nulls_last=True).iter_rows(named=True):
        answers = jobs.setdefault(row["job_id"] or "?", [])
        kind = "the 202 answer to its upload" if row["answer"] == "submit" else f"status answer at {_clock(row['t'])}"
        apart = not under_test or row["stage"] == PROBE_STAGE
        job = f"job {row['job_id']}" + (f" (a job of the {row['stage']} stage, not under test)" if apart else "")
        answers.append({**row, "where": f"{job}, {kind}", "result": _json(row["result"])})
    return jobs


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def _missing(mapping: dict, fields: Iterable[str]) -> list[str]:
    return [field for field in fields if mapping.get(field) is None]


def _video_problem(answer: dict) -> str | None:
    result = answer["result"]
    if not isinstance(result, dict):
        return f"{answer['status']} with result {'null' if result is None else repr(result)[:60]}"
    video = result.get("video")
    if not isinstance(video, dict):
        return f"{answer['status']} with result.video {'null' if video is None else repr(video)[:60]}"
    lacking = _missing(video, VIDEO_FIELDS)
    if not lacking:
        return None
    others = [field for field in video if field not in VIDEO_FIELDS]
    has = f" (it has {', '.join(others)})" if others else ""
    return f"result.video lacks {', '.join(lacking)}{has}"


def _timestamp_problem(answer: dict) -> str | None:
    problems = []
    for field in TIMESTAMPS:
        value = answer.get(field)
        if value is None:
            continue
        moment = parsed_time(value)
        if moment is None:
            problems.append(f"{field} {value!r} is not ISO-8601")
        elif moment.tzinfo is None:
            problems.append(f"{field} {value!r} has no UTC offset")
    return "; ".join(problems) or None


def _status_rules(status_trace: pl.DataFrame, videos: pl.DataFrame, outside: dict[str, pl.DataFrame]) -> list[_Tally]:
    no_answers = "no status answer was recorded"
    types = _Tally("every status answer is a job status object with the contract's field types", OBSERVED,
                   no_answers)
    promises = [_Tally(promise.rule, OBSERVED, promise.unchecked) for promise in PROMISES]
    phase = _Tally(f"a processing job names its phase ({', '.join(PHASES)})", OBSERVED,
                   "no answer said processing or named a phase")
    created = _Tally("created_at stays as the 202 answer gave it", OBSERVED, "no job was polled after its 202 answer")
    zoned = _Tally("timestamps are ISO-8601 with a UTC offset", OBSERVED, "no answer carried a timestamp")
    early = _Tally("result is null until the job is terminal", OBSERVED, "no answer before a terminal status")
    video = _Tally(f"a completed job's result.video gives {', '.join(VIDEO_FIELDS)}", OBSERVED,
                   "no job was seen completed")
    result = _Tally(f"a completed job's result gives {' and '.join(RESULT_FIELDS)}", OBSERVED,
                    "no job was seen completed with a result")
    resolution = _Tally("result.video.resolution is the decoded video's", OBSERVED,
                        "no completed job reported a resolution and had its video decoded")
    every_video = pl.concat([videos, outside["videos"]])
    decoded = {row["job_id"]: (row["width"], row["height"]) for row in every_video.iter_rows(named=True)
               if row["width"] and row["height"]}

    for job_id, answers in {**_answers(status_trace), **_answers(outside["status_trace"], under_test=False)}.items():
        for answer in answers:
            types.see(answer["where"], answer["rejected"])
        accepted = [answer for answer in answers if answer["rejected"] is None and answer["status"] is not None]
        before: dict | None = None
        for answer in accepted:
            where = answer["where"]
            for promise, tally in zip(PROMISES, promises, strict=True):
                if promise.applies(before, answer):
                    tally.see(where, promise.problem(before, answer))
            if answer["status"] == "processing" or answer["phase"] is not None:
                phase.see(where, f"{answer['status']} with phase null" if answer["phase"] is None else
                          None if answer["phase"] in PHASES else f"unknown phase {answer['phase']!r}")
            if any(answer.get(field) is not None for field in TIMESTAMPS):
                zoned.see(where, _timestamp_problem(answer))
            if answer["status"] not in TERMINAL:
                early.see(where, None if answer["result"] is None else f"{answer['status']} with a result")
            before = answer
        if accepted:
            first = accepted[0]
            for answer in accepted[1:]:
                given, now = first["created_at"], answer["created_at"]
                changed = given is None or now is None or instant(given) != instant(now)
                said = "in the 202 answer" if first["answer"] == "submit" else "first"
                created.see(answer["where"], f"created_at {'missing' if given is None else repr(given)} {said}, now "
                                             f"{'missing' if now is None else repr(now)}" if changed else None)
        finished = [answer for answer in accepted if answer["status"] in VIDEO_STATUSES]
        if finished:
            last = finished[-1]
            video.see(last["where"], _video_problem(last))
            if isinstance(last["result"], dict):
                lacking = _missing(last["result"], RESULT_FIELDS)
                result.see(last["where"], ", ".join(f"result.{field} null" for field in lacking) or None)
            reported = _object(_object(last["result"]).get("video")).get("resolution")
            if reported is not None and job_id in decoded:
                width, height = decoded[job_id]
                try:
                    matches = parse_resolution(reported) == (width, height)
                    problem = None if matches else f"result.video.resolution {reported}, decoded video {width}x{height}"
                except ValueError:
                    problem = f"result.video.resolution {reported!r} is not WIDTHxHEIGHT"
                resolution.see(last["where"], problem)
    return [types, promises[0], phase, *promises[1:], created, zoned, early, video, result, resolution]


def _probe_rules(probes: pl.DataFrame) -> list[_Tally]:
    made = probes.sort("t", nulls_last=True).to_dicts()
    not_made = "not probed: the conformance stage made no probe" if not made else None
    tallies = []
    for name, probe in PROBES.items():
        rows = [row for row in made if row["probe"] == name]
        why = next((row["body"] for row in reversed(rows) if row["status_code"] is None), None)
        tally = _Tally(probe.rule, PROBE, not_made or (f"not probed: {why}" if why else "not probed"))
        for row in rows:
            if row["status_code"] is not None:
                answered = f"answered {row['status_code']}: {(row['body'] or '')[:SHOWN_BODY]}"
                tally.see(f"{row['method']} {row['path']}", None if row["status_code"] == probe.expected else answered)
        tallies.append(tally)
    detail = _Tally('an error answer is JSON with a "detail"', PROBE, not_made or "no probe got an error answer")
    for row in made:
        if row["status_code"] is not None and row["status_code"] >= 400:
            body = (row["body"] or "")[:SHOWN_BODY]
            detail.see(f"{row['method']} {row['path']}", None if row["detail"] is not None
                       else f"answered {row['status_code']} without a detail: {body}")
    return [*tallies, detail]


def _table(frames: dict[str, pl.DataFrame], name: str) -> pl.DataFrame:
    """A table with every column of its schema (a run stored by an older version lacks the newer ones)."""
    stored = frames.get(name)
    return frame(name, stored.to_dicts() if stored is not None else [])


def conformance_rows(frames: dict[str, pl.DataFrame], outside: dict[str, pl.DataFrame] | None = None) -> list[dict]:
    """Every rule of the contract with its observations, violations and one example (the `conformance` table).
    `outside`: the tables (status_trace, videos) of jobs that are not under test — the fault experiments' own
    ledger — whose answers the rules check too, each example naming their stage."""
    outside = {name: _table(outside or {}, name) for name in ("status_trace", "videos")}
    status_rules = _status_rules(_table(frames, "status_trace"), _table(frames, "videos"), outside)
    return [tally.row() for tally in [*status_rules, *_probe_rules(_table(frames, "contract_probes"))]]


def conformance_rules(frames: dict[str, pl.DataFrame]) -> list[ConformanceRule]:
    """The rules as the stored `conformance` table gives them (computed with the jobs outside the run's figures when
    the tables were stored, tasks.store.rebuild_tables); computed from `frames` when they carry none."""
    stored = frames.get("conformance")
    rows = stored.to_dicts() if stored is not None and stored.height else conformance_rows(frames)
    return [ConformanceRule(**row) for row in rows]


def unreported_fields(status_trace: pl.DataFrame) -> dict[str, str]:
    """The status fields no answer ever filled in where the contract expects them, each with what that leaves
    unmeasured; a field whose statuses were never seen (e.g. no job completed) is not claimed to be missing."""
    answers = [answer for job in _answers(_table({"status_trace": status_trace}, "status_trace")).values()
               for answer in job if answer["rejected"] is None and answer["status"] in STATUSES
               and answer["stage"] != PROBE_STAGE]  # what the campaign's own jobs left unmeasured
    where = {
        "any": answers,
        "processing": [answer for answer in answers if answer["status"] == "processing"],
        "terminal": [answer for answer in answers if answer["status"] in TERMINAL],
        "video": [answer for answer in answers if answer["status"] in VIDEO_STATUSES],
    }

    def value(answer: dict, field: str):
        result = _object(answer["result"])
        if field.startswith("video."):
            return _object(result.get("video")).get(field.removeprefix("video."))
        return result.get(field) if field in RESULT_FIELDS else answer.get(field)

    return {field: words for field, (expected, words) in _UNREPORTED.items()
            if where[expected] and all(value(answer, field) is None for answer in where[expected])}
