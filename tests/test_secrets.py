"""Nothing secret leaves the run: URL credentials and token-like settings are masked in everything written
or logged, while the real URL still connects (a password-protected Redis, end to end)."""

from __future__ import annotations

import io
import json
import logging
import secrets
import subprocess
from pathlib import Path

import polars as pl
import pytest
import redis

from profiles.redact import MASK, install_log_redaction, redact, redact_text, register_secrets, secrets_in
from profiles.settings import load_profile
from stack import running_stack
from stack.binaries import redis_server
from stack.launcher import free_port
from tasks.services import Services
from tasks.store import LEDGER, Ledger, read_json, write_json
from tests.stackutil import wait_until

DOCS = Path(__file__).parent.parent / "profiles" / "documents"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:s3cret-pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://alice:s3cret-pw@host/1", "rediss://alice:***@host/1"),
        ("https://ghp_t0ken@github.com/x", "https://***@github.com/x"),
        ("Error connecting to redis://:pw%40x@h:1/0.", "Error connecting to redis://:***@h:1/0."),
        ("http://127.0.0.1:8000/health and user@example.com", "http://127.0.0.1:8000/health and user@example.com"),
    ],
)
def test_url_credentials_are_masked_wherever_they_appear(text, shown):
    assert redact_text(text) == shown


def test_secret_settings_are_found_and_masked_bare_encoded_and_in_json():
    settings = {"target": {"redis_url": "redis://:pw-in-url@h/0", "server_url": "http://h:1"},
                "auth": {"headers": {"Authorization": "Bearer tok-123456"}}, "api_key": "key-abcdef", "n": 3}
    found = secrets_in(settings)
    assert sorted(found) == ["Bearer tok-123456", "key-abcdef", "pw-in-url"]
    register_secrets(["p@ss\"word-1"])
    assert redact_text("echo p@ss\"word-1, p%40ss%22word-1") == f"echo {MASK}, {MASK}"
    assert redact(json.dumps({"error": "p@ss\"word-1"})) == json.dumps({"error": MASK})
    assert redact({"a": ["redis://:x-y-z@h/0", 1, None]}) == {"a": ["redis://:***@h/0", 1, None]}


def test_profile_and_services_shown_as_json_carry_no_credentials_but_connect_with_them(tmp_path):
    profile = load_profile("smoke", ["target.bundled_stack=false", 'target.server_url="http://u:srv-pw1@h:1"',
                                     'target.tts_url="http://h:2"', 'target.llm_url="http://h:3"',
                                     'target.redis_url="redis://:redis-pw1@h:4/0"', f'results_dir="{tmp_path}"'])
    shown = json.dumps(profile.model_dump(mode="json"))
    assert "srv-pw1" not in shown and "redis-pw1" not in shown and "redis://:***@h:4/0" in shown
    assert str(profile.target.redis_url) == "redis://:redis-pw1@h:4/0"  # the real one, to connect
    services = Services(server="http://h:1", tts="http://h:2", llm="http://h:3", redis="redis://:redis-pw1@h:4/0",
                        llm_model="m")
    assert services.model_dump(mode="json")["redis"] == "redis://:***@h:4/0"
    assert services.redis == "redis://:redis-pw1@h:4/0"


def test_ledger_and_json_writers_mask_before_writing(tmp_path):
    Ledger.of(tmp_path).record("services", service="redis", url="redis://:ledger-pw@h/0", ok=False,
                               detail="cannot reach redis://:ledger-pw@h/0")
    write_json(tmp_path / "manifest.json", {"services": {"redis": {"url": "redis://:ledger-pw@h/0"}}})
    assert "ledger-pw" not in (tmp_path / LEDGER).read_text() + (tmp_path / "manifest.json").read_text()
    assert read_json(tmp_path / "manifest.json")["services"]["redis"]["url"] == "redis://:***@h/0"


