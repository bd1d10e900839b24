"""Stage 6: K jobs one after another: success rate, status tracking, integrity of every output."""

from prefect import flow

from flows.batch import run_batch
from profiles.settings import Profile
from tasks.interrupt import stop_requested
from tasks.services import Services


@flow(name="sequential-reliability")
def sequential_reliability(profile: Profile, services: Services, run_dir: str, progress_id: str | None,
                           total_jobs: int) -> list[dict]:
    """Each job starts when the previous one has ended (documents taken in turn)."""
    documents = profile.workload.documents
    rows = []
    for batch in range(profile.workload.sequential_jobs):
        if stop_requested():  # the job in flight ended as interrupted; no new one starts
            break
        rows += run_batch(profile, services, run_dir, "sequential", 1, batch,
                          [documents[batch % len(documents)]], progress_id, total_jobs)
    return rows
