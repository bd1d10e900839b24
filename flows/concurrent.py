"""Stage 4: that many jobs at once, for each concurrency level of the profile."""

from itertools import cycle, islice

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.batch import run_batch
from profiles.settings import MAX_CONCURRENCY, Profile
from tasks.interrupt import stop_requested
from tasks.services import Services


@flow(name="concurrent-runs", task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY))
def concurrent_runs(profile: Profile, services: Services, run_dir: str, progress_id: str | None,
                    total_jobs: int) -> list[dict]:
    """One batch per level, each level's jobs submitted together (documents taken in turn)."""
    rows = []
    documents = profile.workload.documents
    for batch, level in enumerate(profile.workload.concurrency_levels):
        if stop_requested():  # the jobs in flight ended as interrupted; no new batch starts
            break
        rows += run_batch(profile, services, run_dir, "concurrent", level, batch,
                          list(islice(cycle(documents), level)), progress_id, total_jobs)
    return rows
