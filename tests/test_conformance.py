"""Contract conformance: each rule on recorded status answers (pure), the probes against the real bundled stack,
the GX suite's strictness and what the run's figures say."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import polars as pl
import pytest
from prefect.logging import disable_run_logger

from analysis.conformance import PROBES, ConformanceRule, conformance_rows, unreported_fields
from analysis.metrics import compute_metrics
from analysis.schema import frame
from expectations.suites import validate_run
from profiles.settings import Thresholds, load_profile
from stack import running_stack
from tasks import interrupt
from tasks.conformance import probe_finished_job, probe_refusals, probe_unfinished_job
from tasks.interrupt import Interrupted
from tasks.services import Services
from tasks.store import read_ledger
from tests.stackutil import status, submit, wait_for

JOB = "6f1c2a4e-0000-4000-8000-000000000001"
CREATED = "2026-11-27T02:23:26.690000+00:00"
VIDEO = {"video_url": f"/api/v1/video/download/{JOB}", "download_url": f"/api/v1/video/download/{JOB}?download=true",
         "duration_seconds": 12.5, "size_bytes": 1_000_000, "fps": 30, "resolution": "1280x720", "format": "mp4"}
RESULT = {"video": VIDEO, "script_scenes": 3, "successful_tasks": 6, "failed_tasks": 0,
          "processing_time_seconds": 11.2, "errors": []}


def answer(t: float, status: str, phase: str | None = None, progress: int | None = None, *, job: str = JOB,
           kind: str = "poll", created: str | None = CREATED, updated: str | None = CREATED,
           completed: str | None = None, result: dict | None = None, rejected: str | None = None) -> dict:
    """A `status_trace` row as tasks.jobs records it."""
    return {"job_id": job, "stage": "single", "t": t, "status": status, "phase": phase, "progress": progress,
            "created_at": created, "updated_at": updated, "completed_at": completed, "message": None,
            "result": None if result is None else json.dumps(result), "errors": None, "answer": kind,
            "rejected": rejected}


DONE = "2026-11-27T02:23:40.000000+00:00"
CONFORMING = [
    answer(1.0, "pending", "upload", 0, kind="submit"),
    answer(2.0, "processing", "script", 10),
    answer(3.0, "processing", "compose", 80),
    answer(4.0, "completed", "done", 100, completed=DONE, updated=DONE, result=RESULT),
    answer(5.0, "completed", "done", 100, completed=DONE, updated=DONE, result=RESULT),  # the look a poll later
]
DECODED = {"job_id": JOB, "width": 1280, "height": 720}


def rules(trace: list[dict], videos: list[dict] = (DECODED,), probes: list[dict] = ()) -> dict[str, ConformanceRule]:
    frames = {"status_trace": frame("status_trace", trace), "videos": frame("videos", list(videos)),
              "contract_probes": frame("contract_probes", list(probes))}
    return {row["rule"]: ConformanceRule(**row) for row in conformance_rows(frames)}


def rule(found: dict[str, ConformanceRule], start: str) -> ConformanceRule:
    (match,) = [value for name, value in found.items() if name.startswith(start)]
    return match


def broken(found: dict[str, ConformanceRule]) -> set[str]:
    return {name for name, value in found.items() if value.violations}


# ---- each rule on recorded observations ------------------------------------------------------------------

def test_a_conforming_history_breaks_no_rule_and_the_unprobed_rules_are_not_checked():
    found = rules(CONFORMING)
    assert not broken(found)
    observed = [value for value in found.values() if value.source == "observed"]
    assert all(value.holds for value in observed), [v for v in observed if not v.holds]
    assert rule(found, "created_at stays").observations == 4  # every answer after the 202 one
    for probe in PROBES.values():  # no probe was made: not checked, and never "held"
        value = found[probe.rule]
        assert not value.checked and not value.holds and value.example.startswith("not probed")
    assert unreported_fields(frame("status_trace", CONFORMING)) == {"message": "the server reports no status messages"}


def test_the_upstream_servers_quirks_are_each_named_with_the_job():
    """The upstream server as the issue's table describes it, one answer per quirk."""
    upstream_video = {"video_url": "/v", "download_url": "/d", "duration": 12.5, "video_path": "/out/x.mp4",
                      "fps": 30, "resolution": "1280x720", "format": "mp4"}
    upstream_result = {"video": upstream_video, "script_scenes": None, "processing_time_seconds": None}
    later = "2026-11-27T02:23:28.700000"  # created_at rewritten when processing starts, and without an offset
    trace = [
        answer(1.0, "pending", None, 0, kind="submit"),
        answer(2.0, "processing", None, 10, created=later, updated=later),
        answer(3.0, "completed", None, 100, created=later, updated=later, completed="2026-11-27T02:23:40",
               result=upstream_result),
    ]
    failed_job = "6f1c2a4e-0000-4000-8000-000000000002"
    trace += [  # a failed job: no completed_at, progress falls to 0
        answer(1.5, "pending", None, 0, job=failed_job, kind="submit"),
        answer(2.5, "processing", None, 40, job=failed_job, created=later, updated=later),
        answer(3.5, "failed", None, 0, job=failed_job, created=later, updated=later),
    ]
    found = rules(trace, videos=[{"job_id": JOB, "width": 2865, "height": 1605}])

    phase = rule(found, "a processing job names its phase")
    assert phase.violations == 2 and "processing with phase null" in phase.example
    created = rule(found, "created_at stays")
    assert created.violations == 4 and JOB in created.example
    assert f"'{CREATED}' in the 202 answer, now '{later}'" in created.example
    zoned = rule(found, "timestamps are ISO-8601 with a UTC offset")
    assert zoned.violations == 4 and "has no UTC offset" in zoned.example  # the 202 answers carry one
    completed_at = rule(found, "every terminal status carries completed_at")
    assert (completed_at.observations, completed_at.violations) == (2, 1)
    assert completed_at.example == f"job {failed_job}, status answer at 00:00:03.50 UTC: failed without completed_at"
    assert "progress decreased: 40 → 0" in rule(found, "progress never decreases").example
    video = rule(found, "a completed job's result.video gives")
    assert video.example.endswith("result.video lacks duration_seconds, size_bytes (it has duration, video_path)")
    assert rule(found, "a completed job's result gives").example.endswith(
        "result.script_scenes null, result.processing_time_seconds null")
    assert rule(found, "result.video.resolution is the decoded").example.endswith(
        "result.video.resolution 1280x720, decoded video 2865x1605")

    unreported = unreported_fields(frame("status_trace", trace))
    assert unreported["phase"] == "the server reports no phases: time per phase not measured"
    assert {"processing_time_seconds", "script_scenes", "video.duration_seconds", "video.size_bytes"} <= set(unreported)
    assert "video.resolution" not in unreported and "completed_at" not in unreported  # reported by some answers


