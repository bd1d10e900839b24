"""The integration campaign, as it runs: read it as the table of contents.

    python -m flows.full_suite [--profile NAME|PATH] [--set key=value ...]
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, get_run_logger
from prefect.client.schemas.schedules import CronSchedule
from prefect.settings import get_current_settings
from prefect.states import Cancelled, Completed, Failed
from pydantic import Field, ValidationError

from analysis.metrics import metrics_of
from artifacts.console import console_summary
from artifacts.publish import publish_comparison_with_previous, publish_reports, start_progress
from flows.baseline import baseline_resources
from flows.concurrent import concurrent_runs
from flows.conformance import contract_conformance
from flows.faults import fault_experiments, faults_skipped
from flows.latency import api_latency
from flows.lifecycle import ServerDidNotStart, StageLog, campaign_settings, graceful_stop, prefect_api
from flows.reliability import sequential_reliability
from flows.single import single_request
from flows.verify import failing_lines, verify_services
from profiles.redact import install_log_redaction, redact_text, secrets_in
from profiles.settings import Profile, ProfileError, load_profile, shipped_profiles
from tasks.interrupt import reset as reset_stop
from tasks.interrupt import stop_requested
from tasks.processes import ResourceSampler
from tasks.retention import prune_old_videos
from tasks.run import RunRefused, open_run, record_services, run_folder, store_tables, validate_expectations
from tasks.services import services_under_test
from tasks.store import Ledger, new_run_id, read_ledger

LOAD_STAGES = ("baseline", "single", "concurrent", "latency", "sequential", "conformance", "faults")
STOPPING = ("%s: stopping — in-flight jobs are recorded as interrupted, then the reports are written "
            "(send it again to quit at once)")


def planned_jobs(profile: Profile) -> int:
    workload = profile.workload
    return 1 + sum(workload.concurrency_levels) + workload.sequential_jobs


# The types below are what the Prefect UI's run form shows: a list of the shipped profiles beside a
# free path, and an example override. Prefect takes each parameter's description from the docstring
# (it overrides a Field description with it), so the descriptions live there.
ShippedProfile = Annotated[Literal[shipped_profiles()], Field(title="a shipped profile")]
ProfilePath = Annotated[str, Field(title="the path of a TOML profile", examples=["/srv/t2v/my_target.toml"])]
Overrides = Annotated[Sequence[str], Field(examples=[["workload.sequential_jobs=3"]])]


@flow(name="full-suite")
def full_suite(profile: ShippedProfile | ProfilePath = "local", overrides: Overrides = (), run_id: str = "",
               compare_with_previous: bool = False):
    """Verify the target, then measure it: baseline, single, concurrent, latency, reliability, conformance,
    faults; check; report.

    Args:
        profile: The campaign's settings: one of the profiles shipped in profiles/ (`local` starts the bundled
            stack and measures it), or the path of a TOML profile on the machine that runs the flow.
        overrides: Profile settings changed for this run only, one `key=value` each, e.g.
            `workload.sequential_jobs=3` or `workload.concurrency_levels=[1,2]`.
        run_id: The name of this run's folder in the profile's results_dir. Leave it empty for a new id;
            an id whose folder already exists is refused (a run folder belongs to one campaign).
        compare_with_previous: Compare this run with the previous run of its profile in the same results_dir
            that reached its end, and publish the comparison (every headline figure, its change and 95 % CI).
    """
    logger = get_run_logger()
    reset_stop()  # a stop asked of an earlier run served by this process is not this run's
    run_id = run_id or new_run_id()
    try:  # bad input ends the run Failed with its one-line reason, before any traffic
        settings = load_profile(profile, overrides)
        run_folder(settings.results_dir, run_id)  # a taken run id is refused, its folder left untouched
    except (ProfileError, RunRefused) as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc))
    run_dir = open_run(settings, run_id)
    total = planned_jobs(settings)
    progress_id = start_progress(total, profile=settings.name)
    stages = StageLog(run_dir, logger)
    stopped: str | None = None
    with graceful_stop(on_stop=lambda name: logger.warning(STOPPING, name)):
        try:
            with services_under_test(settings) as services:
                args = (settings, services, run_dir)
                finished = stages.run("verification", verify_services, *args, return_state=True)
                checks = read_ledger(Path(run_dir))["services"]  # as recorded, whatever Prefect kept of the state
                record_services(run_dir, services, checks)
                failing = failing_lines(checks) if finished else ["  verification did not finish: see its stage"]
                if failing:
                    stopped = "service verification failed, no job was submitted:\n" + "\n".join(failing)
                    stages.skip(LOAD_STAGES, "service verification failed")
                else:
                    stages.run("baseline", baseline_resources, *args)
                    with ResourceSampler(Ledger.of(run_dir), services.ports(), settings.timing.sample_interval_s,
                                         stage="single") as sampler:
                        single = stages.run("single", single_request, *args, progress_id, total) or {}
                        sampler.stage = "concurrent"
                        stages.run("concurrent", concurrent_runs, *args, progress_id, total)
                    stages.run("latency", api_latency, *args, known_job_id=single.get("job_id"))
                    stages.run("sequential", sequential_reliability, *args, progress_id, total)
                    stages.run("conformance", contract_conformance, *args, known_job_id=single.get("job_id"))
                    if skipped := faults_skipped(settings):
                        stages.skip(("faults",), skipped)
                    else:
                        stages.run("faults", fault_experiments, *args)
        except Exception as exc:  # the target could not even be set up (e.g. the bundled stack did not start)
            stopped = f"campaign stopped early: {type(exc).__name__}: {exc}"
            logger.error("%s", stopped)
        interrupted = stop_requested()
        outcome = "interrupted" if interrupted else "stopped" if stopped else "measured"
        store_tables(run_dir, outcome)
        outcomes = validate_expectations(run_dir, settings) if outcome == "measured" else []
        publish_reports(run_dir)
        if compare_with_previous:
            publish_comparison_with_previous(run_dir)
        prune_old_videos(settings.results_dir, settings.retention, run_dir)  # [retention] of the profile
    failed = metrics_of(run_dir).failures_in_words() if outcomes else []
    if interrupted:
        return Cancelled(message=f"interrupted; what was measured is in {run_dir}", data=run_dir)
    if stopped or stages.failed or failed:
        problems = [stopped] if stopped else [*(f"stage {s}" for s in stages.failed), *failed]
        return Failed(message=redact_text("; ".join(problems)), data=run_dir)  # stage errors may echo a URL
    warned = sum(1 for outcome in outcomes if not outcome["success"] and outcome.get("fails_run") is False)
    passed = f"{len(outcomes) - warned} of {len(outcomes)} expectations passed, {warned} failed as a warning only " \
             "(thresholds.conformance = \"warn\")" if warned else f"all {len(outcomes)} expectations passed"
    return Completed(message=f"{passed}; reports in {run_dir}/reports", data=run_dir)


def secret_overrides(overrides: Sequence[str], secrets: list[str]) -> list[str]:
    """The keys of `--set` items whose value holds one of the profile's secrets literally (not as ${NAME})."""
    return [item.partition("=")[0] for item in overrides if any(secret in item for secret in secrets)]


