"""Stage 2: what the idle services cost before any job runs."""

from prefect import flow, get_run_logger

from profiles.settings import Profile
from tasks.processes import capture_baseline
from tasks.services import Services


@flow(name="baseline-resources")
def baseline_resources(profile: Profile, services: Services, run_dir: str) -> dict[str, int]:
    """Sample the services' idle CPU and memory for the profile's baseline window."""
    timing = profile.timing
    pids = capture_baseline(run_dir, services.ports(), timing.baseline_s, timing.sample_interval_s)
    missing = sorted(set(services.ports()) - set(pids))
    if missing:
        get_run_logger().warning("no listening process found for %s: their resources are not measured "
                                 "(a service in a container or on another host is invisible here)", ", ".join(missing))
    return pids