def test_completed_without_a_video_and_a_result_too_early():
    trace = [answer(1.0, "pending", "upload", 0, kind="submit"),
             answer(2.0, "processing", "compose", 75, result={"video": None}),
             answer(3.0, "completed", "done", 100, completed=DONE, result={**RESULT, "video": None})]
    found = rules(trace, videos=[])
    assert rule(found, "a completed job's result.video gives").example.endswith("completed with result.video null")
    assert rule(found, "result is null until").example.endswith("processing with a result")
    assert not rule(found, "result.video.resolution").checked  # nothing decoded to compare with
    assert set(unreported_fields(frame("status_trace", trace))) >= {"video.duration_seconds", "video.resolution"}


def test_a_terminal_status_that_changes_and_a_status_that_goes_back():
    """Upstream: cancelling a completed job turns it `cancelled`."""
    trace = [*CONFORMING[:3], answer(3.5, "pending", "upload", 80),
             answer(4.0, "completed", "done", 100, completed=DONE, result=RESULT),
             answer(6.0, "cancelled", "done", 100, completed=DONE, result=RESULT)]
    found = rules(trace)
    assert rule(found, "once terminal").example.endswith("terminal status completed changed to cancelled")
    assert rule(found, "the status never moves backwards").example.endswith(
        "status moved backwards: processing → pending")