def end_of_run(run_dir: Path, state, ui_url: str | None) -> str:
    """What the console shows when a run ends: its figures, where it went, its verdict."""
    link = f"{ui_url}/runs/flow-run/{state.state_details.flow_run_id}" if ui_url else \
        "none (a temporary server; set PREFECT_API_URL to keep runs in a Prefect UI)"
    summary = console_summary(metrics_of(run_dir), run_dir) if run_dir.exists() else ""
    return (f"\n{summary}\nrun:     {run_dir}\nreports: {run_dir / 'reports'}\nPrefect: {link}\n"
            f"result:  {state.name}: {state.message}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m flows.full_suite",
        description="Run the text-to-video integration campaign (verification, baseline, single, concurrent, "
        "API latency, sequential reliability, contract conformance, faults and recovery; Great Expectations checks; "
        "Markdown reports) as Prefect flows.",
        epilog="Examples: python -m flows.full_suite --profile smoke\n"
        "          python -m flows.full_suite --profile seed --set workload.concurrency_levels=[1,2]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", default="local",
                        help=f"a shipped profile ({', '.join(shipped_profiles())}) or the path of a TOML profile "
                        "(default: local)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile setting, e.g. --set workload.sequential_jobs=3 (repeatable)")
    parser.add_argument("--serve", metavar="DEPLOYMENT",
                        help="do not run now: serve the campaign as a Prefect deployment with this name (runs "
                        "started from the UI or by --cron) until interrupted; set PREFECT_API_URL to your server")
    parser.add_argument("--cron", metavar="SCHEDULE",
                        help="with --serve: a cron schedule, e.g. '0 3 * * *' (in UTC unless --timezone is given)")
    parser.add_argument("--timezone", metavar="ZONE",
                        help="with --cron: the IANA time zone of its times, e.g. Europe/Berlin (default: UTC)")
    args = parser.parse_args(argv)
    if args.cron and not args.serve:
        parser.error("--cron goes with --serve")
    if args.timezone and not args.cron:
        parser.error("--timezone goes with --cron")
    args.schedule = None
    if args.cron:
        try:
            args.schedule = CronSchedule(cron=args.cron, timezone=args.timezone or "UTC")
        except ValidationError as exc:
            parser.error("; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors()))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_profile(args.profile, args.overrides)
    except ProfileError as exc:
        print(f"full_suite: {exc}", file=sys.stderr)
        return 2
    secrets = secrets_in(settings)
    install_log_redaction(secrets)  # before any line that could name a URL is logged
    if exposed := secret_overrides(args.overrides, secrets):
        print(f"full_suite: --set {', '.join(exposed)}: a password or token given here would be stored with the "
              "run's parameters in Prefect; put it in the environment and refer to it instead, e.g. "
              "--set 'target.redis_url=\"redis://:${REDIS_PASSWORD}@host:6379/0\"'", file=sys.stderr)
        return 2
    if args.serve:
        if not get_current_settings().api.url:  # a temporary server would vanish with this process, and its runs
            print("full_suite: --serve needs a Prefect server that outlives it: start one (prefect server start) "
                  "and set PREFECT_API_URL, e.g. http://127.0.0.1:4200/api", file=sys.stderr)
            return 2
        if args.schedule:
            unset = "" if args.timezone else " (no --timezone given)"
            print(f"schedule: '{args.schedule.cron}' in {args.schedule.timezone}{unset}", flush=True)
        # limit=1: one campaign at a time, as two on one machine would measure each other
        full_suite.serve(name=args.serve, schedules=[args.schedule] if args.schedule else None, limit=1,
                         parameters={"profile": args.profile, "overrides": args.overrides})
        return 0
    run_id = new_run_id()
    run_dir = (settings.results_dir / run_id).resolve()
    try:
        with campaign_settings(), prefect_api() as ui_url:
            state = full_suite(profile=args.profile, overrides=args.overrides, run_id=run_id, return_state=True)
    except ServerDidNotStart as exc:
        print(f"full_suite: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the campaign had started
        where = f"; what was measured is in {run_dir} (python -m artifacts {run_dir} renders it)" \
            if run_dir.exists() else ""
        print(f"\nfull_suite: stopped at once{where}", file=sys.stderr)
        return 130
    print(redact_text(end_of_run(run_dir, state, ui_url)))
    return 0 if state.is_completed() else 130 if state.is_cancelled() else 1


if __name__ == "__main__":
    sys.exit(main())
