"""How a campaign process lives: Prefect settings it needs, its temporary Prefect server, stop signals, how it
starts (a new run folder, or an interrupted campaign's continued) and its stages' outcomes.

A terminal's Ctrl-C goes to the whole foreground process group. Prefect's own temporary server is in
that group, so it died with the first Ctrl-C and the campaign could then neither record its flow run
as ended nor publish its reports. The temporary server started here runs in a session of its own and
is stopped by the campaign when it is done with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import prefect
from prefect.context import FlowRunContext
from prefect.logging.handlers import APILogHandler
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import get_current_settings, temporary_settings
from prefect.states import State

from analysis.rounds import ONCE_AFTER, ROUND_STAGES, campaign_rounds, kept_stages, parse_duration, resume_round
from profiles.settings import Profile, ProfileError, load_profile, with_campaign
from stack.children import own_session_dying_with_parent
from tasks.interrupt import Interrupted, request_stop, stop_requested
from tasks.processes import ResourceSampler
from tasks.run import RunRefused, hold_run, open_run, reopen_run, resumable, run_path
from tasks.store import MANIFEST, Ledger, read_json, read_ledger

# Defaults only: a value the user set (environment, prefect.toml, a Prefect profile) wins.
#   - the temporary server's start-up bound: Prefect's 20 s is too short on a busy 2-core machine with a
#     fresh PREFECT_HOME (its database is created first; about 21 s was measured with two busy loops);
#   - the server's telemetry: its first report raced the start-up and printed a `database is locked`
#     traceback; it also sends data out of the machine, which a measurement run should not do.
PREFECT_DEFAULTS: dict[str, Any] = {
    "server.ephemeral.startup_timeout_seconds": 180,
    "server.analytics_enabled": False,
}

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# the stages whose resources are sampled as they run (the baseline samples itself; verification is no load)
SAMPLED = (*ROUND_STAGES, *ONCE_AFTER)


@contextlib.contextmanager
def campaign_settings() -> Iterator[None]:
    with temporary_settings(set_defaults=PREFECT_DEFAULTS):
        yield


class ServerDidNotStart(RuntimeError):
    """The temporary Prefect server did not answer within its start-up bound."""


class _DetachedServer(SubprocessASGIServer):
    """Prefect's temporary API server (no UI), started in its own session so stop signals meant for the
    campaign do not reach it, and ended by the kernel if the campaign is killed outright. Same command as
    Prefect's `SubprocessASGIServer`, plus that."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                 "PREFECT__SERVER_FINAL": "1", **get_current_settings().to_environment_variables(exclude_unset=True)},
            preexec_fn=own_session_dying_with_parent,
        )


@contextlib.contextmanager
def prefect_api() -> Iterator[str | None]:
    """The Prefect API the run reports to: the configured one (yields its UI URL, or None), else a temporary
    server started here for this run and stopped after it (yields None: it has no UI)."""
    settings = get_current_settings()
    if settings.api.url:
        yield settings.ui_url
        return
    bound = settings.server.ephemeral.startup_timeout_seconds
    print(f"starting a temporary Prefect server (set PREFECT_API_URL to report to yours; start-up bound {bound} s)",
          file=sys.stderr, flush=True)
    server = _DetachedServer()
    try:
        try:
            server.start(timeout=bound)
        except RuntimeError as exc:
            raise ServerDidNotStart(
                f"the temporary Prefect server did not answer within {bound} s ({str(exc)[:200]}); raise "
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or set PREFECT_API_URL to a running server"
            ) from None
        with temporary_settings(updates={"api.url": server.api_url}):
            try:
                yield None
            finally:
                APILogHandler().flush()  # the run's last log lines go to the server before it stops
    finally:
        server.stop()


@contextlib.contextmanager
def graceful_stop(on_stop=None) -> Iterator[None]:
    """While the campaign runs, the first SIGINT/SIGTERM asks every wait to end and the run to close
    (in-flight jobs recorded as interrupted, reports written); a second one quits at once.

    Only the main thread can own signal handlers; elsewhere (a thread of a test) nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame) -> None:
        if stop_requested():
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} again: stopping at once")
        request_stop()
        if on_stop is not None:
            on_stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class CampaignStart:
    """One start of a campaign (the first, or a resume): its settings, folder and where it stands."""

    settings: Profile
    run_dir: str
    attempt: int
    kept: set[tuple[int, str]]  # (round, stage) that ran to their end in an earlier attempt: not run again
    first_round: int
    rounds: int | None  # planned; None: a soak
    deadline: float | None  # a soak's end (unix seconds), set by its first start

    def rounds_to_run(self) -> Iterator[int]:
        return campaign_rounds(self.first_round, self.rounds, self.deadline, time.time, stop_requested)


def run_id_of_flow_run() -> str:
    """A run id that is the same each time this flow run starts (a retry from the Prefect UI finds its folder):
    the flow run's creation time and id."""
    flow_run = FlowRunContext.get().flow_run
    return f"{flow_run.created.astimezone(UTC):%Y%m%dT%H%M%SZ}-{flow_run.id.hex[:4]}"


def campaign_profile(invocation: dict, results_dir: Path | None = None) -> Profile:
    """The settings a campaign was started with (profile, overrides, rounds or duration), in `results_dir` if
    given (a resumed folder is where it is, whatever the profile says)."""
    moved = [f"results_dir={json.dumps(str(results_dir))}"] if results_dir else []
    settings = load_profile(invocation["profile"], [*invocation["overrides"], *moved])
    return with_campaign(settings, invocation.get("rounds"), invocation.get("duration_s"))