def test_a_rejected_answer_breaks_the_types_rule_and_nothing_else_reads_it():
    trace = [*CONFORMING[:2], answer(2.5, "processing", None, None,
                                     rejected="HTTP 200, job progress is '50', not a int or null")]
    found = rules(trace)
    types = rule(found, "every status answer is a job status object")
    assert (types.observations, types.violations) == (3, 1) and "progress is '50'" in types.example
    assert rule(found, "a processing job names its phase").violations == 0  # the rejected answer is not read


def test_phase_values_and_timestamps_that_are_not_iso():
    trace = [answer(1.0, "pending", "queued", 0, kind="submit"), answer(2.0, "processing", "render", 5,
                                                                      updated="yesterday")]
    found = rules(trace)
    assert rule(found, "a processing job names its phase").example.endswith("unknown phase 'queued'")
    assert rule(found, "timestamps are ISO-8601").example.endswith("updated_at 'yesterday' is not ISO-8601")


def test_each_probe_is_judged_by_its_expected_status_and_error_bodies_need_detail():
    probes = [
        {"probe": "cancel_finished", "method": "POST", "path": f"/api/v1/video/cancel/{JOB}", "t": 1.0,
         "status_code": 200, "expected": 409, "ok": False, "body": '{"message": "cancelled"}', "detail": None},
        {"probe": "status_not_uuid", "method": "GET", "path": "/api/v1/video/status/not-a-uuid", "t": 2.0,
         "status_code": 422, "expected": 422, "ok": True, "body": '{"error": "VALIDATION_ERROR", "message": "x"}',
         "detail": None},
        {"probe": "status_unknown", "method": "GET", "path": "/api/v1/video/status/x", "t": 3.0, "status_code": 404,
         "expected": 404, "ok": True, "body": '{"detail": "not found"}', "detail": "not found"},
        {"probe": "empty_upload", "method": "POST", "path": "/api/v1/video/generate", "t": 4.0, "status_code": None,
         "expected": 400, "ok": None, "body": "no answer: ReadTimeout: timed out", "detail": None},
    ]
    found = rules(CONFORMING, probes=probes)
    cancel = found["cancelling a finished job answers 409"]
    assert (cancel.observations, cancel.violations) == (1, 1)
    assert cancel.example == f'POST /api/v1/video/cancel/{JOB}: answered 200: {{"message": "cancelled"}}'
    assert found["the status of a job id that is not a UUID answers 422"].holds
    detail = found['an error answer is JSON with a "detail"']
    assert (detail.observations, detail.violations) == (2, 1) and "VALIDATION_ERROR" in detail.example
    empty = found["an empty upload answers 400"]
    assert not empty.checked and empty.example == "not probed: no answer: ReadTimeout: timed out"
    assert found["cancelling an unknown job answers 404"].example == "not probed"


def test_nothing_is_called_unreported_before_it_could_be_seen():
    pending_only = [answer(1.0, "pending", None, None, kind="submit"), answer(2.0, "pending", None, None)]
    assert set(unreported_fields(frame("status_trace", pending_only))) == {"progress", "message"}
    assert unreported_fields(frame("status_trace", [])) == {}


