"""Stage 1: verify every service of the target for real before any load is sent."""

from prefect import flow, get_run_logger
from prefect.states import Cancelled, Completed, Failed, State

from profiles.settings import Profile
from tasks.services import Services, broken_check_row, service_checks
from tasks.store import Ledger


def failing_lines(rows: list[dict]) -> list[str]:
    """One line per service that failed its check: what is wrong and how to fix it."""
    return [f"  {row['service']}: {row['detail']} — {row['fix']}" for row in rows if not row["ok"]]


@flow(name="service-verification")
def verify_services(profile: Profile, services: Services, run_dir: str) -> State:
    """Check redis, llm, tts and server all at once, each within timing.verify_timeout_s; every failing service
    gets its own line. Ends Failed when a service failed, Cancelled when a stop request cut checks short
    (they record nothing: they learnt nothing about their service); either way the state's data is the rows
    (`verify_services(..., return_state=True).result(raise_on_failure=False)`), also in the ledger."""
    logger = get_run_logger()
    futures = {name: check.submit(*args) for name, (check, args) in service_checks(profile, services).items()}
    ledger = Ledger.of(run_dir)
    rows = []
    for name, future in futures.items():
        row = future.result(raise_on_failure=False)  # each check ends within its own bound, or at a stop
        if row is None:  # interrupted by a stop request: it learnt nothing about its service
            continue
        if isinstance(row, BaseException):
            row = broken_check_row(name, getattr(services, name), row)
        ledger.record("services", **row)
        rows.append(row)
        if row["ok"]:
            logger.info("%s: ok (%s) at %s", row["service"], row["version"], row["url"])
        else:
            logger.error("%s: %s — %s", row["service"], row["detail"], row["fix"])
    if len(rows) < len(futures):
        return Cancelled(message=f"interrupted: {len(rows)} of {len(futures)} services checked", data=rows)
    failing = failing_lines(rows)
    if failing:
        return Failed(message=f"{len(failing)} of {len(rows)} services failed verification:\n" + "\n".join(failing),
                      data=rows)
    return Completed(message=f"all {len(rows)} services verified", data=rows)
