"""HTTP calls to the two model services; every failure becomes a DependencyError naming the service."""

from __future__ import annotations

import asyncio
import re

import httpx

CONNECT_TIMEOUT_S = 5.0
RETRY_DELAY_S = 0.5
TTS_MAX_CHARS = 3000  # the TTS contract: longer input is a 422


class DependencyError(RuntimeError):
    """llm or tts unreachable, too slow or answering an error; the message names it and its URL."""


class CannotConnect(DependencyError):
    """No connection could be made at all (refused, unroutable, connect timeout)."""


async def _post_once(client: httpx.AsyncClient, service: str, base_url: str, path: str, payload: dict,
                     timeout: float) -> httpx.Response:
    url = base_url + path
    try:
        # httpx bounds each read; the outer bound also covers a reply that trickles in slowly.
        async with asyncio.timeout(timeout):
            response = await client.post(url, json=payload, timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S))
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise CannotConnect(f"{service}: cannot reach {base_url} ({type(exc).__name__})") from exc
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise DependencyError(f"{service}: no answer from {url} within {timeout:g} s ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise DependencyError(f"{service}: request to {url} failed ({type(exc).__name__}: {exc})") from exc
    if not response.is_success:
        body = " ".join(response.text.split())[:200]
        raise DependencyError(f"{service}: {url} answered {response.status_code}: {body}")
    return response


async def _post(client: httpx.AsyncClient, service: str, base_url: str, path: str, payload: dict,
                timeout: float) -> httpx.Response:
    try:
        return await _post_once(client, service, base_url, path, payload, timeout)
    except CannotConnect:
        # One retry: a service that is restarting refuses a connection or two.
        await asyncio.sleep(RETRY_DELAY_S)
        return await _post_once(client, service, base_url, path, payload, timeout)


async def chat(client: httpx.AsyncClient, llm_url: str, model: str, messages: list[dict], timeout: float) -> str:
    """The assistant's reply text from an Ollama-style /api/chat."""
    payload = {"model": model, "messages": messages, "stream": False, "options": {"temperature": 0.2}}
    response = await _post(client, "llm", llm_url, "/api/chat", payload, timeout)
    try:
        content = response.json()["message"]["content"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DependencyError(f"llm: {llm_url}/api/chat answered without message.content: "
                              f"{response.text[:200]}") from exc
    if not isinstance(content, str):
        raise DependencyError(f"llm: {llm_url}/api/chat answered a non-text message.content")
    return content


def split_for_tts(text: str, limit: int = TTS_MAX_CHARS) -> list[str]:
    """Pieces of at most `limit` characters, cut at sentence ends (at spaces for giant sentences)."""
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?;:])\s+", text.strip()):
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        if pieces and len(pieces[-1]) + 1 + len(sentence) <= limit:
            pieces[-1] = f"{pieces[-1]} {sentence}"
        elif sentence:
            pieces.append(sentence)
    return pieces


async def speech(client: httpx.AsyncClient, tts_url: str, text: str, timeout: float) -> bytes:
    """WAV bytes for `text` (at most TTS_MAX_CHARS) from a Chatterbox-style /v1/audio/speech."""
    payload = {"input": text, "voice": "alloy", "response_format": "wav", "speed": 1.0}
    response = await _post(client, "tts", tts_url, "/v1/audio/speech", payload, timeout)
    if not response.content.startswith(b"RIFF"):
        kind = response.headers.get("content-type", "no content type")
        raise DependencyError(f"tts: {tts_url}/v1/audio/speech answered {kind}, not WAV audio")
    return response.content


async def answers(client: httpx.AsyncClient, url: str, timeout: float, healthy=None) -> bool:
    """Whether GET `url` answers 2xx within `timeout` (and `healthy(JSON body)` holds, when given)."""
    try:
        async with asyncio.timeout(timeout):
            response = await client.get(url, timeout=timeout)
        return response.is_success and (healthy is None or bool(healthy(response.json())))
    except (httpx.HTTPError, TimeoutError, ValueError):
        return False