def test_failed_and_cancelled_jobs_outside_the_campaign_are_checked_and_named_by_their_stage():
    """A clean run's own jobs all complete: the fault experiments' jobs (their own ledger) and the probes' cancelled
    job are where a failed or cancelled job is seen. The rules check them, each example naming the job's stage."""
    failed_job, probe_job = "6f1c2a4e-0000-4000-8000-00000000000f", "6f1c2a4e-0000-4000-8000-00000000000c"
    fault_trace = [{**row, "stage": "faults"} for row in (  # upstream: a failed job gets no completed_at and its
        answer(1.5, "pending", None, 0, job=failed_job, kind="submit"),  # progress falls to 0
        answer(2.5, "processing", "audio", 40, job=failed_job),
        answer(3.5, "failed", None, 0, job=failed_job))]
    probe_trace = [{**row, "stage": "conformance"} for row in (
        answer(6.0, "pending", "upload", 0, job=probe_job, kind="submit"),
        answer(7.0, "cancelled", None, 0, job=probe_job, completed=DONE))]
    frames = {"status_trace": frame("status_trace", [*CONFORMING, *probe_trace]), "videos": frame("videos", [DECODED])}
    found = {row["rule"]: ConformanceRule(**row)
             for row in conformance_rows(frames, {"status_trace": frame("status_trace", fault_trace)})}

    completed_at = rule(found, "every terminal status carries completed_at")
    assert (completed_at.observations, completed_at.violations) == (4, 1)  # 2 completed, failed, cancelled
    assert completed_at.example == (f"job {failed_job} (a job of the faults stage, not under test), status answer "
                                    "at 00:00:03.50 UTC: failed without completed_at")
    assert rule(found, "progress never decreases").example.startswith(
        f"job {failed_job} (a job of the faults stage, not under test)")
    created = rule(found, "created_at stays")
    assert created.observations == 4 + 2 + 1 and created.holds
    # none of them is in a figure: what is unreported is the campaign's own jobs' business
    with_probe_job = frame("status_trace", [*CONFORMING, *[{**row, "phase": None} for row in probe_trace]])
    assert unreported_fields(with_probe_job) == unreported_fields(frame("status_trace", CONFORMING))


def test_the_conformance_stored_with_the_tables_is_the_one_the_figures_read(tmp_path):
    """rebuild_tables checks the fault stage's own ledger (faults/) with the run's; the jobs table and the run's
    figures never include its jobs, and RunMetrics reads the stored conformance table."""
    from tasks.store import Ledger, load_tables, rebuild_tables

    failed_job = "6f1c2a4e-0000-4000-8000-00000000000f"
    run, faults = Ledger.of(tmp_path), Ledger.of(tmp_path / "faults")
    for row in CONFORMING:
        run.record("status_trace", **row)
    run.record("jobs", job_id=JOB, stage="single", level=None, batch=0, slot=0, outcome="succeeded", succeeded=True)
    faults.record("jobs", job_id=failed_job, stage="faults", level=1, batch=1, slot=0, outcome="failed",
                  succeeded=False)
    for row in (answer(1.5, "pending", None, 0, job=failed_job, kind="submit"), answer(3.5, "failed", None, 0,
                                                                                      job=failed_job)):
        faults.record("status_trace", **{**row, "stage": "faults"})
    run.close()
    faults.close()

    frames = rebuild_tables(tmp_path)
    stored = {row["rule"]: row for row in pl.read_parquet(tmp_path / "conformance.parquet").to_dicts()}
    completed_at = stored["every terminal status carries completed_at"]
    assert (completed_at["observations"], completed_at["violations"]) == (3, 1)
    assert "(a job of the faults stage, not under test)" in completed_at["example"]
    assert set(frames["jobs"]["job_id"]) == {JOB} and set(frames["status_trace"]["job_id"]) == {JOB}
    metrics = compute_metrics(load_tables(tmp_path), {}, [])
    assert [job.job_id for job in metrics.jobs] == [JOB] and (metrics.all_jobs.k, metrics.all_jobs.n) == (1, 1)
    (seen,) = [r for r in metrics.conformance if r.rule == "every terminal status carries completed_at"]
    assert (seen.observations, seen.violations) == (3, 1)


