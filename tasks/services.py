"""The services under test, and one verification check per service.

Each check answers with a row for the `services` table: ok or not, the version it exposes, what is
wrong and the command or setting that fixes it, so a user sees every problem at once. A check is
bounded as a whole by its `timeout_s` (every answer complete, a body trickling in included) and is
never retried by Prefect (a retry would double the bound). A check is a coroutine (`tasks.http.within`):
its bound and a stop request cancel a request in flight, connecting included, where a blocked thread
could be stopped by neither. At a stop request a check ends within tasks.http.STOP_CHECK_S with None: it
has learnt nothing about its service, so it gives no row (and no failed task with a traceback). Rows
carry URLs with their credentials masked; the real URL only connects. `check_*.fn` is the plain coroutine
function (for re-probing).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import redis
import redis.asyncio as aioredis
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, field_serializer

from profiles.redact import redact, redact_url
from profiles.settings import Endpoints, Profile
from stack import running_stack
from tasks import http
from tasks.interrupt import Interrupted


class Services(BaseModel):
    """Where the four services answer, for this run. Shown (JSON: Prefect parameters) with credentials masked."""

    model_config = ConfigDict(frozen=True)

    server: str
    tts: str
    llm: str
    redis: str
    llm_model: str

    @field_serializer("server", "tts", "llm", "redis", when_used="json")
    def _shown_without_credentials(self, url: str) -> str:
        return redact_url(url)

    def ports(self) -> dict[str, int]:
        """Port each service listens on (for finding its processes)."""
        defaults = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}
        ports = {}
        for name in ("server", "tts", "llm", "redis"):
            parsed = urlparse(getattr(self, name))
            ports[name] = parsed.port or defaults[parsed.scheme]
        return ports


@contextlib.contextmanager
def services_under_test(profile: Profile) -> Iterator[Services]:
    """The profile's services: the bundled stack started (and always stopped) here, or running ones."""
    target = profile.target
    if target.bundled_stack:
        with running_stack(max_concurrent_jobs=target.max_concurrent_jobs,
                           dependency_timeout_s=profile.faults.bundled_dependency_timeout_s) as stack:
            urls = stack.urls
            yield Services(server=urls.server, tts=urls.tts, llm=urls.llm, redis=urls.redis,
                           llm_model=target.llm_model)
        return
    yield Services(
        server=str(target.server_url).rstrip("/"),
        tts=str(target.tts_url).rstrip("/"),
        llm=str(target.llm_url).rstrip("/"),
        redis=str(target.redis_url),
        llm_model=target.llm_model,
    )


def _row(service: str, url: str, ok: bool, version: str | None = None, detail: str = "ok", fix: str = "") -> dict:
    return redact({"service": service, "url": url, "ok": ok, "version": version, "detail": detail, "fix": fix})


def _unreachable(service: str, url: str, exc: Exception, fix: str) -> dict:
    return _row(service, url, False, detail=f"cannot reach {url} ({type(exc).__name__}: {exc})", fix=fix)


def _late(service: str, url: str, exc: Exception, timeout_s: float) -> dict:
    return _row(service, url, False, detail=f"no complete answer within {timeout_s:g} s ({exc})",
                fix=f"check the {service}'s log (stuck or overloaded?), or raise timing.verify_timeout_s")


class Unexpected(Exception):
    """The service answered, but not what its API says it answers."""


class Late(Exception):
    """The check's bound passed before every answer it needs was complete."""


async def _get(client: httpx.AsyncClient, path: str, ends: float, named: str | None = None) -> tuple[int, bytes]:
    """GET `path`, its whole answer by the monotonic instant `ends`; `named` is the request in words when
    the path itself would mislead (a made-up job id reads like one of the run's jobs)."""
    named = named or f"GET {path}"
    try:
        return await http.whole_answer_async(client, "GET", path, ends - time.monotonic())
    except (httpx.TimeoutException, http.LateAnswer):
        raise Late(f"{named} was not answered in time") from None
    except http.BadResponse as exc:
        raise Unexpected(str(exc).replace(f"GET {path}", named, 1)) from None


async def _get_json(client: httpx.AsyncClient, path: str, ends: float) -> tuple[int, dict]:
    status_code, raw = await _get(client, path, ends)
    try:
        body = json.loads(raw)
    except ValueError:
        raise Unexpected(f"GET {path} answered HTTP {status_code} with a body that is not JSON: "
                         f"{raw[:80]!r}") from None
    if not isinstance(body, dict):
        raise Unexpected(f"GET {path} answered HTTP {status_code} with {str(body)[:80]}, not a JSON object")
    return status_code, body


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


