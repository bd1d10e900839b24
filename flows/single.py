"""Stage 3: one job alone, end to end, with the time it spends in each phase."""

from prefect import flow

from flows.batch import run_batch
from profiles.settings import Profile
from tasks.services import Services


@flow(name="single-request")
def single_request(profile: Profile, services: Services, run_dir: str, progress_id: str | None,
                   total_jobs: int) -> dict:
    """Submit the first document alone and follow it through every phase (polled finely, to see them)."""
    [row] = run_batch(profile, services, run_dir, "single", 1, 0, profile.workload.documents[:1],
                      progress_id, total_jobs, profile.timing.phase_poll_interval_s)
    return row