def test_an_older_run_without_the_new_columns_is_still_checked():
    old = pl.DataFrame({"job_id": [JOB, JOB], "stage": ["single"] * 2, "t": [1.0, 2.0],
                        "status": ["processing", "completed"], "phase": [None, "done"], "progress": [5, 100],
                        "created_at": [CREATED] * 2, "completed_at": [None, DONE]})
    found = {row["rule"]: row for row in conformance_rows({"status_trace": old})}
    assert found["a processing job names its phase (upload, script, audio, visual, compose, done)"]["violations"] == 1
    assert found["created_at stays as the 202 answer gave it"]["example"] is None  # observed, held


# ---- what the run's figures and checks make of it --------------------------------------------------------

def conformance_frame(trace: list[dict]) -> pl.DataFrame:
    return frame("conformance", conformance_rows({"status_trace": frame("status_trace", trace)}))


@pytest.mark.parametrize("strictness", ["warn", "fail"])
def test_a_broken_rule_fails_its_check_and_fails_the_run_only_when_strict(strictness):
    trace = [{**row, "phase": None} for row in CONFORMING]
    outcomes = validate_run({"conformance": conformance_frame(trace)}, Thresholds(conformance=strictness))
    checks = [c for c in outcomes if c["suite"] == "conformance"]  # the other suites had no tables here
    (check,) = checks
    assert not check["success"] and "a processing job names its phase" in check["observed"]
    assert check["fails_run"] is (strictness == "fail")
    manifest = {"finished_at": "2026-11-27T03:00:00+00:00", "outcome": "measured",
                "profile": {"thresholds": {"conformance": strictness}}}
    metrics = compute_metrics({"status_trace": frame("status_trace", trace)}, manifest, checks)
    assert metrics.unreported == {"phase": "the server reports no phases: time per phase not measured",
                                  "message": "the server reports no status messages"}
    assert [r.rule for r in metrics.conformance if r.violations] == [
        "a processing job names its phase (upload, script, audio, visual, compose, done)"]
    if strictness == "warn":
        assert metrics.failures_in_words() == [] and len(metrics.warnings_in_words()) == 1
        assert "FAILED" not in metrics.verdict and "failed as a warning only (conformance" in metrics.verdict
    else:
        assert len(metrics.failures_in_words()) == 1 and "1 of 1 checks FAILED" in metrics.verdict


def test_a_run_whose_checked_rules_hold_passes_and_unchecked_ones_are_left_out():
    (check,) = [c for c in validate_run({"conformance": conformance_frame(CONFORMING)}, Thresholds())
                if c["suite"] == "conformance"]
    total = conformance_frame(CONFORMING).height  # nothing decoded here: the resolution rule is not checked either
    assert check["success"] and check["details"].startswith(f"conformance table (14 of {total} rules checked)")


# ---- the probes against the real bundled stack -----------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(data_dir=tmp_path_factory.mktemp("stack")) as running:
        yield running


def campaign_profile(tmp_path, **timing):
    return load_profile("smoke", [f'results_dir="{tmp_path}"', *(f"timing.{k}={v}" for k, v in timing.items())])


def services_of(stack) -> Services:
    urls = stack.urls
    return Services(server=urls.server, tts=urls.tts, llm=urls.llm, redis=urls.redis, llm_model="extractive-planner")


