"""Waiting for services found unreachable before a round: a bounded wait, recorded as downtime.

Only a round is ever retried, never a job under test (a retry would hide a failure): the wait happens before any
of the round's jobs is submitted. The services are probed with the verification checks every
campaign.retry_poll_s, each probe within timing.verify_timeout_s, until all four answer or campaign.retry_wait_s
is up; a stop request ends the wait at once.
"""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from profiles.settings import Profile
from tasks.incidents import probe_services
from tasks.interrupt import pause, stop_requested
from tasks.services import Services
from tasks.store import Ledger


def down_in_words(rows: list[dict]) -> str:
    """'tts: connection refused; server: ...' for the services whose check failed."""
    return "; ".join(f"{row['service']}: {row['detail']}" for row in rows if not row["ok"])


@task(name="wait-for-services", cache_policy=NO_CACHE)
def wait_for_services(profile: Profile, services: Services, run_dir: str, down: list[dict]) -> dict:
    """Wait until every service answers again, at most campaign.retry_wait_s; record the wait in `downtime` and
    return its row. `down`: the failing verification rows that started the wait. A wait a stop request cut short
    is recorded with `recovered` null (the services neither answered nor were given up on) and says so."""
    campaign = profile.campaign
    started_at = time.time()
    deadline = started_at + campaign.retry_wait_s
    recovered, detail = False, down_in_words(down)
    while not pause(min(campaign.retry_poll_s, max(0.0, deadline - time.time()))):
        rows = probe_services(profile, services)
        if rows is None:  # a stop request cut the probe short
            break
        if all(row["ok"] for row in rows):
            recovered = True
            break
        detail = down_in_words(rows)
        if time.time() >= deadline:
            break
    ended_at = time.time()
    cut = not recovered and stop_requested()  # neither answered nor given up on: not known to have come back
    why = "cut by the run's stop" if cut else f"still down after {campaign.retry_wait_s:g} s"
    row = {"started_at": started_at, "ended_at": ended_at, "seconds": ended_at - started_at,
           "services": ",".join(row["service"] for row in down if not row["ok"]),
           "recovered": None if cut else recovered,
           "detail": down_in_words(down) if recovered else f"{why}: {detail}"}
    Ledger.of(run_dir).record("downtime", **row)
    return row
