"""Error handling and recovery: what each injected fault did to the deployment and how it came back.

One `FaultResult` per experiment (a row of `faults.parquet`). An experiment has a steady-state
hypothesis (a job succeeds and health is `healthy`); it injects a fault, watches the deployment while
the fault lasts, restores, and measures the time until health is healthy again and until a new job
succeeds again.
"""

from __future__ import annotations

from pydantic import BaseModel


class FaultResult(BaseModel):
    """One fault experiment (a row of `faults.parquet`)."""

    service: str  # tts | llm | redis | server
    fault: str  # killed | frozen | slow | restarted_with_jobs | killed_with_jobs
    recovered: bool | None  # steady state back after restore (None: the experiment could not be run)
    recovery_s: float | None  # restore → health `healthy` again
    first_success_s: float | None  # restore → first new job succeeded (verified video)
    jobs_failed_during: int  # jobs under the fault that ended failed
    jobs_stuck: int  # jobs not terminal once recovered (never acceptable)
    health_during: str | None  # what /health said while the fault lasted ("degraded (tts_service: down)")
    job_error_during: str | None  # the error of a job under the fault, in the server's words
    named_dependency: bool | None  # that error names the faulty service
    hung: bool  # a job under the fault reached no terminal status within its bound
    detail: str | None  # what happened, in words, incl. why it could not be run