async def _redis_version(url: str, timeout_s: float) -> str:
    async with aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s) as client:
        await client.ping()
        return str((await client.info("server")).get("redis_version", ""))


@task(name="check-redis", cache_policy=NO_CACHE)
async def check_redis(url: str, min_version: str, timeout_s: float) -> dict | None:
    try:
        # redis-py bounds each socket operation, not the sequence of them: `within` bounds the whole check
        version = await http.within(_redis_version(url, timeout_s), timeout_s,
                                    "PING and INFO were not answered in time")
    except Interrupted:
        return None
    except http.LateAnswer as exc:
        return _late("redis", url, exc, timeout_s)
    except redis.RedisError as exc:
        return _unreachable("redis", url, exc, "start Redis (e.g. `redis-server --port 6379`) or fix target.redis_url")
    if not version or _version_tuple(version) < _version_tuple(min_version):
        return _row("redis", url, False, version, f"version {version or 'unknown'} is older than {min_version}",
                    f"upgrade Redis to {min_version} or newer")
    return _row("redis", url, True, version)


@task(name="check-llm", cache_policy=NO_CACHE)
async def check_llm(url: str, model: str, endpoints: Endpoints, timeout_s: float, api: str) -> dict | None:
    """The LLM lists `model`: through Ollama's own API (`api` "ollama": version and tags) or, for a server that
    speaks only the OpenAI-style API (vLLM, llama.cpp's server, LiteLLM, Ollama's /v1), its model list."""
    ends = time.monotonic() + timeout_s
    serve = "an OpenAI-compatible LLM server" if api == "openai" else "Ollama (`ollama serve`)"
    try:
        async with http.async_client(base_url=url) as client:
            paths = [endpoints.llm_models] if api == "openai" else [endpoints.llm_version, endpoints.llm_tags]
            answers = [(path, *await _get_json(client, path, ends)) for path in paths]
    except Interrupted:
        return None
    except Late as exc:
        return _late("llm", url, exc, timeout_s)
    except httpx.HTTPError as exc:
        return _unreachable("llm", url, exc, f"start {serve} or fix target.llm_url")
    except Unexpected as exc:
        return _row("llm", url, False, detail=str(exc), fix=_llm_api_fix(api, endpoints))
    for path, status_code, body in answers:
        if status_code != 200:  # a route the API does not have: the wrong API or URL, not a missing model
            error = body.get("error") or body.get("detail")
            said = f": {error.get('message') if isinstance(error, dict) else error}" if error else ""
            return _row("llm", url, False, detail=f"GET {path} answered {status_code}{said}",
                        fix=_llm_api_fix(api, endpoints))
    listing = answers[-1][2]
    if api == "openai":
        return _openai_models_row(url, model, endpoints, listing)
    version = answers[0][2].get("version")
    models = listing.get("models") if isinstance(listing.get("models"), list) else []
    listed = [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]
    if not {model, f"{model}:latest"} & set(listed):
        return _row("llm", url, False, version, f"model {model} not listed (has: {', '.join(listed) or 'none'})",
                    f"run: ollama pull {model}")
    return _row("llm", url, True, f"{version} ({model})")


def _llm_api_fix(api: str, endpoints: Endpoints) -> str:
    if api == "openai":
        return (f"check that target.llm_url + target.endpoints.llm_models ({endpoints.llm_models}) is an OpenAI-style "
                'model list ({"data": [{"id": ...}]}); a base URL ending in /v1 takes llm_models = "/models"')
    return 'check that target.llm_url points at an Ollama API, or set target.llm_api = "openai" for an LLM ' \
           "that speaks only the OpenAI-style API"


def _openai_models_row(url: str, model: str, endpoints: Endpoints, listing: dict) -> dict:
    """The check's row from an OpenAI-style model list `{"data": [{"id": "qwen3:4b", ...}]}`."""
    path = endpoints.llm_models
    if not isinstance(listing.get("data"), list):
        return _row("llm", url, False, detail=f"GET {path} answered without a model list ('data'): "
                    f"{json.dumps(listing)[:80]}", fix=_llm_api_fix("openai", endpoints))
    listed = [str(entry["id"]) for entry in listing["data"] if isinstance(entry, dict) and entry.get("id")]
    if not {model, f"{model}:latest"} & set(listed):
        return _row("llm", url, False, None,
                    f"model {model} not listed by GET {path} (has: {', '.join(listed) or 'none'})",
                    f"serve {model} on the LLM server (Ollama: `ollama pull {model}`; vLLM: --served-model-name "
                    f"{model}) or set target.llm_model to a listed id")
    return _row("llm", url, True, f"OpenAI-style API ({model})")


