"""The tables a campaign run stores: one polars schema per kind of measurement.

Every measurement is appended to the run's ledger (`measurements.jsonl`) as it is taken, tagged with
its table name; at the end each table becomes `runs/<run-id>/<table>.parquet` with exactly these
columns, so reports and expectations read one fixed shape even when a stage produced no rows.

Rounds: a campaign repeats its load stages in rounds (profile `[campaign]`), so every recorded table has
  round    the campaign's round the row was taken in (1-based). Stages run once (verification, baseline,
           conformance, faults) carry the round they ran in: verification and baseline 1, conformance and faults
           the last round. `services` is re-verified at the start of every round from round 2 on (and at the
           start of a resumed campaign, whose stack is new), so it has rows per round.
  attempt  which start of the campaign took the row: 1, then +1 for each `--resume` (or retry from Prefect). A
           stage cut by a crash and run again on resume is two sets of rows, told apart by attempt.
Both are stamped by the run's ledger (tasks.store.Ledger), never by the code that measures. A stored run from
before rounds existed has neither: it reads as round 1, attempt 1 (`conform`). `conformance` is derived over
the whole campaign (a contract rule holds for the target, not per round) and has neither.
"""

from __future__ import annotations

import polars as pl

ROUND_COLUMNS: dict[str, pl.DataType] = {"round": pl.Int64, "attempt": pl.Int64}

