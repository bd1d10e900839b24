"""Great Expectations checks of a campaign run: suites built from the profile's thresholds.

`validate_run` takes the run's tables (polars, `analysis.schema` shapes), converts them to pandas at
this boundary (adding the derived duration columns), validates every suite in one ephemeral GX context
and returns one plain dict per expectation, ready to be stored as JSON and rendered into a report.
"""

from __future__ import annotations

import math

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import polars as pl
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from analysis.metrics import ENDED
from analysis.schema import empty
from analysis.stats import P95_MIN_N
from analysis.video import EXPECTED_VIDEO_CODEC, parse_resolution
from profiles.settings import Faults, Thresholds

QUANTILE = 0.95
SHOWN_UNEXPECTED = 3  # unexpected values quoted in an outcome's `observed`
ROW_COUNT = "expect_table_row_count_to_be_between"  # its observed value is a bare count: said as "<n> rows"

_video, _audio, _reported = pl.col("video_seconds"), pl.col("audio_seconds"), pl.col("reported_seconds")
# applied to each table before validation; a check that did not run has not passed (null → False)
AT_BOUNDARY = {
    "jobs": [
        # a success is a verified video: the row's flag AND its outcome must say so
        (pl.col("succeeded").fill_null(False) & (pl.col("outcome") == "succeeded").fill_null(False)).alias("succeeded"),
        pl.col("outcome").replace("running", "interrupted"),  # still running in a stored run: it was cut off
        pl.col("tracking_problems").replace("", None),  # "no problems" may be written as ""
    ],
    # a rule that was not checked (0 observations) is neither kept nor failed: validate_run leaves it out
    "conformance": [pl.when(pl.col("violations").fill_null(0) > 0).then(pl.col("rule")).alias("broken_rule")],
    "videos": [
        pl.col("ok", "opens", "hash_stable").fill_null(False),
        ((_video - _audio).abs() / pl.max_horizontal(_video, _audio)).alias("av_duration_delta"),
        ((_video - _reported).abs() / _reported).alias("reported_duration_delta"),
    ],
}


def video_integrity_suite(thresholds: Thresholds) -> gx.ExpectationSuite:
    """Every downloaded video opens, decodes, has the expected picture and sound, and lasts as claimed."""
    width, height = parse_resolution(thresholds.expected_resolution)
    black, silent = thresholds.black_luma, thresholds.silent_dbfs
    tolerance = thresholds.duration_tolerance
    within = f"≤ {tolerance * 100:g}%"
    return _suite("video_integrity", [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="at least 1 video"),
        # every problem the integrity check found (missing or malformed reported values included)
        _all_true("ok", "every video passed its integrity check"),
        _all_true("opens", "every video opens as MP4"),
        gxe.ExpectColumnValuesToBeInSet(
            column="video_codec", value_set=[EXPECTED_VIDEO_CODEC], description=f"video codec {EXPECTED_VIDEO_CODEC}",
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="audio_codec", description="every video has an audio stream"),
        _between("decode_errors", 0, 0, "0 decode errors"),
        _between("frames_decoded", 1, None, "≥ 1 frame decoded"),
        gxe.ExpectColumnValuesToBeInSet(column="width", value_set=[width], description=f"width {width}"),
        gxe.ExpectColumnValuesToBeInSet(column="height", value_set=[height], description=f"height {height}"),
        _all_true("hash_stable", "a second download hashes the same"),
        _between("max_mean_luma", black, None, f"max mean luma > {black:g} (not black)", strict=True),
        _between("audio_rms_dbfs", silent, None, f"audio RMS > {silent:g} dBFS (not silent)", strict=True),
        _between("av_duration_delta", None, tolerance, f"video and audio durations differ {within}"),
        _between("reported_duration_delta", None, tolerance, f"video and reported durations differ {within}"),
    ])


def job_results_suite(thresholds: Thresholds) -> gx.ExpectationSuite:
    """Enough jobs deliver a verified video, every job reached its end, and status tracking was accurate."""
    return _suite("job_results", [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="at least 1 job"),
        gxe.ExpectColumnValuesToBeInSet(
            column="succeeded", value_set=[True], mostly=thresholds.success_rate,
            description=f"≥ {thresholds.success_rate * 100:g}% of jobs delivered a verified video",
        ),
        # a job that timed out, was interrupted or never submitted fails here
        gxe.ExpectColumnValuesToBeInSet(
            column="outcome", value_set=list(ENDED),
            description=f"every job reached its end: outcome one of {', '.join(ENDED)}",
        ),
        gxe.ExpectColumnValuesToBeNull(column="tracking_problems", description="no status-tracking problems"),
    ])


