"""The bundled stack, end to end against its real processes: redis, llm, tts, server, ffmpeg."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from fpdf import FPDF

from analysis.video import check_video
from stack import running_stack
from stack.__main__ import parse_args
from stack.launcher import SERVICES, free_ports
from tests.stackutil import API, mean_colours_at, narration_seconds, status, submit, wait_for, wait_until

DOCS = Path(__file__).parent.parent / "profiles" / "documents"
SHORT = (DOCS / "short_note.txt").read_bytes()


def pdf_bytes(paragraphs: list[str]) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 7, paragraph)
        pdf.ln(4)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(data_dir=tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=stack.urls.server, timeout=30) as http:
        yield http


def process_tree(stack) -> set[int]:
    pids = set()
    for pid in stack.pids().values():
        root = psutil.Process(pid)
        pids |= {root.pid, *(child.pid for child in root.children(recursive=True))}
    return pids


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE}


# --- documents become videos ------------------------------------------------------------------------------

PDF_TEXT = [
    "Tides rise and fall twice a day because the Moon pulls on the oceans.",
    "The Sun adds its own smaller pull, so the highest tides come when both line up.",
    "Coastlines and the shape of the sea floor make tides larger in some bays than in others.",
]


@pytest.mark.parametrize(
    ("name", "content", "content_type", "text"),
    [
        ("note.txt", SHORT, "text/plain", SHORT.decode()),
        ("guide.md", (DOCS / "one_page.md").read_bytes(), "text/markdown", (DOCS / "one_page.md").read_text()),
        ("tides.pdf", pdf_bytes(PDF_TEXT), "application/pdf", "\n\n".join(PDF_TEXT)),
    ],
    ids=["txt", "md", "pdf"],
)
def test_document_becomes_a_narrated_video(stack, client, tmp_path, name, content, content_type, text):
    accepted = submit(client, name, content, content_type)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert job["status"] == "pending" and uuid.UUID(job["job_id"])

    done = wait_for(client, job["job_id"], timeout=180)
    assert done["status"] == "completed", done
    video = done["result"]["video"]
    assert video["resolution"] == "1280x720" and video["format"] == "mp4"
    assert done["progress"] == 100 and done["completed_at"] >= done["created_at"]

    response = client.get(f"{API}/download/{job['job_id']}", params={"download": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content) == video["size_bytes"]
    assert response.headers["accept-ranges"] == "bytes"
    assert "attachment" in response.headers["content-disposition"]
    path = tmp_path / "out.mp4"
    path.write_bytes(response.content)

    integrity = check_video(path, expected_resolution="1280x720", reported_seconds=video["duration_seconds"])
    assert integrity.ok, integrity.problems  # opens, h264 + audio, every frame, durations within 5 %, not silent

    narration, scenes = narration_seconds(stack.urls, text)
    assert len(scenes) == done["result"]["script_scenes"]
    for seconds in (integrity.video_seconds, integrity.audio_seconds):
        assert abs(seconds - narration) / narration < 0.05, (seconds, narration)

    # the picture follows the narration: the middle of each scene looks different from the next
    starts = [sum(scenes[:i]) for i in range(len(scenes))]
    colours = mean_colours_at(str(path), [start + length / 2 for start, length in zip(starts, scenes, strict=True)])
    for before, after in zip(colours, colours[1:], strict=False):
        assert abs(before - after).sum() > 10, (before, after)


def test_more_jobs_than_the_limit_wait_queued_and_all_complete(stack, client):
    jobs = [submit(client, f"q{i}.txt", SHORT).json()["job_id"] for i in range(4)]
    most_processing = 0
    saw_queued = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = [status(client, job_id)["status"] for job_id in jobs]
        most_processing = max(most_processing, states.count("processing"))
        saw_queued |= "pending" in states and "processing" in states
        if all(s in ("completed", "failed", "cancelled") for s in states):
            break
        time.sleep(0.1)
    assert states == ["completed"] * 4
    assert most_processing <= 2 and saw_queued
    listed = client.get(f"{API}/jobs", params={"limit": 100}).json()
    assert {job["job_id"] for job in listed["jobs"]} >= set(jobs)
    assert set(listed["jobs"][0]) == {"job_id", "status", "message", "progress", "updated_at"}


def test_cancel_a_queued_and_a_running_job(stack, client):
    running = [submit(client, f"c{i}.md", (DOCS / "one_page.md").read_bytes()).json()["job_id"] for i in range(3)]
    queued = running.pop()
    wait_until(lambda: status(client, running[0])["status"] == "processing", 30, "a job to start")
    active = client.get(f"{API}/active", params={"limit": 10}).json()
    assert {"active_jobs", "total_count", "limit"} <= set(active) and active["limit"] == 10

    for job_id in (queued, running[0]):
        answer = client.post(f"{API}/cancel/{job_id}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["job_id"] == job_id
        assert wait_for(client, job_id, timeout=30)["status"] == "cancelled"
    assert client.post(f"{API}/cancel/{queued}").status_code == 409
    assert client.get(f"{API}/download/{queued}").status_code == 404
    wait_for(client, running[1], timeout=180)
    time.sleep(1)
    assert status(client, running[0])["status"] == "cancelled"  # terminal stays terminal


# --- bad input --------------------------------------------------------------------------------------------

def blank_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 50, 50)
    return bytes(pdf.output())


@pytest.mark.parametrize(
    ("name", "content", "status_code", "says"),
    [
        ("empty.txt", b"", 400, "empty"),
        ("slides.pptx", b"not supported", 400, ".txt"),
        ("blank.pdf", blank_pdf(), 400, "text"),
        ("fake.pdf", b"%PDF-1.4 this is not really a pdf", 400, "pdf"),
        ("huge.txt", b"a" * (50 * 1024 * 1024 + 1), 400, "50"),
    ],
    ids=["empty", "unsupported-type", "pdf-without-text", "broken-pdf", "over-limit"],
)
def test_bad_uploads_are_refused_clearly(client, name, content, status_code, says):
    before = client.get(f"{API}/jobs", params={"limit": 100}).json()["total_count"]
    response = submit(client, name, content)
    assert response.status_code == status_code, response.text
    assert says.lower() in str(response.json()["detail"]).lower()
    assert client.get(f"{API}/jobs", params={"limit": 100}).json()["total_count"] == before


def test_bad_requests_get_the_contract_status(client):
    for form in ({"files": {"other": ("a.txt", b"hi")}}, {"data": {"x": "1"}}):
        response = client.post(f"{API}/generate", **form)
        assert response.status_code == 422 and isinstance(response.json()["detail"], str), response.text
    unknown = uuid.uuid4()
    cases = [
        ("GET", f"{API}/status/not-a-uuid", 422),
        ("GET", f"{API}/status/{'z' * 4000}", 422),
        ("GET", f"{API}/status/{unknown}", 404),
        ("GET", f"{API}/download/{unknown}", 404),
        ("POST", f"{API}/cancel/not-a-uuid", 400),
        ("POST", f"{API}/cancel/{unknown}", 404),
        ("GET", f"{API}/jobs?limit=101", 422),
        ("GET", f"{API}/active?limit=abc", 422),
    ]
    for method, path, expected in cases:
        response = client.request(method, path)
        assert response.status_code == expected, (path[:80], response.status_code, response.text[:300])
        detail = response.json()["detail"]
        assert isinstance(detail, str) and len(detail) < 300, detail
    assert client.get(f"{API}/status/not-a-uuid").json()["detail"].startswith("job_id: Input should be a valid UUID")
    assert client.get(f"{API}/jobs?limit=101").json()["detail"] == "limit: Input should be less than or equal to 100"


def test_download_before_finished_and_cancel_after(client):
    job_id = submit(client, "early.md", (DOCS / "one_page.md").read_bytes()).json()["job_id"]
    early = client.get(f"{API}/download/{job_id}")
    assert early.status_code == 400 and "detail" in early.json()
    done = wait_for(client, job_id, timeout=180)
    assert done["status"] == "completed"
    late = client.post(f"{API}/cancel/{job_id}")
    assert late.status_code == 409 and "detail" in late.json()
    assert status(client, job_id)["status"] == "completed"  # nothing disturbed


def test_health_reports_every_dependency(client):
    health = client.get("/health").json()
    assert health["status"] == "healthy" and health["service"] == "text-to-video"
    assert health["dependencies"]["tts_service"] == "up" and health["dependencies"]["llm_service"] == "up"


# --- faults -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("down", "dependency"), [("llm", "llm_service"), ("tts", "tts_service")])
def test_a_dependency_down_fails_the_job_and_shows_in_health(tmp_path, down, dependency):
    with running_stack(data_dir=tmp_path) as stack, httpx.Client(base_url=stack.urls.server, timeout=30) as client:
        stack.stop_service(down)
        wait_until(lambda: client.get("/health").json()["dependencies"][dependency] == "down", 15, f"{down} down")
        assert client.get("/health").json()["status"] == "degraded"
        job_id = submit(client, "note.txt", SHORT).json()["job_id"]
        started = time.monotonic()
        job = wait_for(client, job_id, timeout=120)
        assert job["status"] in ("failed", "completed_with_errors")
        assert time.monotonic() - started < 120
        assert down in " ".join(job["errors"] or job["result"]["errors"]).lower()

        stack.start_service(down)
        wait_until(lambda: client.get("/health").json()["status"] == "healthy", 15, "health to recover")
        assert wait_for(client, submit(client, "again.txt", SHORT).json()["job_id"])["status"] == "completed"


def test_jobs_survive_a_server_restart(tmp_path):
    with running_stack(data_dir=tmp_path, max_concurrent_jobs=1) as stack, \
            httpx.Client(base_url=stack.urls.server, timeout=30) as client:
        document = (DOCS / "one_page.md").read_bytes()
        jobs = [submit(client, f"r{i}.md", document).json()["job_id"] for i in range(3)]
        wait_until(lambda: status(client, jobs[0])["status"] == "processing", 30, "the first job to start")
        assert status(client, jobs[2])["status"] == "pending"
        stack.restart_service("server")

        first = wait_for(client, jobs[0], timeout=180)
        assert first["status"] in ("failed", "completed")
        if first["status"] == "failed":
            error = " ".join(first["errors"]).lower()
            assert "interrupted" in error and "server" in error
        for job_id in jobs[1:]:
            assert wait_for(client, job_id, timeout=240)["status"] == "completed"


def test_a_restarted_stack_keeps_its_jobs_and_videos(tmp_path):
    with running_stack(data_dir=tmp_path) as first, httpx.Client(base_url=first.urls.server, timeout=30) as client:
        job_id = submit(client, "note.txt", SHORT).json()["job_id"]
        done = wait_for(client, job_id, timeout=180)
        assert done["status"] == "completed", done
        video = client.get(f"{API}/download/{job_id}").content
    # running_stack picks new free ports: only the data folder carries the jobs over
    with running_stack(data_dir=tmp_path) as second, httpx.Client(base_url=second.urls.server, timeout=30) as client:
        assert second.urls != first.urls
        assert status(client, job_id) == done
        again = client.get(f"{API}/download/{job_id}")
        assert again.status_code == 200 and again.content == video


# --- lifecycle --------------------------------------------------------------------------------------------

def test_stopping_the_stack_leaves_no_process(tmp_path):
    with running_stack(data_dir=tmp_path) as stack, httpx.Client(base_url=stack.urls.server, timeout=30) as client:
        job_id = submit(client, "note.md", (DOCS / "one_page.md").read_bytes()).json()["job_id"]
        wait_until(lambda: status(client, job_id)["phase"] in ("visual", "compose"), 60, "the job to reach encoding")
        pids = process_tree(stack)
        assert len(pids) >= 4
    assert wait_until(lambda: not alive(pids), 15, "every stack process to end")


def test_cli_prints_ready_and_stops_everything_on_sigterm(tmp_path):
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    command = [sys.executable, "-m", "stack", "--data-dir", str(tmp_path)]
    command += [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == (f"ready server=http://127.0.0.1:{ports['server']} tts=http://127.0.0.1:{ports['tts']} "
                        f"llm=http://127.0.0.1:{ports['llm']} redis=redis://127.0.0.1:{ports['redis']}/0")
        assert httpx.get(f"http://127.0.0.1:{ports['server']}/health").status_code == 200
        children = {child.pid for child in psutil.Process(proc.pid).children(recursive=True)}
        assert len(children) >= 4

        busy = subprocess.run([sys.executable, "-m", "stack", "--server-port", str(ports["server"])],
                              capture_output=True, text=True, timeout=60)
        assert busy.returncode == 2
        assert f"port {ports['server']}" in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert wait_until(lambda: not alive(children), 15, "every stack process to end")


def cli_command(*args: str) -> list[str]:
    """`python -m stack` on free ports (so no other run's port is in the way), plus `args`."""
    ports = [arg for name, port in zip(SERVICES, free_ports(len(SERVICES)), strict=True)
             for arg in (f"--{name}-port", str(port))]
    return [sys.executable, "-m", "stack", *ports, *args]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_stops_promptly_on_a_signal_while_starting(tmp_path, signum):
    proc = subprocess.Popen(cli_command("--data-dir", str(tmp_path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    children: set[int] = set()

    def mid_start() -> bool:  # redis is up and llm is on its way
        children.update(child.pid for child in psutil.Process(proc.pid).children())
        return len(children) >= 2

    try:
        wait_until(mid_start, 30, "two services to be started", interval=0.05)
        proc.send_signal(signum)
        signalled = time.monotonic()
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - signalled < 10
    assert proc.returncode == 128 + signum, (proc.returncode, stderr)
    assert "ready" not in stdout
    assert stderr.strip() == f"stack: {signal.Signals(signum).name} while starting; stopped"
    assert wait_until(lambda: not alive(children), 15, "every started service to end")


def test_cli_names_a_data_dir_it_cannot_create(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = subprocess.run(cli_command("--data-dir", str(blocker / "data")), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("stack: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(blocker) in result.stderr and "Traceback" not in result.stderr


def test_equal_port_flags_are_refused_naming_both(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--tts-port", "18001", "--server-port", "18001"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "--tts-port and --server-port are both 18001; each service needs its own port")
