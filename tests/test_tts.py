"""The TTS service: real eSpeak NG speech, MP3 through PyAV, and the HTTP contract."""

from __future__ import annotations

import io
import math
import shutil
import signal
import time
import wave
from array import array
from concurrent.futures import ThreadPoolExecutor

import av
import pytest
from fastapi.testclient import TestClient

from stack.tts import speech
from stack.tts.app import app
from tests.stackutil import service_process

SENTENCE = "The quick brown fox jumps over the lazy dog while the band plays on."  # 14 words


def words(count: int) -> str:
    pool = SENTENCE.split()
    return " ".join(pool[i % len(pool)] for i in range(count))


def read_wav(data: bytes) -> tuple[array, int]:
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return array("h", wav.readframes(wav.getnframes())), wav.getframerate()


def duration(data: bytes) -> float:
    samples, rate = read_wav(data)
    return len(samples) / rate


def test_speech_is_16bit_mono_at_espeak_rate():
    _, rate = read_wav(speech.synthesize("Hello there.", 1.0))
    assert rate == 22050


def test_duration_grows_with_text():
    short, long = duration(speech.synthesize(words(4), 1.0)), duration(speech.synthesize(words(40), 1.0))
    assert 0.5 < short < 5
    assert long > 4 * short


def test_speech_is_not_silent():
    samples, _ = read_wav(speech.synthesize(SENTENCE, 1.0))
    rms = math.sqrt(sum(sample * sample for sample in samples) / len(samples))
    assert rms > 500  # of 32767; silence or a few stray bits would be near 0


def test_speed_shortens_speech():
    assert duration(speech.synthesize(SENTENCE, 2.0)) < 0.7 * duration(speech.synthesize(SENTENCE, 1.0))


def test_long_text_synthesis_speed(record_property):
    text = words(300)
    started = time.perf_counter()
    audio_seconds = duration(speech.synthesize(text, 1.0))
    compute_seconds = time.perf_counter() - started
    realtime_factor = audio_seconds / compute_seconds
    record_property("tts_realtime_factor", realtime_factor)
    print(
        f"\n300 words via {speech.engine().source}: {audio_seconds:.1f} s of audio in {compute_seconds:.3f} s "
        f"= {realtime_factor:.0f} s of audio per s of compute"
    )
    assert audio_seconds > 60  # 300 words at 175 wpm is about 100 s


def test_mp3_decodes_to_the_same_length():
    wav = speech.synthesize(SENTENCE, 1.0)
    samples, rate = read_wav(wav)
    with av.open(io.BytesIO(speech.encode_mp3(wav))) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith("mp3")
        assert stream.sample_rate == rate
        decoded = sum(frame.samples for frame in container.decode(stream))
    assert abs(decoded - len(samples)) < 2 * 1152  # at most the encoder's padding


def test_synthesis_over_its_time_limit_is_a_speech_error(monkeypatch):
    monkeypatch.setattr(speech, "SYNTHESIS_TIMEOUT_SECONDS", 0.0)
    with pytest.raises(speech.SpeechError, match="longer than"):
        speech.synthesize(words(100), 1.0)
    monkeypatch.undo()
    assert duration(speech.synthesize(words(4), 1.0)) > 0.5  # the engine still works afterwards


def test_failing_program_is_a_speech_error():
    with pytest.raises(speech.SpeechError, match="exited with 1"):
        speech.ProgramEngine(shutil.which("false")).speak(b"hello", 175)


def test_program_writing_no_wav_is_a_speech_error():
    with pytest.raises(speech.SpeechError, match="no readable WAV"):
        speech.ProgramEngine(shutil.which("echo")).speak(b"hello", 175)


@pytest.fixture(scope="module")
def client():
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"input": ""}, "input"),
        ({"input": " \n\t "}, "at least 1"),
        ({"input": "a" * 3001}, "at most 3000"),
        ({"input": "hi", "response_format": "ogg"}, "response_format"),
        ({"input": "hi", "speed": 0.1}, "speed"),
        ({"input": "hi", "speed": 4.5}, "speed"),
        ({"input": "hi", "speed": "fast"}, "speed"),
        ({"input": 42}, "input"),
        ({"voice": "alloy"}, "input: Field required"),
        (["hi"], "body"),
    ],
)
def test_bad_requests_are_422_with_a_reason(client, body, names):
    response = client.post("/v1/audio/speech", json=body)
    assert response.status_code == 422
    assert names in response.json()["detail"]


@pytest.mark.parametrize("raw", [b'{"input": "hi"', b"", b'{"input": "hi", "speed": NaN}'])
def test_malformed_json_is_422(client, raw):
    response = client.post("/v1/audio/speech", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_input_exactly_at_the_limit_is_spoken(client):
    response = client.post("/v1/audio/speech", json={"input": "  " + ("ab " * 1000)[:3000] + "  "})
    assert response.status_code == 200
    assert duration(response.content) > 30


def test_engine_failure_is_503(client, monkeypatch):
    monkeypatch.setattr(speech, "_engine", speech.ProgramEngine(shutil.which("false")))
    response = client.post("/v1/audio/speech", json={"input": "hello"})
    assert response.status_code == 503
    assert response.json()["detail"].startswith("speech engine failed: espeak-ng exited with 1")


def check_chatterbox_aliases(http, health: dict) -> None:
    """The aliases the real Chatterbox TTS API answers: the same answers as the contract's paths."""
    for alias in ("/v1/health", "/status"):
        answer = http.get(alias)
        assert answer.status_code == 200 and answer.json() == health, alias
        assert answer.json()["model_loaded"] is True
    for alias in ("/audio/speech", "/tts"):
        wav = http.post(alias, json={"input": SENTENCE, "voice": "alloy", "response_format": "wav"})
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav", alias
        assert duration(wav.content) > 2
        refused = http.post(alias, json={"input": ""})
        assert refused.status_code == 422 and "input" in refused.json()["detail"], alias


def test_service_process_speaks_the_contract():
    with service_process("stack.tts", "/health") as run:
        health = run.http.get("/health").json()
        assert health["status"] == "healthy" and health["model_loaded"] is True
        assert health["engine"] == "espeak-ng"
        assert health["engine_source"] in ("PATH", "espeakng-loader wheel")

        models = run.http.get("/v1/models").json()
        assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["espeak-ng"]

        wav = run.http.post("/v1/audio/speech", json={"input": SENTENCE, "voice": "alloy", "response_format": "wav"})
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
        assert duration(wav.content) > 2

        mp3 = run.http.post("/v1/audio/speech", json={"input": SENTENCE, "voice": "nova", "response_format": "mp3"})
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
        assert mp3.content[:3] == b"ID3" or mp3.content[:2] == b"\xff\xfb"

        empty = run.http.post("/v1/audio/speech", json={"input": "   "})
        assert empty.status_code == 422 and "input" in empty.json()["detail"]

        check_chatterbox_aliases(run.http, health)

        # The library is single-threaded inside; concurrent requests must each get whole, right-sized speech
        # (eSpeak varies a run by a few samples, hence approx).
        texts = [words(count) for count in (10, 40, 10, 40)]
        with ThreadPoolExecutor(len(texts)) as pool:
            replies = list(pool.map(lambda text: run.http.post("/v1/audio/speech", json={"input": text}), texts))
        short, long, short_again, long_again = (duration(reply.content) for reply in replies)
        assert short_again == pytest.approx(short, abs=0.05) and long_again == pytest.approx(long, abs=0.05)
        assert long > 3 * short
    assert run.process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down cleanly
    assert b"Traceback" not in run.output