def test_log_lines_and_exception_texts_are_masked():
    install_log_redaction(["bare-log-secret"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.secrets")
    logger.addHandler(handler)
    try:
        logger.warning("connecting to %s with bare-log-secret", "redis://:log-pw@h/0")
        try:
            raise ConnectionError("Error connecting to redis://:exc-pw@h:6379/0")
        except ConnectionError:
            logger.exception("check failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "connecting to redis://:***@h/0 with ***" in text
    assert "redis://:***@h:6379/0" in text and "Traceback" in text
    for secret in ("log-pw", "exc-pw", "bare-log-secret"):
        assert secret not in text


# --- end to end ------------------------------------------------------------------------------------------


@pytest.fixture
def protected_redis(tmp_path):
    """A real redis-server that requires a password: (password, URL with the password)."""
    password = "pw-" + secrets.token_hex(12)
    port = free_port()
    (tmp_path / "redis").mkdir()
    process = subprocess.Popen(
        [redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password, "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path / "redis")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://:{password}@127.0.0.1:{port}/0"

    def answers() -> bool:
        try:
            return redis.Redis.from_url(url, socket_timeout=1).ping()
        except redis.RedisError:
            return False

    try:
        wait_until(answers, 20, "the password-protected redis")
        yield password, url
    finally:
        process.terminate()
        process.wait(timeout=10)


def prefect_records() -> str:
    """Everything the Prefect server holds that a user sees: artifacts, flow and task runs, logs."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        parts = [client.read_artifacts(limit=200), client.read_flow_runs(limit=200),
                 client.read_task_runs(limit=200), client.read_logs(limit=200)]
        offset = 200
        while batch := client.read_logs(limit=200, offset=offset):
            parts.append(batch)
            offset += 200
    return "\n".join(item.model_dump_json() for part in parts for item in part)


def prefect_database() -> bytes:
    from prefect.settings import get_current_settings

    path = Path(get_current_settings().server.database.connection_url.get_secret_value().split("///", 1)[1])
    return b"".join(file.read_bytes() for file in path.parent.glob(path.name + "*"))


def test_a_redis_password_appears_nowhere_the_run_wrote(prefect_server, protected_redis, tmp_path, capfd):
    from flows.full_suite import full_suite

    password, redis_url = protected_redis
    with running_stack(data_dir=tmp_path / "stack") as stack:
        urls = stack.urls
        profile = tmp_path / "profile.toml"
        profile.write_text(
            f'name = "secrets"\nresults_dir = "{tmp_path / "runs"}"\n'
            f'[target]\nbundled_stack = false\nserver_url = "{urls.server}"\ntts_url = "{urls.tts}"\n'
            f'llm_url = "{urls.llm}"\nredis_url = "{redis_url}"\nllm_model = "extractive-planner"\n'
            f'[workload]\ndocuments = ["{DOCS / "short_note.txt"}"]\nconcurrency_levels = [1]\n'
            'sequential_jobs = 1\nlatency_probes = 3\n'
            '[timing]\njob_timeout_s = 120\npoll_interval_s = 0.25\nbaseline_s = 0.5\n')
        state = full_suite(profile=str(profile), run_id="secret-run", return_state=True)

    run = tmp_path / "runs" / "secret-run"
    services = pl.read_parquet(run / "services.parquet")
    redis_row = services.filter(pl.col("service") == "redis").to_dicts()[0]
    assert redis_row["ok"], redis_row  # the real URL connected: the password was used
    assert redis_row["url"] == redis_url.replace(password, MASK)
    assert state.is_completed(), state.message

    secret = password.encode()
    written = [path for path in run.rglob("*") if path.is_file()]
    assert {"manifest.json", LEDGER, "services.parquet"} <= {path.name for path in written}
    assert any(path.suffix == ".md" for path in written) and any(path.suffix == ".html" for path in written)
    leaks = [str(path) for path in written if secret in path.read_bytes()]
    tables = {path.name: pl.read_parquet(path).write_csv() for path in written if path.suffix == ".parquet"}
    leaks += [name for name, text in tables.items() if password in text]  # Parquet pages are compressed
    console = capfd.readouterr()
    leaks += [name for name, text in (("stdout", console.out), ("stderr", console.err)) if password in text]
    records, database = prefect_records(), prefect_database()
    if password in records:
        leaks.append("Prefect artifacts, flow runs, task runs or logs")
    if secret in database:
        leaks.append("the Prefect server's database")
    assert leaks == []
    shown = redis_url.replace(password, MASK)  # the masked URL is there: the search looked in the right places
    assert shown in (run / "manifest.json").read_text() and shown in records and shown.encode() in database


def test_a_password_in_set_is_refused_before_anything_is_stored(capsys, monkeypatch):
    from flows.full_suite import main

    external = ["target.bundled_stack=false", 'target.server_url="http://127.0.0.1:1"',
                'target.tts_url="http://127.0.0.1:2"', 'target.llm_url="http://127.0.0.1:3"']
    url = 'target.redis_url="redis://:Hunter2SecretXyz@127.0.0.1:6380/0"'
    assert main(["--profile", "smoke", *(arg for item in [*external, url] for arg in ("--set", item))]) == 2
    error = capsys.readouterr().err
    assert "--set target.redis_url" in error and "${REDIS_PASSWORD}" in error and "Hunter2SecretXyz" not in error
    monkeypatch.setenv("T2V_TEST_PASSWORD", "Hunter2SecretXyz")
    from flows.full_suite import secret_overrides
    from profiles.redact import secrets_in
    from profiles.settings import load_profile

    by_reference = [*external, 'target.redis_url="redis://:${T2V_TEST_PASSWORD}@127.0.0.1:6380/0"']
    assert secret_overrides(by_reference, secrets_in(load_profile("smoke", by_reference))) == []
