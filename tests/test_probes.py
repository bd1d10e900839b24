"""Latency probes and service checks against real (small, local) servers that answer well or badly: every
probe and check ends within its bound with a specific error, a latency is only the time of an answer."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
from prefect import flow

from profiles.settings import Endpoints, load_profile
from tasks import interrupt
from tasks.http import STOP_CHECK_S, timed_client
from tasks.latency import probe, probe_endpoint
from tasks.services import Services, check_llm, check_redis, check_server, check_tts
from tasks.store import read_ledger
from tests.stackutil import QuietHandler, serving

HEALTHY = json.dumps({"status": "healthy", "service": "probe-test", "engine": "none"}).encode()
SLOW_S = 0.2


class Target(QuietHandler):
    """/health answers at once; /slow after SLOW_S; /missing 404 (JSON); /html a page; /loading a TTS model still
    loading; /trickle a JSON body a byte every 0.2 s for 10 s; /silent and /silent-status/<id> nothing for 10 s;
    /api/v1/video/status/<id> 404 like the contract; anything else is healthy. Every path asked for is noted in
    `asked`."""

    protocol_version = "HTTP/1.1"
    asked: set[str] = set()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.asked.add(self.path)
        if self.path == "/silent" or self.path.startswith("/silent-status/"):
            time.sleep(10)
        if self.path == "/slow":
            time.sleep(SLOW_S)
        if self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "50")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
            return
        if self.path == "/missing" or self.path.startswith("/api/v1/video/status/"):
            self.answer(404, b'{"detail": "not found"}')
        elif self.path == "/html":
            self.answer(200, b"<html>hello</html>", "text/html")
        elif self.path == "/loading":  # Chatterbox's health while its model loads
            self.answer(200, {"status": "healthy", "model_loaded": False, "device": "cpu"})
        else:
            self.answer(200, HEALTHY)


@pytest.fixture(scope="module")
def target():
    with serving(Target) as url:
        yield url


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return port


@pytest.fixture
def mute_listener():
    """A TCP port that accepts connections and never says a word (a hung service)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def stop_flag():
    interrupt.reset()
    yield
    interrupt.reset()


def timed(fn, *args):
    started = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - started


def one_probe(url: str, timeout_s: float = 5.0, expected: int = 200) -> dict:
    with timed_client() as client:
        return probe(client, url, timeout_s, expected)


def test_an_answer_is_timed_at_the_wire(target):
    row = one_probe(f"{target}/health")
    assert row["ok"] and row["status_code"] == 200 and row["error_kind"] is None
    assert 0 < row["ms"] < 1000
    slow, took = timed(one_probe, f"{target}/slow")
    assert SLOW_S * 1000 <= slow["ms"] <= took * 1000  # the server's wait is in it, nothing outside the request is


@pytest.mark.parametrize(
    ("path", "expected", "kind", "says"),
    [
        ("/missing", 200, "wrong_status", "HTTP 404, expected 200"),
        ("/health", 404, "wrong_status", "HTTP 200, expected 404"),
        ("/html", 200, "not_json", "body is not JSON"),
    ],
)
def test_a_wrong_answer_is_an_error_with_its_time(target, path, expected, kind, says):
    row = one_probe(f"{target}{path}", expected=expected)
    assert not row["ok"] and row["error_kind"] == kind and says in row["error"]
    assert row["ms"] is not None  # an answer came: it has a time, it is just not a good answer


def test_no_answer_has_no_time(target, closed_port, mute_listener):
    refused = one_probe(f"http://127.0.0.1:{closed_port}/health")
    assert refused["error_kind"] == "refused" and refused["ms"] is None and refused["status_code"] is None
    silent, took = timed(one_probe, f"http://127.0.0.1:{mute_listener}/health", 0.5)
    assert silent["error_kind"] == "timeout" and silent["ms"] is None and took < 2
    assert silent["error"] == "no complete answer within 0.5 s"


def test_a_trickling_answer_is_cut_at_its_bound(target):
    row, took = timed(one_probe, f"{target}/trickle", 1.0)
    assert row["error_kind"] == "timeout" and row["ms"] is None
    assert 1.0 <= took < 2.0


def test_a_stop_request_ends_a_probe_in_flight(mute_listener, stop_flag):
    threading.Timer(0.3, interrupt.request_stop).start()
    started = time.monotonic()
    with pytest.raises(interrupt.Interrupted):
        one_probe(f"http://127.0.0.1:{mute_listener}/health", 30.0)
    assert time.monotonic() - started < 1.5


