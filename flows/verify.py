"""Stage 1: verify every service of the target for real before any load is sent, and again before each later
round, waiting a bounded time for services that do not answer."""

from dataclasses import dataclass

from prefect import flow, get_run_logger
from prefect.states import Cancelled, Completed, Failed, State

from flows.lifecycle import StageLog
from profiles.settings import Profile
from tasks.downtime import wait_for_services
from tasks.interrupt import stop_requested
from tasks.run import record_services, verified_rows
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


@dataclass(frozen=True)
class NotReady:
    """Why a round sends no load: `reason` in a few words (the detail of the stages it skips) and one line per
    service that failed."""

    reason: str
    failing: list[str]

    def __str__(self) -> str:
        return "\n".join([f"{self.reason}:", *self.failing])


def services_ready(stages: StageLog, settings: Profile, services: Services, run_dir: str,
                   may_wait: bool) -> NotReady | None:
    """Verify the services; None when all answer, else why no load may be sent. With `may_wait` (a round after
    the first, a resumed campaign) services found unreachable are waited for, each wait recorded as downtime:
    campaign.retries waits of at most campaign.retry_wait_s each, a wait that ends with all of them answering
    followed by a new verification; a stop request starts no further wait. Jobs are never retried: no job of the
    round has been submitted yet."""
    args = (settings, services, run_dir)
    retries = settings.campaign.retries if may_wait else 0
    waits = 0

    def verify():
        finished = stages.run("verification", verify_services, *args, return_state=True)
        record_services(run_dir, services, verified_rows(run_dir))  # once per verification (it asks the LLM too)
        return finished

    finished = verify()
    while True:
        checks = verified_rows(run_dir)  # as recorded, whatever Prefect kept of the state
        failing = failing_lines(checks) if finished else ["  verification did not finish: see its stage"]
        if not failing or not finished or waits >= retries or stop_requested():  # a stop starts no new wait
            break
        waits += 1
        if wait_for_services(settings, services, run_dir, [row for row in checks if not row["ok"]])["recovered"]:
            finished = verify()
    if not failing:
        return None
    if stop_requested():
        return NotReady("stopped while the services were verified or waited for", failing)
    if not may_wait:
        return NotReady("service verification failed, no job was submitted", failing)
    return NotReady(f"services unreachable before round {Ledger.of(run_dir).round}, after {waits} wait(s) of at "
                    f"most {settings.campaign.retry_wait_s:g} s (campaign.retries = {retries})", failing)
