"""The tables a campaign run stores: one polars schema per kind of measurement.

Every measurement is appended to the run's ledger (`measurements.jsonl`) as it is taken, tagged with
its table name; at the end each table becomes `runs/<run-id>/<table>.parquet` with exactly these
columns, so reports and expectations read one fixed shape even when a stage produced no rows.
"""

from __future__ import annotations

import polars as pl

TABLES: dict[str, dict[str, pl.DataType]] = {
    # service verification: one row per service checked
    "services": {
        "service": pl.String, "url": pl.String, "ok": pl.Boolean, "version": pl.String,
        "detail": pl.String, "fix": pl.String,
    },
    # resource samples: one row per (sample time, service); service "total" sums the four,
    # "machine" is the whole machine (cpu_percent of all cores, rss_bytes = memory in use)
    "samples": {
        "stage": pl.String, "t": pl.Float64, "service": pl.String, "processes": pl.Int64,
        "cpu_percent": pl.Float64, "rss_bytes": pl.Int64,
    },
    # every status observation of every job, as polled
    "status_trace": {
        "job_id": pl.String, "stage": pl.String, "t": pl.Float64, "status": pl.String,
        "phase": pl.String, "progress": pl.Int64, "created_at": pl.String, "completed_at": pl.String,
    },
    # one row per job under test, written when it reaches a terminal state (or times out)
    "jobs": {
        "job_id": pl.String, "stage": pl.String, "level": pl.Int64, "batch": pl.Int64,
        "document": pl.String, "submitted_at": pl.Float64, "finished_at": pl.Float64,
        "total_seconds": pl.Float64, "status": pl.String, "succeeded": pl.Boolean,
        "processing_seconds": pl.Float64, "video_seconds": pl.Float64, "size_bytes": pl.Int64, "resolution": pl.String,
        "scenes": pl.Int64, "queued_s": pl.Float64, "script_s": pl.Float64, "audio_s": pl.Float64,
        "visual_s": pl.Float64, "compose_s": pl.Float64, "tracking_problems": pl.String,
        "observations": pl.Int64, "error": pl.String,
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
    # API endpoint latency probes
    "latency": {
        "endpoint": pl.String, "i": pl.Int64, "ms": pl.Float64, "status_code": pl.Int64,
        "ok": pl.Boolean, "error": pl.String,
    },
}


def empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=TABLES[table])


def frame(table: str, rows: list[dict]) -> pl.DataFrame:
    """Rows (dicts, possibly missing columns) as a frame of the table's exact schema."""
    schema = TABLES[table]
    if not rows:
        return empty(table)
    columns = {name: [row.get(name) for row in rows] for name in schema}
    return pl.DataFrame(columns, schema=schema, strict=False)