def time_thresholds_suite(thresholds: Thresholds, times: pd.DataFrame) -> gx.ExpectationSuite:
    """p95 job time of the verified successes and p95 answered latency of each probed endpoint (column
    `<endpoint>_ms`) within limits; below P95_MIN_N values the max stands in (as in analysis.metrics)."""
    limits = {column: (thresholds.p95_job_seconds, "s") if column == "total_seconds"
              else (thresholds.p95_api_latency_ms, "ms") for column in times.columns}
    return _suite("time_thresholds", [
        # the latency stage always probes: a run with no probe recorded has not measured its API
        gxe.ExpectTableColumnCountToBeBetween(min_value=2, description="total_seconds and ≥ 1 probed API endpoint"),
        *(_at_most(column, limit, unit, int(times[column].count())) for column, (limit, unit) in limits.items()),
    ])


def conformance_suite() -> gx.ExpectationSuite:
    """Every contract rule the run could check holds: 0 violations (analysis.conformance, `conformance` table)."""
    return _suite("conformance", [
        gxe.ExpectColumnValuesToBeNull(column="broken_rule",
                                       description="every contract rule checked holds (0 violations)"),
    ])


def fault_recovery_suite(faults: Faults) -> gx.ExpectationSuite:
    """Every fault experiment that was run came back within the profile's bound and left no job stuck."""
    bound = faults.recovery_bound_s
    return _suite("fault_recovery", [
        gxe.ExpectColumnValuesToNotBeNull(column="recovery_s", description="health healthy again after every fault"),
        _between("recovery_s", 0, bound, f"restore → health healthy ≤ {bound:g} s"),
        gxe.ExpectColumnValuesToNotBeNull(column="first_success_s",
                                          description="a new job verified after every fault"),
        _between("first_success_s", 0, bound, f"restore → first verified video ≤ {bound:g} s"),
        _between("jobs_stuck", 0, 0, "no job left not terminal after recovery"),
    ])


def validate_run(frames: dict[str, pl.DataFrame], thresholds: Thresholds, faults: Faults | None = None) -> list[dict]:
    """Validate the run's tables against all three suites; one JSON-able outcome per expectation.

    A table missing from `frames` counts as empty: its row-count expectation fails, its per-row
    expectations pass vacuously and say so, and a p95 of no values fails. The conformance suite runs when
    `frames` has a `conformance` table (a stored run always has); its outcomes carry `fails_run`: False when
    thresholds.conformance is "warn" (a failure is reported and does not fail the run). The fault recovery
    suite runs on the experiments of the `faults` table that were run, against `faults`' bound.
    """
    jobs, videos, latency = (_table(frames, name) for name in ("jobs", "videos", "latency"))
    times = _times(jobs, latency)
    checks = [  # (suite, the rows it checks, where they come from)
        (video_integrity_suite(thresholds), videos.to_pandas(), _source(frames, "videos")),
        (job_results_suite(thresholds), jobs.to_pandas(), _source(frames, "jobs")),
        (time_thresholds_suite(thresholds, times), times, _source(frames, "jobs", "latency")),
    ]
    if "conformance" in frames:
        rules = _table(frames, "conformance")
        checked = rules.filter(pl.col("observations").fill_null(0) > 0)
        checks.append((conformance_suite(), checked.to_pandas(),
                       f"conformance table ({checked.height} of {rules.height} rules checked)"))
    ran = _table(frames, "faults").filter(pl.col("recovered").is_not_null())  # not: not run, or cut by a stop
    if faults is not None and ran.height:
        checks.append((fault_recovery_suite(faults), ran.to_pandas(), f"faults table ({ran.height} experiments run)"))
    source = _quiet_context().data_sources.add_pandas("run")
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SHOWN_UNEXPECTED}
    outcomes = []
    for suite, data, described in checks:
        batch = source.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": data},
        )
        result = batch.validate(suite, result_format=result_format)
        outcomes += [_outcome(suite.name, check, data, described) for check in result.results]
    for outcome in outcomes:
        if outcome["suite"] == "conformance":
            outcome["fails_run"] = thresholds.conformance == "fail"
    return outcomes


def _suite(name: str, expectations: list[gxe.Expectation]) -> gx.ExpectationSuite:
    for expectation in expectations:
        # a check GX cannot compute (e.g. a missing column) becomes a failed outcome, not an exception
        expectation.catch_exceptions = True
    return gx.ExpectationSuite(name=name, expectations=expectations)


def _all_true(column: str, description: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True], description=description)


