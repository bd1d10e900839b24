"""Stage 8: error handling and recovery. One experiment per fault, each a steady-state hypothesis tested,
a fault injected and watched, restored, and the recovery measured (analysis.faults).

Per experiment: the steady state must hold first (health `healthy` and the last job verified); jobs are put
in flight when the fault is one that hits them; the fault is injected; while it lasts a job is submitted
and health probed; the fault is restored; then the time until health is healthy again and until a new job
is verified, and what became of every job of the experiment (failed, hung, still not terminal: stuck).

The experiments' jobs are run by the campaign's own job machinery (tasks.jobs, flows.batch) into a ledger
of their own, `<run>/faults/` (rows, status traces, videos), so they never enter the campaign's job
figures; their counts go to the `faults` table.
"""

# No `from __future__ import annotations` here: Prefect builds the flow's parameter model from these
# annotations, and in a served deployment's run the string forms could not be resolved ("not fully defined").
import itertools
import threading
import time
from pathlib import Path

from prefect import flow

from analysis.faults import WITH_JOBS, JobSeen, steady_state
from flows.batch import check_output, run_batch
from profiles.settings import Profile
from tasks.faults import (
    BackgroundCommand,
    ExperimentLog,
    Planned,
    fault_jobs_profile,
    inject_fault,
    job_status,
    plan,
    restore_fault,
    wait_healthy,
    wait_processing,
    watch_health,
)
from tasks.interrupt import Interrupted, pause, stop_requested
from tasks.jobs import measure_job
from tasks.services import Services

STAGE = "faults"
JOBS_FOLDER = "faults"  # in the run folder: the experiments' own ledger and videos
COMMAND_END_MARGIN_S = 5.0  # a command killed at its bound has ended within this


def faults_skipped(profile: Profile) -> str | None:
    """Why the stage does not run for this profile (None: it runs)."""
    return plan(profile.faults, profile.target.bundled_stack)[1]


@flow(name="faults")
def fault_experiments(profile: Profile, services: Services, run_dir: str) -> list[dict]:
    """Run the profile's fault experiments one after another; what each sees is recorded as it is seen
    (`fault_events`), and one that breaks is recorded as broken while the next still runs."""
    planned, _ = plan(profile.faults, profile.target.bundled_stack)
    jobs_dir = str(Path(run_dir) / JOBS_FOLDER)
    bounded = fault_jobs_profile(profile)
    steady: dict | None = None  # the last verified job: the steady state's job, until the next experiment
    results = []
    for number, item in enumerate(planned, start=1):
        if stop_requested():
            break
        log = ExperimentLog(run_dir, number, item.service, item.fault)
        log("planned", {"recovery_bound_s": profile.faults.recovery_bound_s,
                        "injected_by": "launcher" if item.commands is None else "commands"})
        try:
            if item.not_run:
                log("not_run", item.not_run)
            else:
                if steady is None or not steady.get("succeeded"):
                    steady = verified_job(bounded, services, jobs_dir, number, batch=0)
                steady = experiment(bounded, services, jobs_dir, item, number, steady, log)
        except Interrupted:  # the run's stop: what was seen is recorded; the stage ends here
            log("interrupted")
            log("ended")
            results.append(log.result().model_dump())
            break
        except Exception as exc:  # a bug or an answer no one expected: this experiment's failure, not the stage's
            log("error", f"{type(exc).__name__}: {exc}")
            steady = None
        log("ended")
        results.append(log.result().model_dump())
    return results


def verified_job(profile: Profile, services: Services, jobs_dir: str, number: int, batch: int) -> dict:
    """One job run to its verified end (flows.batch), the experiment's `number` as its level."""
    return run_batch(profile, services, jobs_dir, STAGE, number, batch, profile.workload.documents[:1], None, 1)[0]


