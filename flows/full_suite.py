"""The integration campaign, as it runs: read it as the table of contents.

    python -m flows.full_suite [--profile NAME|PATH] [--set key=value ...] [--rounds N | --duration 8h]
    python -m flows.full_suite --resume runs/<run-id>
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
from analysis.rounds import JOB_STAGES, ONCE_AFTER, ROUND_STAGES, parse_duration
from artifacts.console import console_summary
from artifacts.publish import publish_comparison_with_previous, publish_reports, start_progress
from flows.baseline import baseline_resources
from flows.batch import forget_progress, report_where, track_campaign
from flows.concurrent import concurrent_runs
from flows.conformance import contract_conformance
from flows.faults import fault_experiments, faults_skipped
from flows.latency import api_latency
from flows.lifecycle import (
    CampaignStart,
    ServerDidNotStart,
    StageLog,
    campaign_profile,
    campaign_settings,
    graceful_stop,
    open_campaign,
    prefect_api,
)
from flows.reliability import sequential_reliability
from flows.single import single_request
from flows.verify import services_ready
from profiles.redact import install_log_redaction, redact_text, secrets_in
from profiles.settings import Profile, ProfileError, shipped_profiles
from tasks.interrupt import reset as reset_stop
from tasks.interrupt import stop_requested
from tasks.processes import ResourceSampler
from tasks.retention import prune_old_videos
from tasks.run import RunRefused, last_verified_job, release_run, resumable, store_tables, validate_expectations
from tasks.services import services_under_test
from tasks.store import Ledger, new_run_id

LOAD_STAGES = ("baseline", *ROUND_STAGES, *ONCE_AFTER)
STOPPING = ("%s: stopping — in-flight jobs are recorded as interrupted, then the reports are written "
            "(send it again to quit at once)")


def planned_jobs(profile: Profile, stages: Sequence[str] = JOB_STAGES) -> int:
    """Jobs under test one round of these stages submits."""
    workload = profile.workload
    per_stage = {"single": 1, "concurrent": sum(workload.concurrency_levels), "sequential": workload.sequential_jobs}
    return sum(per_stage.get(stage, 0) for stage in stages)


def jobs_left(campaign: CampaignStart) -> int:
    """Jobs this start of the campaign will submit (0 for a soak: its rounds are not counted ahead)."""
    if campaign.rounds is None:
        return 0
    return sum(planned_jobs(campaign.settings, [stage for stage in JOB_STAGES if (round_, stage) not in campaign.kept])
               for round_ in range(campaign.first_round, campaign.rounds + 1))


# The types below are what the Prefect UI's run form shows: a list of the shipped profiles beside a
# free path, and an example override. Prefect takes each parameter's description from the docstring
# (it overrides a Field description with it), so the descriptions live there.
ShippedProfile = Annotated[Literal[shipped_profiles()], Field(title="a shipped profile")]
ProfilePath = Annotated[str, Field(title="the path of a TOML profile", examples=["/srv/t2v/my_target.toml"])]
Overrides = Annotated[Sequence[str], Field(examples=[["workload.sequential_jobs=3"]])]
Rounds = Annotated[int, Field(ge=1, le=10000, examples=[3])]
Duration = Annotated[str, Field(examples=["8h"])]
RunFolder = Annotated[str, Field(examples=["runs/20261127T031500Z-9f3a"])]


@flow(name="full-suite")
def full_suite(profile: ShippedProfile | ProfilePath | None = None, overrides: Overrides = (), run_id: str = "",
               rounds: Rounds | None = None, duration: Duration = "", resume: RunFolder = "",
               compare_with_previous: bool = False):
    """Verify the target, then measure it in rounds (single, concurrent, latency, reliability) after a baseline,
    then conformance and faults; check; report.

    Args:
        profile: The campaign's settings: one of the profiles shipped in profiles/ (`local` starts the bundled
            stack and measures it), or the path of a TOML profile on the machine that runs the flow. Empty:
            `local`, or with `resume` the resumed campaign's own (a different one given with `resume` is refused).
        overrides: Profile settings changed for this run only, one `key=value` each, e.g.
            `workload.sequential_jobs=3` or `workload.concurrency_levels=[1,2]`.
        run_id: The name of this run's folder in the profile's results_dir. Leave it empty for an id made from
            this flow run (a retry of the flow run from the UI then continues its campaign); an id whose folder
            holds another campaign is refused (a run folder belongs to one campaign). With `resume`, leave it empty
            (the resumed folder's name is its id; another id is refused).
        rounds: How many rounds of single, concurrent, latency and sequential to run (empty: the profile's
            campaign.rounds, 1 unless it says otherwise).
        duration: A soak instead of a number of rounds: rounds follow each other until this much time is up, then
            the round in flight finishes, e.g. `8h`, `90m`, `1d` or seconds (empty: no soak).
        resume: The folder of an interrupted campaign to continue, e.g. `runs/<run-id>`: what its ledger recorded
            as done is kept and the stage that was cut runs again, with the campaign's own settings (leave
            profile, run_id, overrides, rounds and duration empty).
        compare_with_previous: Compare this run with the previous run of its profile and plan (workload, rounds or
            duration) in the same results_dir that reached its end, and publish the comparison (every headline
            figure, its change and 95 % CI, and the settings that differ).
    """
    logger = get_run_logger()
    reset_stop()  # a stop asked of an earlier run served by this process is not this run's
    try:  # bad input ends the run Failed with its one-line reason, before any traffic
        campaign = open_campaign(profile, overrides, run_id, rounds, duration, resume)
    except (ProfileError, RunRefused) as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc))
    settings, run_dir, ledger = campaign.settings, campaign.run_dir, Ledger.of(campaign.run_dir)
    total = jobs_left(campaign)
    progress_id = start_progress(total, settings.name, campaign.rounds)
    track_campaign(run_dir, campaign.rounds, campaign.deadline, settings.campaign.duration_s)
    stages = StageLog(run_dir, logger, campaign.kept)
    stopped: str | None = None
    with graceful_stop(on_stop=lambda name: logger.warning(STOPPING, name)):
        try:
            with services_under_test(settings) as services, ResourceSampler(
                    ledger, services.ports(), settings.timing.sample_interval_s, stage=None) as stages.sampler:
                args = (settings, services, run_dir)
                for round_ in campaign.rounds_to_run():
                    ledger.round = round_
                    report_where(run_dir, "starting", progress_id, total)
                    # a new campaign's round 1 is verified once; later rounds, and a resumed campaign's (new) stack,
                    # are re-verified, waiting for services that do not answer
                    if not_ready := services_ready(stages, settings, services, run_dir,
                                                   may_wait=round_ > 1 or campaign.attempt > 1):
                        stages.skip(LOAD_STAGES if round_ == 1 else (*ROUND_STAGES, *ONCE_AFTER), not_ready.reason)
                        stopped = f"campaign stopped at round {round_}: {not_ready}"
                        break
                    if round_ == 1:
                        stages.run("baseline", baseline_resources, *args)
                    single = stages.run("single", single_request, *args, progress_id, total) or {}
                    stages.run("concurrent", concurrent_runs, *args, progress_id, total)
                    stages.run("latency", api_latency, *args, known_job_id=single.get("job_id"))
                    stages.run("sequential", sequential_reliability, *args, progress_id, total)
                if not stopped:  # once, in the last round
                    stages.run("conformance", contract_conformance, *args, known_job_id=last_verified_job(run_dir))
                    if skipped := faults_skipped(settings):
                        stages.skip(("faults",), skipped)
                    else:
                        stages.run("faults", fault_experiments, *args)
        except Exception as exc:  # the target could not even be set up (e.g. the bundled stack did not start)
            stopped = f"campaign stopped early: {type(exc).__name__}: {exc}"
            logger.error("%s", stopped)
        interrupted = stop_requested()
        outcome = "interrupted" if interrupted else "stopped" if stopped else "measured"
        try:
            if store_tables(run_dir, outcome)["jobs"] and not interrupted:  # stopped at round k: 1..k-1 checked
                validate_expectations(run_dir, settings)
            publish_reports(run_dir)
            if compare_with_previous:
                publish_comparison_with_previous(run_dir)
            prune_old_videos(settings.results_dir, settings.retention, run_dir)  # [retention] of the profile
        finally:
            forget_progress(run_dir)
            release_run(run_dir)
    metrics = metrics_of(run_dir)
    if interrupted:
        return Cancelled(message=f"interrupted; what was measured is in {run_dir}", data=run_dir)
    if stopped or stages.failed or metrics.failures_in_words():
        # a campaign stopped early: why, then, when rounds before the stop were checked, what the checks cover
        problems = [stopped + (f"\n{metrics.verdict}" if metrics.validated else "")] if stopped else \
            [*(f"stage {s}" for s in stages.failed), *metrics.failures_in_words()]
        return Failed(message=redact_text("; ".join(problems)), data=run_dir)  # stage errors may echo a URL
    return Completed(message=f"{metrics.checks_passed_text()}; reports in {run_dir}/reports", data=run_dir)


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


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of rounds, 1 or more, got {text!r}")
    return int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m flows.full_suite",
        description="Run the text-to-video integration campaign (verification, baseline, single, concurrent, "
        "API latency, sequential reliability, contract conformance, faults and recovery; Great Expectations checks; "
        "Markdown reports) as Prefect flows.",
        epilog="Examples: python -m flows.full_suite --profile smoke\n"
        "          python -m flows.full_suite --profile seed --set workload.concurrency_levels=[1,2]\n"
        "          python -m flows.full_suite --profile local --rounds 3\n"
        "          python -m flows.full_suite --profile local --duration 8h      # a soak\n"
        "          python -m flows.full_suite --resume runs/20261127T031500Z-9f3a",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile",
                        help=f"a shipped profile ({', '.join(shipped_profiles())}) or the path of a TOML profile "
                        "(default: local)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile setting, e.g. --set workload.sequential_jobs=3 (repeatable)")
    plan = parser.add_mutually_exclusive_group()
    plan.add_argument("--rounds", type=positive_int, metavar="N",
                      help="repeat single, concurrent, API latency and sequential N times (verification and "
                      "baseline once before, conformance and faults once after; services re-verified between "
                      "rounds); default: the profile's campaign.rounds (1)")
    plan.add_argument("--duration", metavar="TIME",
                      help="a soak: rounds until TIME is up, then the round in flight finishes; e.g. 90m, 8h, 1d "
                      "or seconds")
    parser.add_argument("--resume", metavar="RUN_FOLDER",
                        help="continue an interrupted campaign in its folder (e.g. runs/<run-id>) with its own "
                        "settings: what its ledger recorded as done is kept, the stage that was cut runs again")
    parser.add_argument("--serve", metavar="DEPLOYMENT",
                        help="do not run now: serve the campaign as a Prefect deployment with this name (runs "
                        "started from the UI or by --cron) until interrupted; set PREFECT_API_URL to your server")
    parser.add_argument("--cron", metavar="SCHEDULE",
                        help="with --serve: a cron schedule, e.g. '0 3 * * *' (in UTC unless --timezone is given)")
    parser.add_argument("--timezone", metavar="ZONE",
                        help="with --cron: the IANA time zone of its times, e.g. Europe/Berlin (default: UTC)")
    args = parser.parse_args(argv)
    given = [name for name, value in (("--profile", args.profile), ("--set", args.overrides), ("--rounds", args.rounds),
                                      ("--duration", args.duration), ("--serve", args.serve)) if value]
    if args.resume and given:
        parser.error(f"--resume continues a campaign with the settings it was started with: {', '.join(given)} "
                     "cannot go with it")
    args.profile = args.profile or "local"
    try:
        args.duration_s = parse_duration(args.duration) if args.duration else None
    except ValueError as exc:
        parser.error(f"--duration: {exc}")
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
        if args.resume:
            run_dir = Path(args.resume).resolve()
            invocation = resumable(run_dir)["invocation"]
            settings = campaign_profile(invocation, run_dir.parent)
            parameters = {"profile": invocation["profile"], "resume": str(run_dir)}
        else:
            settings = campaign_profile({"profile": args.profile, "overrides": args.overrides, "rounds": args.rounds,
                                         "duration_s": args.duration_s})
            parameters = {"profile": args.profile, "overrides": args.overrides, "rounds": args.rounds,
                          "duration": args.duration or ""}
    except (ProfileError, RunRefused) as exc:
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
                         parameters=parameters)
        return 0
    if not args.resume:
        parameters["run_id"] = new_run_id()
        run_dir = (settings.results_dir / parameters["run_id"]).resolve()
    try:
        with campaign_settings(), prefect_api() as ui_url:
            state = full_suite(**parameters, return_state=True)
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