def _between(
    column: str, low: float | None, high: float | None, description: str, strict: bool = False,
) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, min_value=low, max_value=high, strict_min=strict, description=description,
    )


def _at_most(column: str, limit: float, unit: str, n: int) -> gxe.Expectation:
    """p95 ≤ limit where n supports a p95; below that every value ≤ limit (which implies it)."""
    if 0 < n < P95_MIN_N:
        return gxe.ExpectColumnMaxToBeBetween(
            column=column, max_value=limit,
            description=f"max ≤ {limit:g} {unit} (n={n}: too few for a p95, the max stands in)",
        )
    return gxe.ExpectColumnQuantileValuesToBeBetween(
        column=column,
        quantile_ranges={"quantiles": [QUANTILE], "value_ranges": [[None, limit]]},
        allow_relative_error="linear",  # numpy's default interpolation, as analysis.stats
        description=f"p{QUANTILE * 100:g} ≤ {limit:g} {unit}",
    )


def _table(frames: dict[str, pl.DataFrame], name: str) -> pl.DataFrame:
    table = frames.get(name)
    return (empty(name) if table is None else table).with_columns(AT_BOUNDARY.get(name, []))


def _times(jobs: pl.DataFrame, latency: pl.DataFrame) -> pd.DataFrame:
    """Seconds of the jobs that delivered a verified video and one `<endpoint>_ms` column per probed endpoint
    with its ANSWERED probes only (a timed-out job or an unanswered probe has no time), side by side."""
    endpoints = latency["endpoint"].drop_nulls().unique(maintain_order=True).to_list()
    answered = latency.filter(pl.col("ok").fill_null(False) & pl.col("ms").is_not_null())
    columns = {"total_seconds": jobs.filter(pl.col("succeeded"))["total_seconds"]} | {
        f"{endpoint}_ms": answered.filter(pl.col("endpoint") == endpoint)["ms"] for endpoint in endpoints
    }
    # the columns differ in length: pandas pads the shorter ones with NaN, which quantiles skip
    return pd.DataFrame({name: pd.Series(values.to_list(), dtype="float64") for name, values in columns.items()})


def _source(frames: dict[str, pl.DataFrame], *names: str) -> str:
    """Where the rows a suite checks come from, for its outcomes' details."""
    missing = [name for name in names if name not in frames]
    if missing:
        return f"no {' or '.join(missing)} table in the run"
    return f"{' and '.join(names)} table" + ("s" if len(names) > 1 else "")


def _quiet_context():
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _outcome(suite: str, check, data: pd.DataFrame, source: str) -> dict:
    config = check.expectation_config
    column = config.kwargs.get("column")
    return {
        "suite": suite,
        "expectation": config.type,
        "column": column,
        "success": bool(check.success),
        "observed": _observed(check.result) + (" rows" if config.type == ROW_COUNT else ""),
        "expected": config.description,
        "details": _details(check, data, column, source),
    }


def _observed(result: dict) -> str:
    if "unexpected_count" in result:
        unexpected, checked = result["unexpected_count"], result["element_count"] - result.get("missing_count", 0)
        text = f"{unexpected} of {checked} unexpected"
        values = result.get("partial_unexpected_list") or []
        return f"{text}, e.g. {', '.join(_short(v) for v in values)}" if values else text
    observed = result.get("observed_value")
    if isinstance(observed, dict) and "quantiles" in observed:
        pairs = zip(observed["quantiles"], observed["values"], strict=False)
        return ", ".join(f"p{q * 100:g} = {_short(v)}" for q, v in pairs)
    return _short(observed)


def _details(check, data: pd.DataFrame, column: str | None, source: str) -> str:
    error = _error(check)
    if error:
        return f"{source}: could not be computed: {error}"
    if column is None:
        return f"{source}: {len(data)} rows"
    if "unexpected_count" in check.result:  # checks each value
        if data.empty:
            return f"{source}: no rows, nothing to check (passes vacuously)"
        nulls = check.result.get("missing_count", 0)  # absent where null is what is expected
        return f"{source}: {len(data)} rows" + (f", {nulls} null not checked" if nulls else "")
    values = int(data[column].count())
    return f"{source}: {values} values" if values else f"{source}: no values, so no p{QUANTILE * 100:g} to compare"


def _error(check) -> str | None:
    """The message of what GX raised: on the expectation itself, or on the metrics it needed."""
    info = check.exception_info or {}
    raised = [info] if "raised_exception" in info else list(info.values())
    messages = sorted({entry["exception_message"] for entry in raised if entry.get("raised_exception")})
    return "; ".join(messages) or None


def _short(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    return f"{value:.5g}" if isinstance(value, float) else str(value)