def experiment(profile: Profile, services: Services, jobs_dir: str, item: Planned, number: int,
               steady: dict, log: ExperimentLog) -> dict | None:
    """One fault, injected, watched, restored and measured, each observation given to `log` as it is made;
    returns the last job verified or tried."""
    faults = profile.faults
    health = watch_health(profile, services, 0.0, 0.0)
    if unsteady := steady_state(health[-1] if health else "not asked", steady.get("outcome"), steady.get("failure")):
        log("steady_before", unsteady)
        return None
    document = str(profile.workload.documents[0])
    slots = itertools.count()
    jobs: list[tuple[str, object]] = []  # (role, future of measure_job)

    def submit(role: str):
        future = measure_job.submit(profile, services, jobs_dir, document, STAGE, number, 1, next(slots),
                                    profile.timing.poll_interval_s)
        jobs.append((role, future))
        return future

    if item.fault in WITH_JOBS:
        for _ in range(faults.jobs_in_flight):
            submit("in_flight")
        if not wait_processing(profile, services, faults.job_bound_s):
            log("note", "no job was seen processing before the fault was injected")
    def under_the_fault(at_least_s: float, at_most_s: float, over=None) -> None:
        """Submit a job and probe health while the fault lasts: at least `at_least_s`, then until `over()` (by
        default: until the job under it has ended), at most `at_most_s`."""
        during_done = threading.Event()
        submit("during").add_done_callback(lambda _: during_done.set())
        watch_health(profile, services, at_least_s, at_most_s, over or during_done.is_set,
                     lambda words: log("health", words))

    if item.commands is not None and item.commands.restore is None:
        restored_at = one_command_fault(profile, item, log, under_the_fault)
    else:
        injected_at = time.time()
        try:
            problem = inject_fault(profile, services, item)
            if problem:  # nothing to measure; it is still restored, in case part of it took
                log("inject_failed", problem)
            else:
                log("injected", at=injected_at)
                hold = faults.freeze_s if item.fault == "frozen" else faults.hold_s
                # a slow llm lasts until the job under it has ended (within its bound): that job is the observation
                longest = faults.job_bound_s if item.fault == "slow" else hold
                under_the_fault(hold, longest)
        finally:  # recovery is timed from the end of the restore action: its own time (a start, a command) apart
            log("restore_started")
            problem = restore_fault(profile, services, item)
            restored_at = log("restored")
        if problem:
            log("note", f"restore failed: {problem}")
    last = None
    injected = not any(event["kind"] == "inject_failed" for event in log.events)
    if not stop_requested() and injected:
        healthy_at, said = wait_healthy(profile, services, faults.recovery_bound_s)
        if healthy_at is None:
            log("note", f"health last said {said}")
        else:
            log("healthy", at=healthy_at)
        last = first_success(profile, services, jobs_dir, number, restored_at, log)
    settled = settle(profile, services, jobs_dir, jobs)
    for job in settled:
        log("job", job.model_dump())
    if stop_requested():
        log("interrupted")
    if item.fault == "slow":
        for note in slow_note(settled, steady, faults.llm_delay_s):
            log("note", note)
    return last


def one_command_fault(profile: Profile, item: Planned, log: ExperimentLog, under_the_fault) -> float:
    """A fault that is one command with no restore (`docker restart redis`): the command runs in the background, a
    job is submitted and health probed while it runs, and the fault is over when it ends; that instant (returned) is
    what recovery is timed from."""
    bound = profile.faults.action_timeout_s
    command = BackgroundCommand(f"faults.actions.{item}.inject", item.commands.inject, bound)
    log("injected", at=command.started_at)
    under_the_fault(0.0, bound, command.ended.is_set)
    command.ended.wait(bound + COMMAND_END_MARGIN_S)  # it kills itself at its bound
    if command.problem:
        log("inject_failed", command.problem)
    ended_at = command.ended_at or time.time()
    log("note", f"no restore command: the fault was its inject command, over when that ended "
                f"({ended_at - command.started_at:.1f} s after it began)")
    return log("restored", at=ended_at)


def first_success(profile: Profile, services: Services, jobs_dir: str, number: int, restored_at: float,
                  log: ExperimentLog) -> dict | None:
    """New jobs one after another from the restore on, until one is verified (its terminal status is the
    `first_success` event) or the recovery bound has passed (at least one is tried)."""
    ends = restored_at + profile.faults.recovery_bound_s
    row = None
    for batch in itertools.count(2):
        row = verified_job(profile, services, jobs_dir, number, batch)
        if row.get("succeeded"):
            log("first_success", at=row.get("finished_at"))
            break
        if time.time() >= ends or pause(profile.timing.poll_interval_s):
            break
    return row


def settle(profile: Profile, services: Services, jobs_dir: str, jobs: list) -> list[JobSeen]:
    """Every job of the experiment once it has ended or been given up (each bounded by faults.job_bound_s):
    a video the server said it made is checked, and the server is asked what the job's status is now."""
    settled = []
    for role, future in jobs:
        row = future.result(raise_on_failure=False)
        if not isinstance(row, dict):  # the task itself broke: nothing known of the job
            settled.append(JobSeen(role=role, job_id=None, outcome="failed", failure=f"measure-job failed: {row}"))
            continue
        if row.get("outcome") == "running" and not stop_requested():  # the server said it has a video
            check_output(profile, services, jobs_dir, STAGE, row)
        final = job_status(profile, services, row["job_id"]) if row.get("job_id") and not stop_requested() else None
        settled.append(JobSeen(role=role, job_id=row.get("job_id"), outcome=row.get("outcome") or "failed",
                               failure=row.get("failure"), seconds=row.get("total_seconds"), final_status=final))
    return settled


def slow_note(jobs: list[JobSeen], steady: dict, delay_s: float) -> list[str]:
    """How long the job under a slow llm took, beside the steady state's job."""
    during = [job for job in jobs if job.role == "during" and job.seconds is not None]
    if not during:
        return []
    before = steady.get("total_seconds")
    beside = f" (steady-state job {before:.1f} s)" if before is not None else ""
    return [f"the job under a {delay_s:g} s llm delay {during[0].outcome} after {during[0].seconds:.1f} s{beside}"]