TABLES: dict[str, dict[str, pl.DataType]] = {
    # a row per stage as it starts (running) and as it ends: completed | failed (detail says why; the next
    # stage still runs) | interrupted | skipped (e.g. no load after a failed verification); the last row per
    # (round, stage) counts. A stage of a round whose last row is completed or failed is kept on resume; one cut
    # (running, interrupted) is run again.
    "stages": {
        "stage": pl.String, "started_at": pl.Float64, "finished_at": pl.Float64, "outcome": pl.String,
        "detail": pl.String,
    },
    # service verification: one row per service checked
    "services": {
        "service": pl.String, "url": pl.String, "ok": pl.Boolean, "version": pl.String,
        "detail": pl.String, "fix": pl.String,
    },
    # resource samples: one row per (sample time, service) for each service whose processes were found (one
    # without a visible process has no row: not measured), and "machine", the whole machine (rss_bytes =
    # memory in use). cpu_percent is % of one core everywhere.
    "samples": {
        "stage": pl.String, "t": pl.Float64, "service": pl.String, "processes": pl.Int64,
        "cpu_percent": pl.Float64, "rss_bytes": pl.Int64,
    },
    # every status answer of every job: the 202 answer to its upload (answer "submit") and each poll ("poll"),
    # as the server gave it, so analysis.conformance can check the contract from the stored run.
    #   result / errors: the answer's `result` object and `errors` as JSON text (null: absent or null)
    #   rejected: why the answer is not a job status object (a field of the wrong type), null when it is one;
    #     a rejected answer's other columns hold what could be read of it
    "status_trace": {
        "job_id": pl.String, "stage": pl.String, "t": pl.Float64, "status": pl.String,
        "phase": pl.String, "progress": pl.Int64, "created_at": pl.String, "completed_at": pl.String,
        "updated_at": pl.String, "message": pl.String, "result": pl.String, "errors": pl.String,
        "answer": pl.String, "rejected": pl.String,
    },
    # one row per job under test. A row is recorded when the job is submitted (outcome "running") and again
    # when its outcome is known; the table keeps the LAST row per (round, attempt, stage, level, batch, slot). A
    # row still "running" when the run has ended is shown as "interrupted" (see analysis.metrics); one cut by a
    # crash is recorded "interrupted" when the campaign is resumed, and its re-run is a row of the next attempt.
    #   server_status: the last status the server reported (null: never seen)
    #   outcome: running | succeeded | failed | timed_out | stuck_pending | interrupted | not_submitted
    #     stuck_pending: `pending` past timing.pending_timeout_s while the server answered, given up before the job
    #     timeout; a failure like timed_out, its failure "never started (stuck pending N s)"
    #   succeeded: the video was downloaded AND passed every integrity check (outcome == "succeeded")
    #   failure: why not, in words ("server said completed but the download answered 404: No video found")
    #   reported_video_seconds: the duration the SERVER reported; the decoded one is in `videos`
    "jobs": {
        "job_id": pl.String, "stage": pl.String, "level": pl.Int64, "batch": pl.Int64, "slot": pl.Int64,
        "document": pl.String, "submitted_at": pl.Float64, "finished_at": pl.Float64,
        "total_seconds": pl.Float64, "server_status": pl.String, "outcome": pl.String, "succeeded": pl.Boolean,
        "failure": pl.String, "processing_seconds": pl.Float64, "reported_video_seconds": pl.Float64,
        "size_bytes": pl.Int64, "resolution": pl.String,
        "scenes": pl.Int64, "queued_s": pl.Float64, "script_s": pl.Float64, "audio_s": pl.Float64,
        "visual_s": pl.Float64, "compose_s": pl.Float64, "tracking_problems": pl.String,
        "observations": pl.Int64,
    },
    # one row per batch of jobs started together (a concurrency level, the single run, ...)
    "batches": {
        "stage": pl.String, "level": pl.Int64, "batch": pl.Int64, "jobs": pl.Int64,
        "started_at": pl.Float64, "finished_at": pl.Float64, "wall_seconds": pl.Float64,
    },
    # integrity of every downloaded video
    "videos": {
        "job_id": pl.String, "stage": pl.String, "path": pl.String, "size_bytes": pl.Int64,
        "sha256": pl.String, "second_sha256": pl.String, "hash_stable": pl.Boolean, "opens": pl.Boolean,
        "video_codec": pl.String, "audio_codec": pl.String, "width": pl.Int64, "height": pl.Int64,
        "fps": pl.Float64, "frames_decoded": pl.Int64, "decode_errors": pl.Int64,
        "video_seconds": pl.Float64, "audio_seconds": pl.Float64, "reported_seconds": pl.Float64,
        "max_mean_luma": pl.Float64, "audio_rms_dbfs": pl.Float64, "ok": pl.Boolean, "problems": pl.String,
    },
    # API endpoint latency probes. `ms` is the time of an ANSWER, taken at the wire (request sent → whole
    # response received); it is null when no answer came. error_kind: timeout | refused | wrong_status |
    # not_json | other (null when ok)
    "latency": {
        "endpoint": pl.String, "i": pl.Int64, "t": pl.Float64, "ms": pl.Float64, "status_code": pl.Int64,
        "ok": pl.Boolean, "error_kind": pl.String, "error": pl.String,
    },
    # the conformance stage's probes of the contract (analysis.conformance.PROBES): one row per request made
    # to check an answer the campaign's own traffic never asks for. status_code null: no answer, or not
    # probed (body says why); ok: status_code == expected (null when no answer); detail: the error body's
    # `detail` when it has one
    "contract_probes": {
        "probe": pl.String, "method": pl.String, "path": pl.String, "t": pl.Float64, "status_code": pl.Int64,
        "expected": pl.Int64, "ok": pl.Boolean, "body": pl.String, "detail": pl.String,
    },
    # a wait for services found unreachable when a round was about to start (profile campaign.retries and
    # retry_wait_s): one row per wait, from when the re-verification found them down (started_at) to when they
    # all answered again or the wait's bound was reached (ended_at); services: the ones down, comma-separated;
    # recovered: they all answered within the wait; detail: what the re-verification said of each
    "downtime": {
        "started_at": pl.Float64, "ended_at": pl.Float64, "seconds": pl.Float64, "services": pl.String,
        "recovered": pl.Boolean, "detail": pl.String,
    },
    # DERIVED, never recorded: every contract rule as this run saw it, computed from the tables above by
    # analysis.conformance.conformance_rows when the tables are stored (rebuilt with them)
    "conformance": {
        "rule": pl.String, "source": pl.String, "observations": pl.Int64, "violations": pl.Int64,
        "example": pl.String,
    },
    # what went wrong with a service during the run, found by re-probing it when jobs failed or a stage saw
    # only errors: since when it stopped answering and, for the bundled stack, its exit code and last log lines
    "incidents": {
        "service": pl.String, "t": pl.Float64, "since": pl.Float64, "detail": pl.String,
        "exit_code": pl.Int64, "log_tail": pl.String,
    },
    # what the faults stage saw, each thing as it saw it (analysis.faults.EVENTS): the `faults` rows are derived
    # from these whenever the tables are rebuilt, so a run killed mid-experiment keeps what it saw
    "fault_events": {
        "experiment": pl.Int64, "service": pl.String, "fault": pl.String, "kind": pl.String, "at": pl.Float64,
        "value": pl.String,
    },
    # one row per fault experiment (analysis.faults.FaultResult), derived from `fault_events` (t: when it ended; older
    # runs recorded these rows themselves); its jobs are in the run's faults/ folder (their own ledger), not in
    # `jobs`: the campaign's success figures exclude them
    "faults": {
        "t": pl.Float64, "service": pl.String, "fault": pl.String, "state": pl.String, "injected_by": pl.String,
        "recovered": pl.Boolean,
        "recovery_s": pl.Float64, "first_success_s": pl.Float64, "restore_s": pl.Float64,
        "jobs_failed_during": pl.Int64, "submissions_refused": pl.Int64, "jobs_stuck": pl.Int64,
        "health_during": pl.String, "job_error_during": pl.String, "named_dependency": pl.Boolean, "hung": pl.Boolean,
        "detail": pl.String,
    },
}
DERIVED = ("conformance",)  # computed from the other tables, never recorded
# every recorded table carries the round and attempt it was taken in (first, so a glance at a table shows them)
TABLES = {name: columns if name in DERIVED else {**ROUND_COLUMNS, **columns} for name, columns in TABLES.items()}


def empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=TABLES[table])


def conform(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """A stored frame in the table's current schema: a column it lacks (a run stored before the column existed)
    is added, null, except round and attempt, which a run from before rounds had only one of: 1."""
    schema = TABLES[table]
    missing = [pl.lit(1 if name in ROUND_COLUMNS else None, dtype=dtype).alias(name)
               for name, dtype in schema.items() if name not in df.columns]
    if missing:
        df = df.with_columns(missing)
    df = df.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
    return df.with_columns([pl.col(name).fill_null(1) for name in ROUND_COLUMNS if name in schema])


def frame(table: str, rows: list[dict]) -> pl.DataFrame:
    """Rows (dicts, possibly missing columns) as a frame of the table's exact schema (a row without round or
    attempt, recorded before rounds existed, is round 1, attempt 1)."""
    schema = TABLES[table]
    if not rows:
        return empty(table)
    columns = {name: [row.get(name) for row in rows] for name in schema}
    return conform(table, pl.DataFrame(columns, schema=schema, strict=False))
