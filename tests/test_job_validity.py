"""What a job under test is recorded as: a success is a verified video, a failure says why in words.

The pure rules first (facts in, outcome out), then the real bundled stack: behind a proxy of the test's
own that says `completed` but has no video, with its tts killed (SIGKILL) while the stack runs, and a
stop requested while a status answer is awaited that never comes.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from prefect import flow
from prefect.states import Failed

from analysis.incidents import cause, clock, explained, incident_rows, sentence
from flows.batch import in_words, progress_line, run_batch, seconds_left
from profiles.settings import load_profile
from stack import running_stack
from stack.launcher import ServiceExit
from tasks import interrupt
from tasks.jobs import (
    _retry_dropped_download,
    job_line,
    measured_outcome,
    refusal,
    server_duration,
    stopped_failure,
    verified_outcome,
)
from tasks.services import Services
from tasks.store import LEDGER, read_ledger, rebuild_tables
from tests.stackutil import proxy, wait_until

DOCUMENT = Path(__file__).parent.parent / "profiles" / "documents" / "short_note.txt"


# --- the rules, on recorded facts ---

def test_only_a_verified_video_of_a_completed_job_is_a_success():
    assert verified_outcome("completed", None, None, None) == ("succeeded", None)
    assert verified_outcome("completed", None, "the download answered 404: No video found", None) == (
        "failed", "server said completed but the download answered 404: No video found")
    assert verified_outcome("completed", None, None, "no audio stream") == (
        "failed", "video failed integrity: no audio stream")
    assert verified_outcome("completed_with_errors", "scene 2: tts timeout", None, None) == (
        "failed", "server reported completed_with_errors: scene 2: tts timeout (its video passed every check)")


def test_a_job_without_a_video_has_its_outcome_when_followed():
    assert measured_outcome("completed", None, None) == ("running", None)  # the verdict waits for the video
    assert measured_outcome("failed", None, "tts: connection refused") == (
        "failed", "server reported failed: tts: connection refused")
    gave_up = ("timed_out", "timed out after 600 s (last status: processing)")
    assert measured_outcome("processing", gave_up, None) == gave_up


def test_a_missing_server_duration_is_nothing_to_compare_not_a_problem():
    assert server_duration(21.5) == (21.5, None)
    assert server_duration(None) == (None, None)  # result.video.duration_seconds missing or null
    assert server_duration(0) == (None, "server reported a duration of 0 s, not a positive number")
    assert server_duration(-3.0) == (None, "server reported a duration of -3 s, not a positive number")


def test_a_good_video_without_a_server_duration_passes_and_a_wrong_duration_fails(prefect_server, tmp_path, caplog):
    from tasks.jobs import check_video_integrity
    from tests.videos import make_video

    video = str(make_video(tmp_path / "v.mp4", seconds=2.0))
    profile = load_profile("smoke", [f'results_dir="{tmp_path}"'])

    @flow(name="test-check-video")
    def checked(reported: dict) -> dict:
        from analysis.video import sha256_file
        return check_video_integrity(profile, str(tmp_path), "job-1", "single", video, reported, sha256_file(video))

    row = checked({"reported_video_seconds": None, "resolution": "1280x720"})
    assert row["ok"] and row["problems"] == "" and row["reported_seconds"] is None, row["problems"]
    assert row["video_seconds"] == pytest.approx(2.0, abs=0.1)
    assert "the server reported no duration" in caplog.text and "decoded 2.0 s" in caplog.text
    assert checked({"reported_video_seconds": 2.0, "resolution": "1280x720"})["ok"]
    wrong = checked({"reported_video_seconds": 5.0, "resolution": "1280x720"})
    assert not wrong["ok"] and "reported" in wrong["problems"]


def test_an_interrupted_job_says_how_far_it_got():
    assert stopped_failure(False, None, None) == "the run was stopped before the job was submitted"
    assert stopped_failure(True, None, None) == "the run was stopped while the document was being uploaded"
    assert stopped_failure(True, "6f1c", "processing") == "the run was stopped while the job was processing"


def test_a_refusal_is_the_contract_detail_or_the_body():
    assert refusal(404, b'{"detail": "No video found"}') == "404: No video found"
    assert refusal(502, b"<html>Bad Gateway</html>") == "502: <html>Bad Gateway</html>"
    assert refusal(500, b"") == "500"


def test_an_exited_service_is_named_with_its_exit_code_and_time():
    checks = [{"service": "server", "ok": True, "detail": "ok"},
              {"service": "tts", "ok": False, "detail": "cannot reach http://127.0.0.1:1 (ConnectError)"},
              {"service": "redis", "ok": False, "detail": "cannot reach redis://127.0.0.1:2/0"}]
    died = {"tts": ServiceExit("tts", -9, 43385.0, "INFO: started")}  # 12:03:05 UTC on 1 Jan 1970
    rows = incident_rows(checks, probed_at=43400.0, first_failed={"redis": 43390.0}, exits=died)
    assert [(r["service"], r["since"], r["exit_code"], r["log_tail"]) for r in rows] == [
        ("tts", 43385.0, -9, "INFO: started"), ("redis", 43390.0, None, None)]
    why = cause(rows)
    assert why == ("tts stopped answering at 12:03:05 UTC (exit -9); "
                   "redis failing since 12:03:10 UTC: cannot reach redis://127.0.0.1:2/0")
    assert explained("server reported failed: Connection refused", why).startswith("tts stopped answering at")
    assert explained("x", None) == "x"
    assert sentence({"service": "llm", "t": 43400.0, "since": None, "detail": "model missing", "exit_code": None}) \
        == "llm failing since 12:03:20 UTC: model missing"


def test_only_a_dropped_connection_retries_a_download():
    assert _retry_dropped_download(None, None, Failed(data=httpx.ConnectError("refused")))
    assert not _retry_dropped_download(None, None, Failed(data=ValueError("a defect")))


def test_progress_estimates_from_the_mean_time_per_finished_job():
    assert seconds_left(0.0, 0, 10) is None
    assert seconds_left(60.0, 3, 9) == 120.0
    assert progress_line(3, 9, 120.0) == "3/9 jobs done; the 6 jobs left: about 2 min 00 s"  # not the campaign's end
    assert progress_line(9, 9, 0.0) == "9/9 jobs done"
    assert progress_line(8, 9, 0.4) == "8/9 jobs done"  # not "about 0 s"
    assert progress_line(8, 9, 1.2) == "8/9 jobs done; the 1 job left: about 1 s"


def test_a_job_never_submitted_says_why_not_what_the_server_said():
    where = {"stage": "sequential", "level": 1, "batch": 2, "slot": 0}
    assert job_line(where | {"job_id": None, "outcome": "not_submitted",
                             "failure": "submit failed: ConnectError: refused"}) == (
        "sequential job (level 1, batch 2, slot 0) not submitted: submit failed: ConnectError: refused")
    assert job_line(where | {"job_id": "6f1c", "server_status": "completed", "total_seconds": 3.04,
                             "outcome": "running", "failure": None}) == (
        "sequential job 6f1c (level 1, batch 2, slot 0): server said completed after 3.0 s")
    assert job_line(where | {"job_id": "6f1c", "server_status": None, "total_seconds": 1.0, "outcome": "failed",
                             "failure": "status poll failed"}) == (
        "sequential job 6f1c (level 1, batch 2, slot 0): server said nothing after 1.0 s — failed: status poll failed")
    assert [in_words(s) for s in (44.6, 200, 3900)] == ["45 s", "3 min 20 s", "1 h 05 min"]


# --- against the real bundled stack ---

def services_of(urls, server: str | None = None) -> Services:
    return Services(server=server or urls.server, tts=urls.tts, llm=urls.llm, redis=urls.redis,
                    llm_model="extractive-planner")


@flow(name="test-one-batch")
def one_batch(profile, services: Services, run_dir: str) -> list[dict]:
    return run_batch(profile, services, run_dir, "single", 1, 0, [DOCUMENT], None, 1)


@pytest.fixture
def profile(tmp_path):
    return load_profile("smoke", [f'results_dir="{tmp_path}"', "timing.job_timeout_s=60",
                                  "timing.download_timeout_s=20"])


def test_completed_without_a_video_is_a_failure_naming_the_404(prefect_server, tmp_path, profile):
    run_dir = str(tmp_path / "run")
    with running_stack() as stack, proxy(stack.urls.server, (404, {"detail": "No video found"})) as front:
        [row] = one_batch(profile, services_of(stack.urls, front), run_dir)
    assert (row["server_status"], row["outcome"], row["succeeded"]) == ("completed", "failed", False)
    assert row["failure"] == "server said completed but the download answered 404: No video found"

    recorded = read_ledger(Path(run_dir))["jobs"]
    assert recorded[0]["outcome"] == "running" and recorded[0]["job_id"] is None  # on record before the upload
    assert recorded[1]["outcome"] == "running" and recorded[1]["job_id"] == row["job_id"]
    # every status change is on record as it is seen: a run killed outright still shows the last one
    status_rows = {"round", "attempt", "stage", "level", "batch", "slot", "server_status", "observations"}
    assert [r["server_status"] for r in recorded if set(r) == status_rows] == ["processing", "completed"]
    tables = rebuild_tables(Path(run_dir))
    [job] = tables["jobs"].to_dicts()
    assert (job["server_status"], job["outcome"], job["succeeded"]) == ("completed", "failed", False)
    assert job["failure"] == row["failure"] and job["reported_video_seconds"] > 0
    assert tables["videos"].height == 0  # no video was downloaded: nothing to check, the job's failure says why
    assert tables["incidents"].height == 0  # every service still answers: nothing to blame


def test_a_killed_tts_is_named_with_its_exit_code_and_time(prefect_server, tmp_path, profile):
    run_dir = str(tmp_path / "run")
    with running_stack() as stack:
        # Killed once the stack is up, before the job needs it: a short note's job takes about a second,
        # so a kill timed inside it would race the job's audio phase.
        killed_at = time.time()
        os.kill(stack.pids()["tts"], signal.SIGKILL)
        wait_until(lambda: stack.exit_of("tts"), 10, "the launcher to see the tts exit")
        [row] = one_batch(profile, services_of(stack.urls), run_dir)
        last_words = stack.log_tail("tts") or None  # this tts logs nothing: a SIGKILL leaves no last words
    assert row["outcome"] == "failed" and row["succeeded"] is False
    assert row["failure"].startswith("tts stopped answering at "), row["failure"]
    assert "(exit -9)" in row["failure"].split(" — ")[0]

    incidents = rebuild_tables(Path(run_dir))["incidents"].to_dicts()
    tts = next(i for i in incidents if i["service"] == "tts")
    assert tts["exit_code"] == -9 and abs(tts["since"] - killed_at) < 2 and tts["t"] >= tts["since"]
    assert "cannot reach" in tts["detail"] and tts["log_tail"] == last_words
    [job] = rebuild_tables(Path(run_dir))["jobs"].to_dicts()
    assert job["failure"] == row["failure"]


def test_a_server_killed_mid_job_is_named_and_the_job_gives_up_on_it(prefect_server, tmp_path, profile):
    run_dir = str(tmp_path / "run")
    ledger = Path(run_dir) / LEDGER
    quick = profile.model_copy(update={"timing": profile.timing.model_copy(update={"poll_failure_s": 2.0})})
    with running_stack() as stack:
        def kill_server_once_submitted() -> None:
            wait_until(lambda: ledger.exists() and '"server_status": "pending"' in ledger.read_text(), 30,
                       "the job's first answer")
            os.kill(stack.pids()["server"], signal.SIGKILL)

        killer = threading.Thread(target=kill_server_once_submitted, daemon=True)
        killer.start()
        [row] = one_batch(quick, services_of(stack.urls), run_dir)
        killer.join(5)
    assert row["outcome"] == "failed" and row["succeeded"] is False
    why, _, seen = row["failure"].partition(" — ")
    assert why.startswith("server stopped answering at ") and why.endswith("(exit -9)"), row["failure"]
    assert "ConnectError" in seen, seen  # what the job itself saw: its polls (or its download) refused
    [incident] = rebuild_tables(Path(run_dir))["incidents"].to_dicts()
    assert (incident["service"], incident["exit_code"]) == ("server", -9)


def test_a_server_whose_status_answers_trickle_is_failing_since_its_first_late_answer(prefect_server, tmp_path,
                                                                                         profile):
    run_dir = str(tmp_path / "run")
    quick = profile.model_copy(update={"timing": profile.timing.model_copy(
        update={"request_timeout_s": 1.0, "poll_failure_s": 2.0, "verify_timeout_s": 1.0})})
    with running_stack() as stack, proxy(stack.urls.server, status_trickles=True) as front:
        [row] = one_batch(quick, services_of(stack.urls, front), run_dir)
    assert row["outcome"] == "failed" and row["server_status"] == "pending"  # the upload's answer, then no whole one
    [incident] = rebuild_tables(Path(run_dir))["incidents"].to_dicts()
    assert incident["service"] == "server" and incident["exit_code"] is None
    # since the first poll that got no whole answer (a second after the upload), not the re-probe's time
    assert row["submitted_at"] < incident["since"] < row["submitted_at"] + 1.5 and incident["t"] - incident["since"] > 2
    assert incident["detail"] == ("no complete answer within 1 s (GET /api/v1/video/status/{job_id} for an unknown "
                                  "job id was not answered in time)")
    assert row["failure"].startswith(f"server failing since {clock(incident['since'])}: "), row["failure"]


def test_a_stop_ends_a_job_whose_status_answer_never_comes(prefect_server, tmp_path, profile):
    run_dir = str(tmp_path / "run")
    ledger = Path(run_dir) / LEDGER
    with running_stack() as stack, proxy(stack.urls.server, status_stalls=True) as front:
        def stop_once_polling() -> None:
            wait_until(lambda: ledger.exists() and '"server_status": "pending"' in ledger.read_text(), 30,
                       "the job's first answer")
            time.sleep(0.5)  # the first status poll is now waiting for an answer that never comes
            stopped_at.append(time.monotonic())
            interrupt.request_stop()

        stopped_at: list[float] = []
        stopper = threading.Thread(target=stop_once_polling, daemon=True)
        stopper.start()
        try:
            [row] = one_batch(profile, services_of(stack.urls, front), run_dir)
            ended = time.monotonic()
        finally:
            interrupt.reset()
    assert ended - stopped_at[0] < 5
    assert (row["outcome"], row["server_status"]) == ("interrupted", "pending")
    assert row["failure"] == "the run was stopped while the job was pending"
    [job] = rebuild_tables(Path(run_dir))["jobs"].to_dicts()
    assert job["outcome"] == "interrupted" and job["succeeded"] is False
    assert json.loads(ledger.read_text().splitlines()[-1])["table"] == "batches"