@task(name="check-tts", cache_policy=NO_CACHE)
async def check_tts(url: str, endpoints: Endpoints, timeout_s: float) -> dict | None:
    ends = time.monotonic() + timeout_s
    try:
        async with http.async_client(base_url=url) as client:
            status_code, health = await _get_json(client, endpoints.tts_health, ends)
    except Interrupted:
        return None
    except Late as exc:
        return _late("tts", url, exc, timeout_s)
    except httpx.HTTPError as exc:
        return _unreachable("tts", url, exc, "start the TTS service (Chatterbox TTS API) or fix target.tts_url")
    except Unexpected as exc:
        return _row("tts", url, False, detail=str(exc), fix="check that target.tts_url points at the TTS service")
    version = str(health.get("engine") or health.get("device") or "") or None
    if status_code != 200 or health.get("status") != "healthy":
        return _row("tts", url, False, version,
                    f"health answered {status_code} with status {health.get('status')!r}",
                    "wait for the TTS model to finish loading, or check the TTS service's log")
    if health.get("model_loaded") is False:  # Chatterbox says so; a server may refuse to start until it is true
        return _row("tts", url, False, version, f"GET {endpoints.tts_health} says healthy but model_loaded is false",
                    "wait for the TTS model to finish loading, or check the TTS service's log")
    return _row("tts", url, True, version)


@task(name="check-server", cache_policy=NO_CACHE)
async def check_server(url: str, endpoints: Endpoints, timeout_s: float) -> dict | None:
    ends = time.monotonic() + timeout_s
    unknown_job = f"GET {endpoints.status} for an unknown job id"  # not the made-up id: it reads like a job's
    try:
        async with http.async_client(base_url=url) as client:
            status_code, health = await _get_json(client, endpoints.health, ends)
            unknown = (await _get(client, endpoints.status.format(job_id=uuid.uuid4()), ends, unknown_job))[0]
    except Interrupted:
        return None
    except Late as exc:
        return _late("server", url, exc, timeout_s)
    except httpx.HTTPError as exc:
        return _unreachable("server", url, exc, "start the text-to-video server or fix target.server_url")
    except Unexpected as exc:
        return _row("server", url, False, detail=str(exc),
                    fix="check that target.server_url points at the text-to-video server")
    version = str(health.get("service") or "") or None
    if status_code != 200:
        return _row("server", url, False, version, f"GET {endpoints.health} answered {status_code}",
                    "check the server's log and target.endpoints.health")
    if health.get("status") != "healthy":
        dependencies = health.get("dependencies") if isinstance(health.get("dependencies"), dict) else {}
        down = [f"{name}: {state}" for name, state in dependencies.items() if state != "up"]
        return _row("server", url, False, version,
                    f"reports {health.get('status')!r}" + (f" ({', '.join(down)})" if down else ""),
                    "bring up what the server reports down, then run again")
    if unknown != 404:
        return _row("server", url, False, version,
                    f"{unknown_job} answered {unknown}, expected 404",
                    "check target.endpoints.status against the server's API")
    return _row("server", url, True, version)


def service_checks(profile: Profile, services: Services) -> dict[str, tuple[Task, tuple]]:
    """The four verification checks with their arguments, by service: verification submits them as tasks,
    a re-probe after failures awaits them as plain coroutines (`check.fn(*args)`)."""
    timeout = profile.timing.verify_timeout_s
    endpoints = profile.target.endpoints
    return {
        "redis": (check_redis, (services.redis, profile.target.min_redis_version, timeout)),
        "llm": (check_llm, (services.llm, services.llm_model, endpoints, timeout, profile.target.llm_api)),
        "tts": (check_tts, (services.tts, endpoints, timeout)),
        "server": (check_server, (services.server, endpoints, timeout)),
    }


def broken_check_row(service: str, url: str, exc: BaseException) -> dict:
    """The row of a check that itself failed (a defect of the campaign, not of the service): it must not
    hide the other services."""
    return _row(service, url, False, detail=f"the check itself failed: {type(exc).__name__}: {exc}",
                fix="a defect of the campaign: please report it with this line")
