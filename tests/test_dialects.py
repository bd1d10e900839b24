"""The bundled stack as the upstream deployment met it, against its real processes: the llm reached only
through the OpenAI API with the upstream server's kind of prompt, binary uploads, and Redis restarting
under a job (issue 9)."""

from __future__ import annotations

import json
import random
import re

import httpx
import pytest
import redis

from stack import running_stack
from stack.server.jobs import QUEUE_KEY, job_key
from stack.server.script import parse_script
from stack.server.worker import LOST_MESSAGE
from tests.stackutil import API, ROOT, narration_seconds, status, submit, wait_for, wait_until, wav_seconds
from tests.test_llm import UPSTREAM_SYSTEM, upstream_prompt

DOCS = ROOT / "profiles" / "documents"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # One worker: a second job stays queued behind the first, where the Redis test needs it.
    with running_stack(data_dir=tmp_path_factory.mktemp("stack"), max_concurrent_jobs=1) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=stack.urls.server, timeout=30) as http:
        yield http


def spoken_seconds(tts: str, scenes: list) -> float:
    """Narration of `scenes` through the Chatterbox alias the upstream server may call."""
    total = 0.0
    for scene in scenes:
        speech = httpx.post(f"{tts}/audio/speech", timeout=60, json={"input": scene.narration_text, "voice": "alloy"})
        assert speech.status_code == 200, speech.text
        total += wav_seconds(speech.content)
    return total


def test_the_upstream_prompt_is_narrated_in_proportion_to_its_document(stack):
    """As the upstream server does it: OPENAI_BASE_URL ending in /v1, the model from GET /v1/models, the
    document inside instructions. Only the document is spoken: as long as the document alone, and the
    same seconds per word for a 394-byte note (it gave ~250 s upstream) as for a note three times longer."""
    base = f"{stack.urls.llm}/v1"
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": "Bearer unused"}) as openai:
        model = openai.get("/models").json()["data"][0]["id"]
        per_word = {}
        for name in ("short_note.txt", "field_notes.txt"):
            document = (DOCS / name).read_text()
            answer = openai.post("/chat/completions", json={"model": model, "temperature": 0.2, "messages": [
                {"role": "system", "content": UPSTREAM_SYSTEM}, {"role": "user", "content": upstream_prompt(document)},
            ]})
            assert answer.status_code == 200, answer.text
            scenes = parse_script(answer.json()["choices"][0]["message"]["content"])  # the server's own reading
            told = " ".join(scene.narration_text for scene in scenes)
            assert not re.search(r"json|scene|narrat", told, re.IGNORECASE), told
            seconds = spoken_seconds(stack.urls.tts, scenes)
            alone, _ = narration_seconds(stack.urls, document)
            assert seconds == pytest.approx(alone, rel=0.05), name
            per_word[name] = seconds / len(document.split())
            print(f"\n{name}: {len(document.encode())} bytes, {len(scenes)} scenes, {seconds:.1f} s of speech")
    assert 0.7 < per_word["short_note.txt"] / per_word["field_notes.txt"] < 1.4, per_word


@pytest.mark.parametrize("name", ["garbage.txt", "garbage.md"])
def test_binary_data_named_as_text_is_refused_as_no_text(client, name):
    before = client.get(f"{API}/jobs", params={"limit": 1}).json()["total_count"]
    refused = submit(client, name, random.Random(7).randbytes(20_000), "text/plain")
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"].startswith(f"no text: '{name}' is binary data")
    assert client.get(f"{API}/jobs", params={"limit": 1}).json()["total_count"] == before


def test_a_redis_restart_under_a_job_ends_every_job(stack, client):
    """Redis goes away while a job runs and comes back after the job's outcome was decided: the job still
    completes (its outcome was kept and written once Redis answered), and jobs the workers lost in the
    outage (a popped job never claimed, a claimed job nobody runs) end instead of waiting forever."""
    note = (DOCS / "short_note.txt").read_bytes()
    running = submit(client, "running.txt", note).json()["job_id"]
    wait_until(lambda: status(client, running)["status"] == "processing", 30, "the job to start")
    popped, claimed = (submit(client, f"{kind}.txt", note).json()["job_id"] for kind in ("popped", "claimed"))
    with redis.Redis.from_url(stack.urls.redis) as db:  # the two losses an outage can cause, made by hand
        for job_id in (popped, claimed):
            assert db.lrem(QUEUE_KEY, 0, job_id) == 1
        db.hset(job_key(claimed), "status", json.dumps("processing"))
    log = stack.log_path("server")
    logged = len(log.read_text())

    stack.stop_service("redis")
    # Redis stays down until the running job's outcome is decided, and could not be written.
    wait_until(lambda: f"job {running}: completed, not recorded yet" in log.read_text()[logged:], 60,
               "the outcome to wait for redis")
    stack.start_service("redis")

    assert wait_for(client, running, timeout=15)["status"] == "completed"
    assert client.get(f"{API}/download/{running}").status_code == 200
    lost = wait_for(client, claimed, timeout=15)
    assert lost["status"] == "failed" and lost["errors"] == [LOST_MESSAGE]
    assert wait_for(client, popped, timeout=60)["status"] == "completed"
    assert client.get(f"{API}/active").json()["total_count"] == 0