def test_probe_stage_records_every_probe_and_gives_up_on_a_silent_endpoint(prefect_server, target, mute_listener,
                                                                            tmp_path):
    @flow
    def probing() -> list[dict]:
        return [probe_endpoint(str(tmp_path), "health", f"{target}/health", 5, 2.0, 30.0),
                probe_endpoint(str(tmp_path), "hung", f"http://127.0.0.1:{mute_listener}/health", 100, 0.3, 0.5)]

    (healthy, hung), took = timed(probing)
    assert healthy == {"endpoint": "health", "probes": 5, "planned": 5, "errors": 0, "error_kinds": {},
                       "first_error_at": None, "stopped": None}
    assert hung["stopped"] == "no answer for 0.5 s, gave up" and 2 <= hung["probes"] <= 4
    assert hung["first_error_at"] == min(row["t"] for row in read_ledger(tmp_path)["latency"]
                                         if row["endpoint"] == "hung")
    assert hung["error_kinds"] == {"timeout": hung["probes"]}
    assert took < 10
    rows = read_ledger(tmp_path)["latency"]
    assert [row["i"] for row in rows if row["endpoint"] == "health"] == [0, 1, 2, 3, 4]
    assert all(row["ms"] is None for row in rows if row["endpoint"] == "hung")


# --- service verification -------------------------------------------------------------------------------


def check(check_task, *args) -> dict:
    """A check run as the re-probe runs it: its plain coroutine function."""
    return asyncio.run(check_task.fn(*args))


def test_a_health_answer_trickling_fails_the_check_at_its_bound(target):
    endpoints = Endpoints(health="/trickle")
    row, took = timed(check, check_server, target, endpoints, 1.0)
    assert not row["ok"] and 1.0 <= took < 2.0
    assert row["detail"] == "no complete answer within 1 s (GET /trickle was not answered in time)"
    assert "timing.verify_timeout_s" in row["fix"]


def test_a_hung_service_fails_its_check_at_its_bound(mute_listener):
    tts, took = timed(check, check_tts, f"http://127.0.0.1:{mute_listener}", Endpoints(), 0.5)
    assert not tts["ok"] and tts["detail"].startswith("no complete answer within 0.5 s") and took < 1.5
    redis_row, took = timed(check, check_redis, f"redis://127.0.0.1:{mute_listener}/0", "6.0", 0.5)
    assert not redis_row["ok"] and took < 1.5
    assert redis_row["detail"] == "no complete answer within 0.5 s (PING and INFO were not answered in time)"


def test_a_tts_whose_model_is_not_loaded_fails_its_check(target):
    row = check(check_tts, target, Endpoints(tts_health="/loading"), 2.0)
    assert not row["ok"] and row["detail"] == "GET /loading says healthy but model_loaded is false"


def test_healthy_services_pass_their_checks(target):
    assert check(check_tts, target, Endpoints(), 2.0)["ok"]
    assert check(check_server, target, Endpoints(), 2.0) == {
        "service": "server", "url": target, "ok": True, "version": "probe-test", "detail": "ok", "fix": ""}


def test_verification_ends_failed_with_its_rows_when_a_service_fails(prefect_server, target, closed_port,
                                                                      mute_listener, tmp_path):
    from flows.verify import verify_services

    profile = load_profile("smoke", [f'results_dir="{tmp_path}"', "timing.verify_timeout_s=1"])
    services = Services(server=target, tts=f"http://127.0.0.1:{mute_listener}", llm=f"http://127.0.0.1:{closed_port}",
                        redis=f"redis://:hunter2-secret@127.0.0.1:{closed_port}/0", llm_model="m")
    state, took = timed(lambda: verify_services(profile, services, str(tmp_path), return_state=True))
    assert state.is_failed() and took < 10
    rows = state.result(raise_on_failure=False)
    assert [row["service"] for row in rows] == ["redis", "llm", "tts", "server"]
    assert [row["ok"] for row in rows] == [False, False, False, True]
    assert "3 of 4 services failed verification" in state.message
    assert "tts: no complete answer within 1 s" in state.message
    assert "hunter2-secret" not in json.dumps(rows) + state.message
    assert rows[0]["url"] == f"redis://:***@127.0.0.1:{closed_port}/0"
    # recorded as returned, stamped with the round and attempt by the ledger
    assert read_ledger(tmp_path)["services"] == [{**row, "round": 1, "attempt": 1} for row in rows]


@pytest.mark.parametrize("service", ["server", "tts", "llm", "redis"])
def test_a_stop_ends_a_check_of_a_silent_service_at_once_without_a_row(mute_listener, stop_flag, service):
    """A stop says nothing about the service: no row (None), rather than a failure it did not show."""
    url = f"http://127.0.0.1:{mute_listener}"
    args = {"server": (check_server, url, Endpoints(), 30.0), "tts": (check_tts, url, Endpoints(), 30.0),
            "llm": (check_llm, url, "m", Endpoints(), 30.0, "ollama"),
            "redis": (check_redis, f"redis://127.0.0.1:{mute_listener}/0", "6.0", 30.0)}[service]
    threading.Timer(0.3, interrupt.request_stop).start()
    started = time.monotonic()
    assert check(*args) is None
    assert time.monotonic() - started < 0.3 + 3 * STOP_CHECK_S


def test_an_unknown_job_probe_is_named_for_what_it_is_not_by_its_made_up_id(target):
    endpoints = Endpoints(health="/health", status="/silent-status/{job_id}")
    row = check(check_server, target, endpoints, 0.5)
    assert row["detail"] == ("no complete answer within 0.5 s (GET /silent-status/{job_id} for an unknown job id "
                             "was not answered in time)")


