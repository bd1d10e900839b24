"""Stage 1: verify every service of the target for real before any load is sent."""

from prefect import flow, get_run_logger

from profiles.settings import Profile
from tasks.services import Services, check_llm, check_redis, check_server, check_tts
from tasks.store import Ledger


@flow(name="service-verification")
def verify_services(profile: Profile, services: Services, run_dir: str) -> list[dict]:
    """Check redis, llm, tts and server all at once; every failing service gets its own line."""
    logger = get_run_logger()
    timeout = profile.timing.verify_timeout_s
    endpoints = profile.target.endpoints
    bound = {"timeout_seconds": 4 * timeout + 5}  # a retry of two requests, plus slack
    futures = [
        check_redis.with_options(**bound).submit(services.redis, profile.target.min_redis_version, timeout),
        check_llm.with_options(**bound).submit(services.llm, services.llm_model, endpoints, timeout),
        check_tts.with_options(**bound).submit(services.tts, endpoints, timeout),
        check_server.with_options(**bound).submit(services.server, endpoints, timeout),
    ]
    ledger = Ledger.of(run_dir)
    rows = []
    for name, future in zip(("redis", "llm", "tts", "server"), futures, strict=True):
        row = future.result(raise_on_failure=False)
        if isinstance(row, BaseException):
            row = {"service": name, "url": getattr(services, name), "ok": False, "version": None,
                   "detail": f"check did not finish: {row!r}", "fix": "see the task's log"}
        ledger.record("services", **row)
        rows.append(row)
        if row["ok"]:
            logger.info("%s: ok (%s) at %s", row["service"], row["version"], row["url"])
        else:
            logger.error("%s: %s — %s", row["service"], row["detail"], row["fix"])
    return rows
