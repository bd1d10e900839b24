from pathlib import Path

import pytest

from profiles.settings import ProfileError, load_profile


@pytest.mark.parametrize("name", ["local", "seed", "smoke", "upstream"])
def test_shipped_profiles_validate(name):
    profile = load_profile(name)
    assert profile.name == name
    assert all(doc.is_file() for doc in profile.workload.documents)
    # the stall bound must come before the job timeout, or a stuck job would wait the whole of it
    assert profile.timing.pending_timeout_s < profile.timing.job_timeout_s
    assert profile.workload.unique_documents  # no job is a cache hit of another by default


def test_seed_profile_points_at_the_seed_deployment():
    target = load_profile("seed").target
    assert not target.bundled_stack
    assert (str(target.server_url), str(target.tts_url), str(target.llm_url), str(target.redis_url)) == (
        "http://localhost:8000/", "http://localhost:4123/", "http://localhost:11434/", "redis://localhost:6379/0")
    assert target.llm_model == "qwen3:4b"


def test_upstream_profile_points_at_the_upstream_deployment():
    target = load_profile("upstream").target
    assert not target.bundled_stack
    assert (str(target.server_url), str(target.tts_url), str(target.llm_url), str(target.redis_url)) == (
        "http://localhost:8000/", "http://localhost:4123/", "http://localhost:11434/", "redis://localhost:6379/0")
    assert (target.llm_api, target.endpoints.llm_models, target.endpoints.tts_health) == (
        "openai", "/v1/models", "/v1/health")


def test_defaults_follow_the_contract_and_the_issue():
    profile = load_profile("local")
    assert profile.workload.concurrency_levels == [1, 3, 5]
    assert profile.workload.sequential_jobs == 5 and profile.workload.latency_probes == 50
    assert profile.target.endpoints.status == "/api/v1/video/status/{job_id}"


def test_overrides_are_typed():
    profile = load_profile("smoke", ["workload.concurrency_levels=[1,4]", "timing.poll_interval_s=0.1",
                                     "target.endpoints.health=/healthz"])
    assert profile.workload.concurrency_levels == [1, 4]
    assert profile.timing.poll_interval_s == 0.1
    assert profile.target.endpoints.health == "/healthz"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["workload.sequential_jobs=abc"], "workload.sequential_jobs"),
        (["workload.latency_probes=0"], "workload.latency_probes"),
        (["timing.bogus=1"], "timing.bogus: unknown key"),
        (["thresholds.success_rate=1.5"], "thresholds.success_rate"),
        (["target.server_url=http://x"], "server_url: not allowed with bundled_stack = true"),
        (["target.endpoints.status=/no/id"], "target.endpoints.status"),
        (["thresholds.expected_resolution=big"], "thresholds.expected_resolution"),
        (["workload.documents=['missing.txt']"], "workload.documents: no such file"),
        (["nonsense"], "expected key=value"),
        (["timing.job_timeout_s=inf"], "timing.job_timeout_s"),
        (["timing.poll_interval_s=nan"], "timing.poll_interval_s"),
        (["target.endpoints.download='/d/{job_id}/{other}'"], "may hold no placeholder but {job_id}"),
        (["target.min_redis_version='banana'"], "target.min_redis_version"),
        (["target.llm_api='vllm'"], "target.llm_api: Input should be 'ollama' or 'openai'"),
        (["timing.pending_timeout_s=0"], "timing.pending_timeout_s"),
        (["results_dir='/proc/no/such/dir'"], "results_dir: cannot create /proc/no/such/dir"),
    ],
)
def test_bad_settings_name_the_key(overrides, named):
    with pytest.raises(ProfileError) as error:
        load_profile("local", overrides)
    assert named in str(error.value)


def test_external_target_needs_every_url(tmp_path: Path):
    path = tmp_path / "partial.toml"
    path.write_text('name = "partial"\n[target]\nbundled_stack = false\nserver_url = "http://localhost:8000"\n'
                    '[workload]\ndocuments = ["/etc/hostname"]\n')
    with pytest.raises(ProfileError, match="tts_url, llm_url, redis_url: required"):
        load_profile(str(path))


def test_bad_urls_and_missing_keys(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[target]\nbundled_stack = false\nserver_url = "not a url"\ntts_url = "http://h:1"\n'
                    'llm_url = "http://h:2"\nredis_url = "http://h:3"\n')
    message = str(pytest.raises(ProfileError, load_profile, str(path)).value)
    assert "target.server_url" in message and "target.redis_url" in message
    assert "name: missing" in message and "workload: missing" in message


def test_unknown_profile_and_bad_toml(tmp_path: Path):
    with pytest.raises(ProfileError, match="shipped profiles: local, seed, smoke, upstream"):
        load_profile("nope")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(str(broken))


def test_a_secret_can_stay_in_the_environment(monkeypatch):
    monkeypatch.setenv("T2V_TEST_REDIS_PASSWORD", "s3cret-in-env")
    profile = load_profile("smoke", ['target.redis_url="redis://:${T2V_TEST_REDIS_PASSWORD}@127.0.0.1:6379/0"',
                                     "target.bundled_stack=false", 'target.server_url="http://127.0.0.1:1"',
                                     'target.tts_url="http://127.0.0.1:2"', 'target.llm_url="http://127.0.0.1:3"'])
    assert profile.target.redis_url.password == "s3cret-in-env"


def test_an_unset_environment_reference_names_the_key_and_the_variable(monkeypatch):
    monkeypatch.delenv("T2V_TEST_UNSET", raising=False)
    with pytest.raises(ProfileError, match=r"target\.redis_url: environment variable T2V_TEST_UNSET is not set"):
        load_profile("smoke", ['target.redis_url="redis://:${T2V_TEST_UNSET}@127.0.0.1:6379/0"'])


def test_a_malformed_url_is_named_without_echoing_what_may_be_its_password():
    with pytest.raises(ProfileError) as refused:
        load_profile("smoke", ['target.redis_url="rediss//:Hunter2SecretXyz@127.0.0.1:6380/0"'])
    assert "target.redis_url" in str(refused.value) and "Hunter2SecretXyz" not in str(refused.value)