def open_campaign(profile: str | None, overrides: Sequence[str], run_id: str, rounds: int | None, duration: str,
                  resume: str) -> CampaignStart:
    """Load the settings and open the run folder: a new one, or (resume, or a retry of this flow run from
    Prefect) an interrupted campaign's, continued where its ledger says it was cut. ProfileError or RunRefused
    (one line each) before anything is started. `profile` None or empty: `local`, or the resumed campaign's; with
    `resume`, a profile or run id other than the campaign's own is refused, not silently replaced."""
    flow_run_id = str(FlowRunContext.get().flow_run.id)
    if resume:
        if overrides or rounds or duration:
            raise RunRefused("resume continues a campaign with its own settings (its manifest's): give no overrides, "
                             "rounds or duration with it")
        run_dir = Path(resume).resolve()
        invocation = resumable(run_dir)["invocation"]
        if profile and profile != invocation["profile"]:
            raise RunRefused(f"resume continues {run_dir.name} with its own profile {invocation['profile']!r}: "
                             f"profile {profile!r} cannot go with it (leave profile empty)")
        if run_id and run_id != run_dir.name:
            raise RunRefused(f"resume continues {run_dir.name} in its own folder: run id {run_id!r} cannot go with it "
                             "(leave run id empty)")
        settings = campaign_profile(invocation, run_dir.parent)
        hold_run(run_dir)
        attempt = reopen_run(settings, str(run_dir), flow_run_id)
    else:
        try:
            seconds = parse_duration(duration) if duration else None
        except ValueError as exc:
            raise ProfileError(str(exc)) from None
        invocation = {"profile": profile or "local", "overrides": list(overrides), "rounds": rounds,
                      "duration_s": seconds}
        settings = campaign_profile(invocation)
        run_dir = run_path(settings.results_dir, run_id or run_id_of_flow_run())
        if run_dir.exists():  # a retry of this flow run continues it; any other campaign's folder is refused
            resumable(run_dir, flow_run_id)
            hold_run(run_dir)
            attempt = reopen_run(settings, str(run_dir), flow_run_id)
        else:
            open_run(settings, run_dir.name, invocation, flow_run_id)
            attempt = 1
    ledger = Ledger.of(run_dir)
    ledger.attempt = attempt
    plan = read_json(run_dir / MANIFEST, {}).get("campaign") or {}
    kept = kept_stages(read_ledger(run_dir)["stages"])
    deadline = plan.get("deadline")
    first = resume_round(kept, plan.get("rounds"), deadline is not None and time.time() < deadline)
    ledger.round = first
    return CampaignStart(settings, str(run_dir), attempt, kept, first, plan.get("rounds"), deadline)


class StageLog:
    """Runs the campaign's stages one after another, recording each one's outcome in the `stages` table under
    the ledger's round.

    A stage that fails is recorded with why and the next stage still runs; after a stop request the
    remaining stages are recorded as interrupted, not run. A stage in `kept` ((round, stage) that ran to its
    end in an earlier attempt of a resumed campaign) is not run again."""

    def __init__(self, run_dir: str, logger, kept: set[tuple[int, str]] = frozenset()) -> None:
        self.ledger, self.logger, self.kept = Ledger.of(run_dir), logger, kept
        self.sampler: ResourceSampler | None = None  # labels its samples with the stage running (SAMPLED only)
        self._last: dict[tuple[int, str], tuple[str, str | None]] = {}  # (round, stage) → its last outcome, detail

    @property
    def failed(self) -> list[str]:
        """'stage: why' for each stage whose last outcome in its round is failed (a re-verification that failed,
        then passed once the services answered again, is not)."""
        return [f"{stage}: {detail}" for (_, stage), (outcome, detail) in self._last.items() if outcome == "failed"]

    def record(self, stage: str, outcome: str, detail: str | None = None, started_at: float | None = None) -> None:
        now = time.time()
        self.ledger.record("stages", stage=stage, started_at=started_at or now, finished_at=now, outcome=outcome,
                           detail=detail)
        self._last[(self.ledger.round, stage)] = (outcome, detail)

    def run(self, stage: str, flow_fn, *args, **kwargs):
        """The stage's result (a State when asked with return_state=True), or None when it failed, was
        interrupted, was not run or was kept from an earlier attempt."""
        if (self.ledger.round, stage) in self.kept:
            self.logger.info("round %s, %s: kept as an earlier attempt recorded it", self.ledger.round, stage)
            return None
        if stop_requested():
            self.record(stage, "interrupted", "not started: the run was asked to stop")
            return None
        started_at = time.time()
        self.ledger.record("stages", stage=stage, started_at=started_at, finished_at=None, outcome="running")
        if self.sampler is not None and stage in SAMPLED:
            self.sampler.label(stage)
        try:
            result = flow_fn(*args, **kwargs)
        except Interrupted as exc:
            self.record(stage, "interrupted", str(exc), started_at)
            return None
        except Exception as exc:  # recorded, and the campaign goes on with the next stage
            detail = f"{type(exc).__name__}: {exc}"
            self.logger.error("stage %s failed: %s (the next stage still runs)", stage, detail)
            self.record(stage, "failed", detail, started_at)
            return None
        finally:
            if self.sampler is not None:
                self.sampler.label(None)
        if isinstance(result, State) and result.is_failed():  # a stage flow that ended Failed on its own
            self.record(stage, "failed", result.message, started_at)
        else:
            self.record(stage, "interrupted" if stop_requested() else "completed", None, started_at)
        return result

    def skip(self, stages: tuple[str, ...], why: str) -> None:
        """Record these stages as not run for `why`; after a stop request, as interrupted like run() does."""
        for stage in stages:
            if (self.ledger.round, stage) not in self.kept:
                if stop_requested():
                    self.record(stage, "interrupted", "not started: the run was asked to stop")
                else:
                    self.record(stage, "skipped", why)