def test_the_bundled_server_answers_every_probe_as_the_contract_says(stack, tmp_path):
    import httpx

    profile, services = campaign_profile(tmp_path), services_of(stack)
    with httpx.Client(base_url=stack.urls.server, timeout=30) as client:
        finished = submit(client, "note.txt", b"A short note about bread.\n").json()["job_id"]
        wait_for(client, finished)
        with disable_run_logger():
            probe_refusals.fn(profile, services, str(tmp_path))
            probe_unfinished_job.fn(profile, services, str(tmp_path))
            probe_finished_job.fn(profile, services, str(tmp_path), finished)
            probe_finished_job.fn(profile, services, str(tmp_path / "none"), None)
        ledger = read_ledger(tmp_path)
        made = ledger["contract_probes"]
        assert {row["probe"] for row in made} == set(PROBES)
        assert all(row["ok"] for row in made), [row for row in made if not row["ok"]]
        assert not ledger["jobs"]  # the probes' job is no job under test
        (submitted,) = [row for row in made if row["probe"] == "download_unfinished"]
        made_job = submitted["path"].rsplit("/", 1)[1]
        assert status(client, made_job)["status"] == "cancelled"
        # its status answers are observations, from its 202 answer to the cancelled status it was polled to
        trace = ledger["status_trace"]
        assert {(row["job_id"], row["stage"]) for row in trace} == {(made_job, "conformance")}
        assert trace[0]["answer"] == "submit" and trace[-1]["status"] == "cancelled" and trace[-1]["completed_at"]
    found = {row["rule"]: row for row in conformance_rows({"contract_probes": frame("contract_probes", made)})}
    assert all(row["observations"] == 1 and row["violations"] == 0 for name, row in found.items()
               if name in {probe.rule for probe in PROBES.values()})
    assert found['an error answer is JSON with a "detail"']["violations"] == 0
    (none,) = read_ledger(tmp_path / "none")["contract_probes"]
    assert none["status_code"] is None and none["body"] == "the single stage had no job to cancel"


