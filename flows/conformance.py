"""Stage: contract conformance. A few cheap probes of answers the campaign's own traffic never asks for.

The rules themselves are checked on everything the run recorded (analysis.conformance, computed when the
tables are stored); this stage only adds the probes' answers to the ledger (`contract_probes`).
"""

from prefect import flow

from profiles.settings import Profile
from tasks.conformance import probe_finished_job, probe_refusals, probe_unfinished_job
from tasks.services import Services


@flow(name="contract-conformance")
def contract_conformance(profile: Profile, services: Services, run_dir: str, known_job_id: str | None) -> None:
    """Refusals (unknown and malformed job ids, an empty upload), a download and a cancel of a job not yet
    finished (submitted here, not a job under test), and a cancel of `known_job_id`, the single stage's job,
    once finished. Each request bounded by timing.request_timeout_s (an upload by upload_timeout_s)."""
    probe_refusals(profile, services, run_dir)
    probe_unfinished_job(profile, services, run_dir)
    probe_finished_job(profile, services, run_dir, known_job_id)
