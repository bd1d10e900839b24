"""The integration campaign, as it runs: read it as the table of contents.

    python -m flows.full_suite [--profile NAME|PATH] [--set key=value ...]
"""

import argparse
import sys

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from artifacts.publish import publish_reports, start_progress
from flows.baseline import baseline_resources
from flows.concurrent import concurrent_runs
from flows.latency import api_latency
from flows.reliability import sequential_reliability
from flows.single import single_request
from flows.verify import verify_services
from profiles.settings import Profile, ProfileError, load_profile
from tasks.processes import ResourceSampler
from tasks.run import open_run, record_services, store_tables, validate_expectations
from tasks.services import services_under_test
from tasks.store import Ledger, new_run_id


def planned_jobs(profile: Profile) -> int:
    workload = profile.workload
    return 1 + sum(workload.concurrency_levels) + workload.sequential_jobs


@flow(name="full-suite")
def full_suite(profile: str = "local", overrides: list[str] | None = None, run_id: str | None = None):
    """Verify the target, then measure it: baseline, single, concurrent, latency, reliability; check; report."""
    logger = get_run_logger()
    settings = load_profile(profile, overrides)  # a bad profile fails here, before any traffic
    run_dir = open_run(settings, run_id or new_run_id())
    total = planned_jobs(settings)
    progress_id = start_progress(total)
    stopped: str | None = None
    try:
        with services_under_test(settings) as services:
            stages = (settings, services, run_dir)
            checks = verify_services(*stages)
            record_services(run_dir, services, checks)
            failing = [f"  {row['service']}: {row['detail']} — {row['fix']}" for row in checks if not row["ok"]]
            if failing:
                stopped = "service verification failed, no job was submitted:\n" + "\n".join(failing)
            else:
                baseline_resources(*stages)
                with ResourceSampler(Ledger.of(run_dir), services.ports(), settings.timing.sample_interval_s,
                                     stage="single") as sampler:
                    single = single_request(*stages, progress_id, total)
                    sampler.stage = "concurrent"
                    concurrent_runs(*stages, progress_id, total)
                api_latency(*stages, known_job_id=single.get("job_id"))
                sequential_reliability(*stages, progress_id, total)
    except Exception as exc:  # keep every measurement taken so far and still publish the reports
        stopped = f"campaign stopped early: {type(exc).__name__}: {exc}"
        logger.exception("campaign stopped early")
    store_tables(run_dir, stopped or "measured")
    outcomes = validate_expectations(run_dir, settings) if not stopped else []
    publish_reports(run_dir)
    failed = [f"{o['suite']}: {o['expectation']} on {o['column'] or 'table'}" for o in outcomes if not o["success"]]
    if stopped or failed:
        return Failed(message=stopped or f"{len(failed)} expectation(s) failed: " + "; ".join(failed), data=run_dir)
    return Completed(message=f"all {len(outcomes)} expectations passed; reports in {run_dir}/reports", data=run_dir)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m flows.full_suite",
        description="Run the text-to-video integration campaign (verification, baseline, single, concurrent, "
        "API latency, sequential reliability; Great Expectations checks; Markdown reports) as Prefect flows.",
        epilog="Examples: python -m flows.full_suite --profile smoke\n"
        "          python -m flows.full_suite --profile seed --set workload.concurrency_levels=[1,2]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", default="local",
                        help="a shipped profile (local, seed, smoke) or the path of a TOML profile (default: local)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile setting, e.g. --set workload.sequential_jobs=3 (repeatable)")
    parser.add_argument("--serve", metavar="DEPLOYMENT",
                        help="do not run now: serve the campaign as a Prefect deployment with this name (runs "
                        "started from the UI or by --cron) until interrupted; set PREFECT_API_URL to your server")
    parser.add_argument("--cron", metavar="SCHEDULE", help="with --serve: a cron schedule, e.g. '0 3 * * *'")
    args = parser.parse_args(argv)
    if args.cron and not args.serve:
        parser.error("--cron goes with --serve")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_profile(args.profile, args.overrides)
    except ProfileError as exc:
        print(f"full_suite: {exc}", file=sys.stderr)
        return 2
    if args.serve:
        full_suite.serve(name=args.serve, cron=args.cron,
                         parameters={"profile": args.profile, "overrides": args.overrides})
        return 0
    run_id = new_run_id()
    state = full_suite(profile=args.profile, overrides=args.overrides, run_id=run_id, return_state=True)
    run_dir = (settings.results_dir / run_id).resolve()
    print(f"\nrun:     {run_dir}\nreports: {run_dir / 'reports'}\nresult:  {state.name}: {state.message}")
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
