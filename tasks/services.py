"""The services under test, and one verification task per service.

Each check answers with a row for the `services` table: ok or not, the version it exposes, what is
wrong and the command or setting that fixes it, so a user sees every problem at once.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from urllib.parse import urlparse

import httpx
import redis
from prefect import task
from prefect.cache_policies import NO_CACHE

from profiles.settings import Endpoints, Profile
from stack import running_stack
from tasks import http


@dataclass(frozen=True)
class Services:
    """Where the four services answer, for this run."""

    server: str
    tts: str
    llm: str
    redis: str
    llm_model: str

    def ports(self) -> dict[str, int]:
        """Port each service listens on (for finding its processes)."""
        defaults = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}
        ports = {}
        for name in ("server", "tts", "llm", "redis"):
            parsed = urlparse(getattr(self, name))
            ports[name] = parsed.port or defaults[parsed.scheme]
        return ports

    def as_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def services_under_test(profile: Profile) -> Iterator[Services]:
    """The profile's services: the bundled stack started (and always stopped) here, or running ones."""
    target = profile.target
    if target.bundled_stack:
        with running_stack(max_concurrent_jobs=target.max_concurrent_jobs) as stack:
            urls = stack.urls
            yield Services(urls.server, urls.tts, urls.llm, urls.redis, target.llm_model)
        return
    yield Services(
        server=str(target.server_url).rstrip("/"),
        tts=str(target.tts_url).rstrip("/"),
        llm=str(target.llm_url).rstrip("/"),
        redis=str(target.redis_url),
        llm_model=target.llm_model,
    )


def _row(service: str, url: str, ok: bool, version: str | None = None, detail: str = "ok", fix: str = "") -> dict:
    return {"service": service, "url": url, "ok": ok, "version": version, "detail": detail, "fix": fix}


def _unreachable(service: str, url: str, exc: Exception, fix: str) -> dict:
    return _row(service, url, False, detail=f"cannot reach {url} ({type(exc).__name__}: {exc})", fix=fix)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


@task(name="check-redis", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def check_redis(url: str, min_version: str, timeout_s: float) -> dict:
    try:
        with redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s) as client:
            client.ping()
            version = str(client.info("server").get("redis_version", ""))
    except redis.RedisError as exc:
        return _unreachable("redis", url, exc, "start Redis (e.g. `redis-server --port 6379`) or fix target.redis_url")
    if _version_tuple(version) < _version_tuple(min_version):
        return _row("redis", url, False, version, f"version {version} is older than {min_version}",
                    f"upgrade Redis to {min_version} or newer")
    return _row("redis", url, True, version)


@task(name="check-llm", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def check_llm(url: str, model: str, endpoints: Endpoints, timeout_s: float) -> dict:
    fix = "start Ollama (`ollama serve`) or fix target.llm_url"
    try:
        with http.client(base_url=url, timeout=timeout_s) as client:
            version = client.get(endpoints.llm_version).json().get("version")
            response = client.get(endpoints.llm_tags)
            response.raise_for_status()
            listed = [m.get("name") or m.get("model") for m in response.json().get("models", [])]
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return _unreachable("llm", url, exc, fix)
    if not {model, f"{model}:latest"} & set(listed):
        return _row("llm", url, False, version, f"model {model} not listed (has: {', '.join(listed) or 'none'})",
                    f"run: ollama pull {model}")
    return _row("llm", url, True, f"{version} ({model})")


@task(name="check-tts", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def check_tts(url: str, endpoints: Endpoints, timeout_s: float) -> dict:
    try:
        with http.client(base_url=url, timeout=timeout_s) as client:
            response = client.get(endpoints.tts_health)
        health = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return _unreachable("tts", url, exc, "start the TTS service (Chatterbox TTS API) or fix target.tts_url")
    status = health.get("status") if isinstance(health, dict) else None
    version = str(health.get("engine") or health.get("device") or "") if isinstance(health, dict) else None
    if response.status_code != 200 or status != "healthy":
        return _row("tts", url, False, version, f"health answered {response.status_code} with status {status!r}",
                    "wait for the TTS model to finish loading, or check the TTS service's log")
    return _row("tts", url, True, version)


@task(name="check-server", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def check_server(url: str, endpoints: Endpoints, timeout_s: float) -> dict:
    fix = "start the text-to-video server or fix target.server_url"
    try:
        with http.client(base_url=url, timeout=timeout_s) as client:
            health = client.get(endpoints.health)
            unknown = client.get(endpoints.status.format(job_id=uuid.uuid4()))
            body = health.json()
    except (httpx.HTTPError, ValueError) as exc:
        return _unreachable("server", url, exc, fix)
    version = body.get("service") if isinstance(body, dict) else None
    if health.status_code != 200:
        return _row("server", url, False, version, f"GET {endpoints.health} answered {health.status_code}",
                    "check the server's log and target.endpoints.health")
    if unknown.status_code != 404:
        return _row("server", url, False, version,
                    f"GET {endpoints.status} for an unknown job answered {unknown.status_code}, expected 404",
                    "check target.endpoints.status against the server's API")
    state = body.get("status") if isinstance(body, dict) else None
    return _row("server", url, True, version, "ok" if state in (None, "healthy") else f"ok (reports {state})")
