"""Stage 5: how fast the API answers: health, status, jobs list and active jobs."""

import uuid

from prefect import flow

from profiles.settings import Profile
from tasks.incidents import reprobe
from tasks.latency import probe_endpoint
from tasks.services import Services


@flow(name="api-latency")
def api_latency(profile: Profile, services: Services, run_dir: str, known_job_id: str | None) -> list[dict]:
    """N sequential requests per endpoint; the status probe asks for a real job when there is one. Every probe
    is bounded by timing.request_timeout_s for its whole answer; an endpoint silent for timing.poll_failure_s
    is given up."""
    endpoints = profile.target.endpoints
    timing = profile.timing
    status_expected = 200 if known_job_id else 404
    targets = {
        "health": (endpoints.health, 200),
        "status": (endpoints.status.format(job_id=known_job_id or uuid.uuid4()), status_expected),
        "jobs": (f"{endpoints.jobs}?limit={profile.workload.list_limit}", 200),
        "active": (f"{endpoints.active}?limit={profile.workload.list_limit}", 200),
    }
    results = [probe_endpoint(run_dir, name, services.server + path, profile.workload.latency_probes,
                              timing.request_timeout_s, timing.poll_failure_s, expected)
               for name, (path, expected) in targets.items()]
    only_errors = [result for result in results if result["probes"] and result["errors"] == result["probes"]]
    if only_errors:  # find out which service stopped answering, as failed jobs do
        reprobe(profile, services, run_dir, {"server": min(result["first_error_at"] for result in only_errors)})
    return results
