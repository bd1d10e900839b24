"""Fault injection and recovery: the figures of recorded observations (pure), the experiment plan, the
fault commands of an external target, and real faults against the bundled stack and its supervisor."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from analysis.faults import (
    EXPERIMENTS,
    JobSeen,
    Observed,
    fault_result,
    fault_rows,
    health_words,
    names_dependency,
    results_of,
    skipped_reason,
    steady_state,
)
from analysis.metrics import compute_metrics
from analysis.schema import frame
from artifacts.markdown import fault_sentence, faults_summary
from profiles.redact import register_secrets
from profiles.settings import Faults, ProfileError, load_profile
from stack import running_stack
from stack.launcher import SERVICES, free_port
from tasks.faults import _run_command, plan
from tasks.services import Services
from tasks.store import read_ledger
from tests.stackutil import submit, wait_for, wait_until

DOCS = Path(__file__).parent.parent / "profiles" / "documents"
SHORT = (DOCS / "short_note.txt").read_bytes()
T0 = 1_800_000_000.0


# ---- the figures of an experiment, from what was seen (pure) -------------------------------------------

def test_health_in_words():
    degraded = {"status": "degraded", "dependencies": {"tts_service": "down", "llm_service": "up", "redis": "up"}}
    assert health_words(200, degraded) == "degraded (tts_service: down)"
    assert health_words(200, {"status": "healthy", "dependencies": {"tts_service": "up"}}) == "healthy"
    assert health_words(503, {"detail": "redis unavailable"}) == "HTTP 503"
    assert health_words(200, None) == "HTTP 200, not a JSON object"
    assert health_words(None, None, "ConnectError") == "no answer (ConnectError)"


def test_a_job_error_names_its_dependency_by_whole_word():
    assert names_dependency("server reported failed: tts: cannot reach http://127.0.0.1:4123 (ConnectError)", "tts")
    assert names_dependency("llm: no answer from http://x/api/chat within 5 s", "llm")
    assert names_dependency("upload answered HTTP 503: redis unavailable: Error 111", "redis")
    assert names_dependency("interrupted: the server restarted while this job was processing", "server")
    assert not names_dependency("server reported failed: llm: request failed", "tts")
    assert not names_dependency("submit failed: ConnectError: All connection attempts failed", "server")
    assert not names_dependency("the settings of attsx were wrong", "tts")  # a word, not a piece of one
    assert names_dependency(None, "tts") is None


def test_the_steady_state_hypothesis():
    assert steady_state("healthy", "succeeded") is None
    assert steady_state("degraded (redis: down)", "succeeded") == "health said degraded (redis: down)"
    assert steady_state("healthy", "failed", "tts: cannot reach") == "a job failed: tts: cannot reach"


def killed_tts(**changes) -> Observed:
    """A recorded tts kill: the job under it failed naming the tts; health healthy 1.5 s and a verified video
    4 s after the restore."""
    seen = Observed(
        service="tts", fault="killed", injected_at=T0, restored_at=T0 + 2.0, healthy_at=T0 + 3.5,
        first_success_at=T0 + 6.0, recovery_bound_s=30,
        health=["healthy", "degraded (tts_service: down)", "degraded (tts_service: down)"],
        jobs=[JobSeen(role="during", job_id="j1", outcome="failed", seconds=1.1, final_status="failed",
                      failure="server reported failed: tts: cannot reach http://127.0.0.1:1 (ConnectError)")],
    )
    return seen.model_copy(update=changes)


def test_a_recovered_fault_in_figures():
    result = fault_result(killed_tts())
    assert result.recovered is True
    assert result.recovery_s == pytest.approx(1.5) and result.first_success_s == pytest.approx(4.0)
    assert result.jobs_failed_during == 1 and result.jobs_stuck == 0 and not result.hung
    assert result.health_during == "healthy → degraded (tts_service: down)"
    assert result.job_error_during.startswith("server reported failed: tts: cannot reach")
    assert result.named_dependency is True
    assert result.detail == ("jobs: 1 submitted during the fault (1 failed); the fault held 2.0 s; healthy 1.5 s after "
                             "restore; first verified video 4.0 s after restore")


def test_recovery_is_timed_from_the_end_of_the_restore_action():
    """restore = "sleep 3; docker start tts": the restore's own 3 s are not the deployment's recovery."""
    result = fault_result(killed_tts(restore_started_at=T0 + 2.0, restored_at=T0 + 5.0, healthy_at=T0 + 5.5,
                                     first_success_at=T0 + 8.0))
    assert result.restore_s == pytest.approx(3.0) and result.recovery_s == pytest.approx(0.5)
    assert result.first_success_s == pytest.approx(3.0)
    assert "the fault held 2.0 s; the restore took 3.0 s (recovery is timed from its end)" in result.detail

def test_a_recovery_beyond_the_bound_is_no_recovery():
    late = fault_result(killed_tts(first_success_at=T0 + 2.0 + 31))
    assert late.recovered is False and late.first_success_s == pytest.approx(31)
    assert "first verified video 31.0 s after restore, beyond the bound of 30 s" in late.detail
    assert fault_result(killed_tts(healthy_at=T0 + 40)).recovered is False

def test_no_recovery_within_the_bound_and_jobs_left_stuck():
    stuck = [JobSeen(role="in_flight", job_id=f"j{i}", outcome="timed_out", failure="timed out after 20 s",
                     final_status="processing") for i in range(2)]
    refused = JobSeen(role="during", job_id=None, outcome="not_submitted",
                      failure="submit failed: upload answered HTTP 503: redis unavailable")
    seen = killed_tts(service="redis", fault="restarted_with_jobs", healthy_at=None, first_success_at=None,
                      jobs=[*stuck, refused], health=["degraded (redis: down)"])
    result = fault_result(seen)
    assert result.recovered is False and result.recovery_s is None and result.first_success_s is None
    assert result.jobs_stuck == 2 and result.hung
    assert result.jobs_failed_during == 0 and result.submissions_refused == 1  # refused, not failed; the stuck hung
    assert result.job_error_during == "submit failed: upload answered HTTP 503: redis unavailable"
    assert result.named_dependency is True
    assert "health not healthy again within 30 s" in result.detail and "2 job(s) still not terminal" in result.detail


def test_the_servers_own_words_come_before_a_refused_submission():
    """A server killed with jobs in flight: the accepted jobs' error (the server's) is the one quoted."""
    jobs = [JobSeen(role="in_flight", job_id="j1", outcome="failed", final_status="failed",
                    failure="server reported failed: interrupted: the server restarted while this job was processing"),
            JobSeen(role="during", job_id=None, outcome="not_submitted",
                    failure="submit failed: ConnectError: All connection attempts failed")]
    result = fault_result(killed_tts(service="server", fault="killed_with_jobs", jobs=jobs))
    assert "the server restarted" in result.job_error_during and result.named_dependency is True
    assert result.jobs_failed_during == 1 and result.submissions_refused == 1


def test_an_experiment_not_run_or_cut_short_claims_no_recovery():
    missing = "no commands under [faults.actions.llm.frozen]"
    not_run = fault_result(Observed(service="llm", fault="frozen", not_run=missing))
    assert not_run.recovered is None and not_run.detail == f"not run: {missing}"
    unsteady = fault_result(Observed(service="tts", fault="killed", steady_before="health said degraded (redis: down)"))
    assert unsteady.recovered is None and "steady state did not hold before the fault" in unsteady.detail
    cut = fault_result(killed_tts(interrupted=True, healthy_at=None, first_success_at=None))
    assert cut.recovered is None and cut.detail == ("interrupted by the run's stop (the fault was restored); jobs: 1 "
                                                    "submitted during the fault (1 failed); the fault held 2.0 s")
    assert [not_run.state, unsteady.state, cut.state] == ["not_run", "not_run", "interrupted"]
    measured = fault_result(killed_tts())
    assert measured.state == "measured"
    # in words: an interrupted experiment was injected, and is neither recovered nor "could not be run"
    assert fault_sentence(cut) == ("The experiment where tts was killed and restarted: injected, interrupted before "
                                   "recovery was measured.")
    metrics = compute_metrics({}, {}, []).model_copy(update={"faults": [measured, cut, not_run]})
    assert faults_summary(metrics) == ("The deployment recovered from 1 of 1 measured fault; 1 experiment injected and "
                                       "interrupted before recovery was measured; 1 experiment could not be run.")
    # rows stored before `state` existed read as they were meant
    old_rows = [{**result.model_dump(exclude={"state"}), "t": T0 + i}
                for i, result in enumerate([measured, cut, not_run])]
    assert [result.state for result in results_of(frame("faults", old_rows))] == ["measured", "interrupted", "not_run"]


def test_a_freeze_is_worded_by_what_did_it():
    frozen = killed_tts(fault="frozen")
    by_launcher = fault_result(frozen.model_copy(update={"injected_by": "launcher"}))
    by_command = fault_result(frozen.model_copy(update={"injected_by": "commands"}))  # e.g. docker pause
    assert fault_sentence(by_launcher).startswith("After tts was frozen (SIGSTOP) and resumed,")
    assert fault_sentence(by_command).startswith("After tts was frozen and resumed,")

def test_stored_results_and_why_there_are_none():
    rows = [{"t": T0 + 1, **fault_result(killed_tts()).model_dump()}]
    results = results_of(frame("faults", rows))
    assert len(results) == 1 and results[0].recovery_s == pytest.approx(1.5)
    stages = frame("stages", [{"stage": "faults", "outcome": "skipped", "detail": "faults.enabled = false"}])
    assert skipped_reason(stages, []) == "faults.enabled = false"
    assert skipped_reason(frame("stages", []), []) == "the faults stage did not run"
    assert skipped_reason(stages, results) is None
    metrics = compute_metrics({"faults": frame("faults", rows)}, {}, [])
    assert metrics.faults == results and metrics.faults_skipped is None
    skipped = compute_metrics({"stages": stages}, {}, [])
    assert skipped.faults == [] and skipped.faults_skipped == "faults.enabled = false"



def events(*kinds, experiment=1, service="tts", fault="killed") -> list[dict]:
    """`fault_events` rows as the stage records them: (kind, seconds after T0, value)."""
    return [{"round": 1, "attempt": 1, "experiment": experiment, "service": service, "fault": fault, "kind": kind,
             "at": None if at is None else T0 + at, "value": value} for kind, at, value in kinds]


def test_the_figures_are_made_of_the_events_as_they_were_recorded():
    job = JobSeen(role="during", job_id="j1", outcome="failed", failure="tts: cannot reach", final_status="failed")
    whole = events(("planned", 0, json.dumps({"recovery_bound_s": 30})), ("injected", 0.1, None),
                   ("health", 0.5, "degraded (tts_service: down)"), ("restored", 2.1, None),
                   ("healthy", 3.6, None), ("first_success", 6.1, None), ("job", 6.5, job.model_dump_json()),
                   ("ended", 6.6, None))
    [row] = fault_rows(whole)
    assert row["t"] == T0 + 6.6 and row["round"] == 1 and row["state"] == "measured" and row["recovered"] is True
    assert row["recovery_s"] == pytest.approx(1.5) and row["first_success_s"] == pytest.approx(4.0)
    assert row["jobs_failed_during"] == 1 and row["named_dependency"] is True
    assert "the fault held 2.0 s" in row["detail"]
    # the process killed while the fault held: what was seen is kept, and reads as interrupted, not as not run
    [cut] = fault_rows(whole[:3])
    assert cut["state"] == "interrupted" and cut["recovered"] is None
    assert cut["health_during"] == "degraded (tts_service: down)"
    assert cut["detail"].startswith("interrupted by the run's stop (the fault was not seen restored)")
    assert "cut off: the run ended before this experiment did" in cut["detail"]
    # killed before injecting: nothing was done to the deployment
    [early] = fault_rows(whole[:1])
    assert early["state"] == "not_run" and "cut off before the fault was injected" in early["detail"]
    [stopped] = fault_rows(whole[:1] + events(("interrupted", 1, None), ("ended", 1, None)))
    assert stopped["state"] == "not_run" and stopped["detail"] == "not run: the run's stop came before the fault " \
                                                                   "was injected"
    # an experiment that broke is that experiment's failure; the next one is its own row
    broken = events(("planned", 0, None), ("injected", 0.1, None), ("restored", 2.1, None),
                    ("error", 3, "CalledProcessError: boom"), ("ended", 3.1, None))
    second = events(("planned", 4, None), ("not_run", 4, "no commands"), ("ended", 4, None), experiment=2,
                    service="llm", fault="frozen")
    first, other = fault_rows(broken + second)
    assert first["state"] == "measured" and first["recovered"] is False
    assert "the experiment broke: CalledProcessError: boom" in first["detail"]
    assert other["service"] == "llm" and other["state"] == "not_run" and other["detail"] == "not run: no commands"

# ---- the plan, and the commands of an external target -------------------------------------------------

def test_plan_bundled_external_and_off():
    planned, skipped = plan(Faults(), bundled=True)
    assert skipped is None and [str(p) for p in planned] == list(EXPERIMENTS)
    assert "off for an external target" in plan(Faults(), bundled=False)[1]
    assert plan(Faults(enabled=False), bundled=True) == ([], "faults.enabled = false")
    assert "no fault commands" in plan(Faults(enabled=True), bundled=False)[1]
    external = Faults(enabled=True, actions={"tts": {"killed": {"inject": "docker kill tts", "restore": "x"}}})
    planned, skipped = plan(external, bundled=False)
    assert skipped is None and [str(p) for p in planned] == ["tts.killed"] and planned[0].not_run is None
    listed = external.model_copy(update={"experiments": ["tts.killed", "llm.frozen"]})
    planned, _ = plan(listed, bundled=False)
    assert planned[1].not_run == "no commands under [faults.actions.llm.frozen] for an external target"


def test_commands_for_a_fault_with_no_experiment_are_refused_at_load():
    """Every service is killed and restarted (redis too); a slow tts has no experiment, so its commands would never
    run: the profile is refused, naming the key and the pairs there are."""
    assert {"tts.killed", "llm.killed", "redis.killed"} <= set(EXPERIMENTS)
    assert load_profile("smoke", ['faults.actions.redis.killed.inject="docker kill redis"'])
    with pytest.raises(ProfileError) as refused:
        load_profile("smoke", ['faults.actions.tts.slow.inject="tc qdisc add dev eth0 root netem delay 1s"'])
    assert "[faults.actions.tts.slow]: no such fault experiment; commands can be given for tts.killed, llm.killed, " \
           "redis.killed," in str(refused.value)

def test_fault_settings_that_cannot_work_on_the_bundled_stack_are_refused_at_load():
    with pytest.raises(ProfileError, match="faults.freeze_s = 5 must be more than faults.bundled_dependency_timeout_s"):
        load_profile("smoke", ["faults.freeze_s=5", "faults.bundled_dependency_timeout_s=5"])
    with pytest.raises(ProfileError, match="faults.freeze_s = 4000 is beyond the bundled stack's longest freeze"):
        load_profile("smoke", ["faults.freeze_s=4000"])
    with pytest.raises(ProfileError, match="faults.llm_delay_s = 5000 is beyond"):
        load_profile("smoke", ["faults.llm_delay_s=5000"])
    # no freeze planned, or an external target (whose server's bound the profile does not know): nothing to check
    assert load_profile("smoke", ["faults.freeze_s=5", 'faults.experiments=["tts.killed"]'])
    assert load_profile("seed", ["faults.freeze_s=5", "faults.enabled=true"])

def test_a_fault_command_is_bounded_and_its_output_masked():
    assert _run_command("faults.actions.tts.killed.inject", "true", 5, stop_aware=True) is None
    register_secrets(["hunter2-secret"])
    failed = _run_command("faults.actions.tts.killed.inject", "echo login hunter2-secret refused; exit 3", 5, True)
    assert failed == "faults.actions.tts.killed.inject: exited 3: login *** refused"
    started = time.monotonic()
    late = _run_command("faults.actions.redis.restarted_with_jobs.restore", "sleep 30", 0.5, stop_aware=False)
    assert late == "faults.actions.redis.restarted_with_jobs.restore: not done within 0.5 s (stopped)"
    assert time.monotonic() - started < 5


def test_a_fault_command_is_bounded_even_when_a_child_keeps_its_output_open():
    """A child left in the background holds the command's output open: the command still ends when its shell
    does, and one still running at the bound is killed with everything it spawned."""
    started = time.monotonic()
    assert _run_command("faults.actions.tts.killed.inject", "sleep 20 & echo started", 3, stop_aware=True) is None
    assert time.monotonic() - started < 2
    started = time.monotonic()
    late = _run_command("faults.actions.tts.killed.inject", "(sleep 20; echo never) & echo started; sleep 20", 1, True)
    assert late == "faults.actions.tts.killed.inject: not done within 1 s (stopped): started"
    assert time.monotonic() - started < 3



def test_a_secret_a_command_takes_from_the_environment_or_writes_literally_is_masked(monkeypatch):
    """The docs say: pass a secret to a command as $NAME. Its value never reaches a result; nor does a literal
    token in a command reach the profile as written (manifest, Prefect parameters)."""
    monkeypatch.setenv("FAULT_T", "s3cr3t-value-from-env")
    failed = _run_command("faults.actions.tts.killed.inject", 'echo "login as ${FAULT_T} refused"; echo token=abc12; '
                          "exit 4", 5, stop_aware=True)
    assert failed == "faults.actions.tts.killed.inject: exited 4: login as *** refused\ntoken=***"
    profile = load_profile("smoke", ['faults.actions.tts.killed.inject="curl -H \'Authorization: Bearer xyz\' '
                                     'http://h/kill?api_key=k3y1 --password pw5"',
                                     'faults.actions.tts.killed.restore="curl -H \'Authorization: Bearer $TOKEN\' x"'])
    shown = profile.model_dump(mode="json")["faults"]["actions"]["tts"]["killed"]
    assert shown == {"inject": "curl -H 'Authorization: Bearer ***' http://h/kill?api_key=*** --password ***",
                     "restore": "curl -H 'Authorization: Bearer $TOKEN' x"}
    assert profile.faults.actions["tts"]["killed"].inject.startswith("curl -H 'Authorization: Bearer xyz'")

# ---- the supervisor: one service at a time, the others keep running --------------------------------

def healthy(client: httpx.Client) -> dict:
    return client.get("/health").json()


def test_one_service_killed_frozen_slowed_and_back_while_the_others_run(tmp_path):
    with running_stack(data_dir=tmp_path, dependency_timeout_s=3) as stack, \
            httpx.Client(base_url=stack.urls.server, timeout=30) as client:
        others = {name: pid for name, pid in stack.pids().items() if name != "tts"}
        stack.kill_service("tts")
        died = stack.exit_of("tts")
        assert died is not None and died.exit_code == -signal.SIGKILL
        wait_until(lambda: healthy(client)["dependencies"]["tts_service"] == "down", 10, "health to see the tts down")
        assert {name: pid for name, pid in stack.pids().items()} == others  # nobody else was touched
        stack.start_service("tts")
        assert stack.exit_of("tts") is None
        wait_until(lambda: healthy(client)["status"] == "healthy", 10, "health to recover")

        stack.freeze_service("llm", 30)
        llm = psutil.Process(stack.pids()["llm"])
        wait_until(lambda: llm.status() == psutil.STATUS_STOPPED, 5, "the llm to be stopped")  # signals are async
        assert stack.state()["llm"] == "frozen"
        job = wait_for(client, submit(client, "frozen.txt", SHORT).json()["job_id"], timeout=30)
        assert job["status"] == "failed" and "llm: no answer" in " ".join(job["errors"])  # the 3 s bound
        stack.resume_service("llm")
        wait_until(lambda: llm.status() != psutil.STATUS_STOPPED, 5, "the llm to run again")

        stack.slow_llm(1.0)
        started = time.monotonic()
        assert httpx.get(f"{stack.llm_proxy_url}/api/version", timeout=10).status_code == 200
        assert time.monotonic() - started >= 1.0
        stack.slow_llm(0)
        wait_until(lambda: healthy(client)["status"] == "healthy", 10, "health to recover")
        assert wait_for(client, submit(client, "again.txt", SHORT).json()["job_id"])["status"] == "completed"


def test_the_cli_keeps_the_others_running_and_fault_commands_use_it(prefect_server, tmp_path):
    """`python -m stack` as an external target: the stage's fault commands are its control actions."""
    from flows.faults import fault_experiments

    ports = {name: free_port() for name in SERVICES}
    proc = subprocess.Popen([sys.executable, "-m", "stack", *(f"--{name}-port={port}" for name, port in ports.items()),
                             "--data-dir", str(tmp_path / "stack"), "--dependency-timeout", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    control = f"{sys.executable} -m stack --server-port {ports['server']}"

    def act(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*control.split(), *args], capture_output=True, text=True, timeout=90)

    urls = {"server_url": f"http://127.0.0.1:{ports['server']}", "tts_url": f"http://127.0.0.1:{ports['tts']}",
            "llm_url": f"http://127.0.0.1:{ports['llm']}", "redis_url": f"redis://127.0.0.1:{ports['redis']}/0"}
    profile = load_profile("smoke", [
        f'results_dir="{tmp_path}"', "target.bundled_stack=false",
        *(f'target.{key}="{url}"' for key, url in urls.items()),
        "faults.enabled=true", f'faults.actions.tts.killed.inject="{control} kill tts"',
        f'faults.actions.tts.killed.restore="{control} start tts"',
        f'faults.actions.llm.killed.inject="{control} restart llm"'])  # one command, no restore: the whole fault
    services = Services(server=urls["server_url"], tts=urls["tts_url"], llm=urls["llm_url"], redis=urls["redis_url"],
                        llm_model=profile.target.llm_model)
    try:
        assert proc.stdout.readline().startswith("ready ")
        result, restart = fault_experiments(profile, services, str(tmp_path / "run"))
        assert result["service"] == "tts" and result["fault"] == "killed" and result["recovered"] is True
        assert result["restore_s"] > 0  # the start until healthy, apart from the recovery
        # the restart ran in the background while a job was submitted and health probed; it was over when it ended
        assert restart["service"] == "llm" and restart["state"] == "measured" and restart["restore_s"] is None
        assert "no restore command: the fault was its inject command, over when that ended" in restart["detail"]
        assert restart["health_during"] and restart["recovered"] is True
        assert result["named_dependency"] is True and result["jobs_stuck"] == 0
        assert 0 < result["recovery_s"] <= result["first_success_s"] < profile.faults.recovery_bound_s
        assert proc.stderr.readline().startswith("stack: tts exited (code -9); the others keep running")

        status = act("status")
        assert status.returncode == 0 and status.stdout.strip() == \
            "stack: redis: running; llm: running; tts: running; server: running"
        wrong = act("slow", "tts", "--seconds", "1")
        assert wrong.returncode == 1 and "only the llm can be made slow" in wrong.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    gone = act("status")
    assert gone.returncode == 2 and "no running stack listens" in gone.stderr


# ---- a real experiment, as the stage runs it ---------------------------------------------------------

def test_a_tts_kill_is_measured_against_the_bundled_stack(prefect_server, tmp_path):
    from flows.faults import JOBS_FOLDER, fault_experiments

    profile = load_profile("smoke", [f'results_dir="{tmp_path}"', 'faults.experiments=["tts.killed"]'])
    with running_stack(data_dir=tmp_path / "stack", dependency_timeout_s=5) as stack:
        services = Services(server=stack.urls.server, tts=stack.urls.tts, llm=stack.urls.llm,
                            redis=stack.urls.redis, llm_model=profile.target.llm_model)
        run_dir = tmp_path / "run"
        [result] = fault_experiments(profile, services, str(run_dir))
        assert stack.state()["tts"] == "running"
    assert result["service"] == "tts" and result["fault"] == "killed" and result["recovered"] is True
    assert 0 < result["recovery_s"] < profile.faults.recovery_bound_s
    assert result["recovery_s"] <= result["first_success_s"] < profile.faults.recovery_bound_s
    assert result["jobs_failed_during"] == 1 and result["jobs_stuck"] == 0 and not result["hung"]
    assert result["named_dependency"] is True and "tts" in result["job_error_during"]
    assert "degraded (tts_service: down)" in result["health_during"]
    ledger = read_ledger(run_dir)
    assert ledger["faults"] == [] and ledger["jobs"] == []  # the figures are derived; the jobs kept apart
    assert [event["kind"] for event in ledger["fault_events"]][:2] == ["planned", "injected"]
    assert [row["service"] for row in fault_rows(ledger["fault_events"])] == ["tts"]
    fault_jobs = read_ledger(run_dir / JOBS_FOLDER)["jobs"]
    assert {row["stage"] for row in fault_jobs} == {"faults"}
    print(json.dumps({key: result[key] for key in ("recovery_s", "first_success_s")}))