def test_a_stop_ends_verification_at_once_and_records_no_service_failure(prefect_server, target, mute_listener,
                                                                          stop_flag, tmp_path):
    from flows.verify import verify_services

    profile = load_profile("smoke", [f'results_dir="{tmp_path}"', "timing.verify_timeout_s=30",
                                     'target.endpoints.tts_health="/tts-health-before-the-stop"'])
    silent = f"http://127.0.0.1:{mute_listener}"
    services = Services(server=silent, tts=target, llm=silent, redis=f"redis://127.0.0.1:{mute_listener}/0",
                        llm_model="m")
    stopped_at = []

    def stop_once_the_tts_was_checked() -> None:
        while "/tts-health-before-the-stop" not in Target.asked:
            time.sleep(0.05)
        time.sleep(0.5)  # its answer is read; the other three are still waiting for theirs
        stopped_at.append(time.monotonic())
        interrupt.request_stop()

    threading.Thread(target=stop_once_the_tts_was_checked, daemon=True).start()
    state = verify_services(profile, services, str(tmp_path), return_state=True)
    took = time.monotonic() - stopped_at[0]
    assert state.is_cancelled() and took < 2, (state, took)
    rows = state.result(raise_on_failure=False)
    assert [row["service"] for row in rows] == ["tts"] and rows[0]["ok"]  # it answered before the stop
    # recorded as returned, stamped with the round and attempt by the ledger
    assert read_ledger(tmp_path)["services"] == [{**row, "round": 1, "attempt": 1} for row in rows]
    assert state.message == "interrupted: 1 of 4 services checked"


def test_a_stop_ends_a_reprobe_at_once_and_records_no_incident(target, mute_listener, stop_flag, tmp_path):
    from tasks.incidents import reprobe

    profile = load_profile("smoke", [f'results_dir="{tmp_path}"', "timing.verify_timeout_s=30"])
    silent = f"http://127.0.0.1:{mute_listener}"
    services = Services(server=silent, tts=target, llm=silent, redis=f"redis://127.0.0.1:{mute_listener}/0",
                        llm_model="m")
    threading.Timer(0.5, interrupt.request_stop).start()
    found, took = timed(reprobe, profile, services, str(tmp_path), {"server": time.time() - 5})
    assert found == [] and took < 0.5 + 3 * STOP_CHECK_S
    assert read_ledger(tmp_path)["incidents"] == []


# --- the LLM through the OpenAI-style API --------------------------------------------------------------


class OpenAIStyleLLM(QuietHandler):
    """Only the OpenAI-style API, as vLLM or llama.cpp's server: GET /v1/models lists qwen3:4b; /other/v1/models
    lists another model; /mute/v1/models answers 404 like an API without that route; no Ollama route at all."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        listing = {"/v1/models": ["qwen3:4b", "nomic-embed-text"], "/other/v1/models": ["llama3.2:1b"]}
        if self.path in listing:
            self.answer(200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "library"}
                                                         for name in listing[self.path]]})
        else:
            self.answer(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})


@pytest.fixture(scope="module")
def openai_llm():
    with serving(OpenAIStyleLLM) as url:
        yield url


def test_an_openai_style_llm_passes_when_it_lists_the_model(openai_llm):
    assert check(check_llm, openai_llm, "qwen3:4b", Endpoints(), 2.0, "openai") == {
        "service": "llm", "url": openai_llm, "ok": True, "version": "OpenAI-style API (qwen3:4b)", "detail": "ok",
        "fix": ""}
    # the same server checked as Ollama fails with a line that says which setting fits it
    ollama = check(check_llm, openai_llm, "qwen3:4b", Endpoints(), 2.0, "ollama")
    assert not ollama["ok"] and 'set target.llm_api = "openai"' in ollama["fix"], ollama


def test_an_openai_style_llm_without_the_model_names_what_it_has_and_how_to_fix_it(openai_llm):
    row = check(check_llm, openai_llm, "qwen3:4b", Endpoints(llm_models="/other/v1/models"), 2.0, "openai")
    assert not row["ok"]
    assert row["detail"] == "model qwen3:4b not listed by GET /other/v1/models (has: llama3.2:1b)"
    assert row["fix"] == ("serve qwen3:4b on the LLM server (Ollama: `ollama pull qwen3:4b`; vLLM: --served-model-name "
                          "qwen3:4b) or set target.llm_model to a listed id")


def test_an_openai_model_list_at_the_wrong_path_says_which_settings_make_the_url(openai_llm):
    row = check(check_llm, f"{openai_llm}/v1", "qwen3:4b", Endpoints(), 2.0, "openai")  # /v1 twice
    assert not row["ok"] and row["detail"] == "GET /v1/models answered 404: no route /v1/v1/models"
    assert 'a base URL ending in /v1 takes llm_models = "/models"' in row["fix"]
    assert check(check_llm, f"{openai_llm}/v1", "qwen3:4b", Endpoints(llm_models="/models"), 2.0, "openai")["ok"]