def test_a_stop_ends_the_probes_at_once(tmp_path):
    """A server that never answers: the stop request ends the probe in flight within a moment, not its bound."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        services = Services(server=f"http://127.0.0.1:{port}", tts="http://x", llm="http://x", redis="redis://x",
                            llm_model="m")
        interrupt.reset()
        threading.Timer(0.5, interrupt.request_stop).start()
        started = time.monotonic()
        try:
            with disable_run_logger(), pytest.raises(Interrupted):
                probe_refusals.fn(campaign_profile(tmp_path, request_timeout_s=30), services, str(tmp_path))
        finally:
            interrupt.reset()
        assert time.monotonic() - started < 3
    assert read_ledger(tmp_path)["contract_probes"] == []


def test_an_accepted_empty_upload_is_recorded_against_the_contract(tmp_path):
    """A server that takes an empty upload (upstream: 202, the job fails later) breaks the rule, in words."""
    from tests.stackutil import QuietHandler, serving

    job_id = str(uuid.uuid4())
    cancelled = []

    class Upstream(QuietHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            if "/cancel/" in self.path:
                cancelled.append(self.path)
                self.answer(200, {"message": "cancelled", "job_id": job_id, "reason": "user"})
            else:
                self.answer(202, {"job_id": job_id, "status": "pending"})

        def do_GET(self):  # noqa: N802
            self.answer(422 if "not-a-uuid" in self.path else 404, {"error": "VALIDATION_ERROR", "message": "bad id"})

    with serving(Upstream) as url, disable_run_logger():
        services = Services(server=url, tts=url, llm=url, redis="redis://x", llm_model="m")
        probe_refusals.fn(campaign_profile(tmp_path), services, str(tmp_path))
    made = read_ledger(tmp_path)["contract_probes"]
    found = {row["rule"]: row for row in conformance_rows({"contract_probes": frame("contract_probes", made)})}
    empty = found["an empty upload answers 400"]
    assert empty["violations"] == 1 and "answered 202" in empty["example"]
    assert cancelled[-1] == f"/api/v1/video/cancel/{job_id}"  # after the cancel probes: the job nobody wants ended
    assert found['an error answer is JSON with a "detail"']["violations"] >= 1


def test_the_probes_job_is_sent_unique_and_polled_until_cancelled_its_answers_checked_by_the_rules(tmp_path):
    """A caching upstream-like server: the probes' upload carries a nonce (else it would be a cache hit, finished at
    once); after its cancel the job is polled until terminal, and its `cancelled` answer without completed_at breaks
    the rule, named as the probes' job. Nothing enters `jobs`."""
    import re

    from tests.stackutil import QuietHandler, serving

    job_id = str(uuid.uuid4())
    uploads, cancelled, polls = [], [], []

    class Upstream(QuietHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if "/cancel/" in self.path:
                cancelled.append(self.path)
                self.answer(200, {"message": "cancelled", "job_id": job_id, "reason": "user"})
            else:
                uploads.append(body)
                self.answer(202, {"job_id": job_id, "status": "pending", "progress": 0, "created_at": CREATED})

        def do_GET(self):  # noqa: N802
            if "/download/" in self.path:
                self.answer(400, {"detail": "not finished"})
                return
            polls.append(self.path)
            # the cancel takes effect a poll late; upstream gives a cancelled job no completed_at
            status = "cancelled" if cancelled and len(polls) > 2 else "pending"
            self.answer(200, {"job_id": job_id, "status": status, "progress": 0, "created_at": CREATED,
                              "completed_at": None})

    with serving(Upstream) as url, disable_run_logger():
        services = Services(server=url, tts=url, llm=url, redis="redis://x", llm_model="m")
        probe_unfinished_job.fn(campaign_profile(tmp_path, poll_interval_s=0.05), services, str(tmp_path))
    (upload,) = uploads
    assert re.search(rb"<!-- t2v-bench nonce [0-9a-f]{32} -->", upload)
    ledger = read_ledger(tmp_path)
    assert not ledger["jobs"]
    trace = ledger["status_trace"]
    assert [row["status"] for row in trace][-1] == "cancelled" and trace[0]["answer"] == "submit"
    assert [row["status"] for row in trace].count("cancelled") == 1  # polled until terminal, then no more
    found = rules(trace, videos=[], probes=ledger["contract_probes"])
    completed_at = rule(found, "every terminal status carries completed_at")
    assert (completed_at.observations, completed_at.violations) == (1, 1)
    assert completed_at.example.startswith(f"job {job_id} (a job of the conformance stage, not under test)")
    assert completed_at.example.endswith("cancelled without completed_at")
    assert found["cancelling an unfinished job answers 200"].holds
    assert found["downloading an unfinished job's video answers 400"].holds


def test_every_status_answer_is_recorded_whole_and_a_wrongly_typed_one_says_why(tmp_path):
    """tasks.jobs records the 202 answer and each poll with what the rules need, a rejected answer included."""
    import asyncio

    from tasks import http
    from tasks.http import BadResponse
    from tasks.jobs import Follower
    from tasks.store import Ledger
    from tests.stackutil import QuietHandler, serving

    answers = [{"job_id": JOB, "status": "processing", "phase": None, "progress": 40,
                "created_at": "2026-11-27T02:23:28", "updated_at": "2026-11-27T02:23:29", "message": "working",
                "result": None, "errors": ["tts slow"]},
               {"job_id": JOB, "status": "processing", "progress": "50"}]

    class Server(QuietHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.answer(200, answers.pop(0))

    profile = campaign_profile(tmp_path)
    ledger = Ledger.of(tmp_path)
    row = {"job_id": JOB, "stage": "single", "level": None, "batch": 0, "slot": 0}

    async def follow(url: str) -> None:
        async with http.async_client(base_url=url) as client:
            follower = Follower(client, profile, ledger, row, time.monotonic() + 30)
            follower.submitted({"job_id": JOB, "status": "pending", "created_at": CREATED, "result": None})
            await follower.poll()
            with pytest.raises(BadResponse):
                await follower.poll()

    with serving(Server) as url:
        asyncio.run(follow(url))
    submitted, polled, rejected = read_ledger(tmp_path)["status_trace"]
    assert submitted["answer"] == "submit" and submitted["created_at"] == CREATED and submitted["result"] is None
    assert polled["answer"] == "poll" and "rejected" not in polled and polled["message"] == "working"
    assert polled["updated_at"] == "2026-11-27T02:23:29" and json.loads(polled["errors"]) == ["tts slow"]
    assert rejected["status"] == "processing" and rejected["progress"] is None and "'50'" in rejected["rejected"]
