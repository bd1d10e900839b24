"""The Ollama API subset the server talks to, and the OpenAI-style API Ollama also serves, answered
by the extractive planner.

The model is named for what it is, `extractive-planner`; asking for any other name is the
404 a real Ollama gives for a model that is not pulled. A server that reaches its LLM only
through the OpenAI API (`OPENAI_BASE_URL` ending in /v1) finds the model at GET /v1/models.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from stack.llm import MODEL_NAME, planner
from stack.llm.prompt import document_in

MODEL_TAG = f"{MODEL_NAME}:latest"
VERSION = "0.1.0"
OWNER = "stack.llm"


class BadRequest(Exception):
    """A request Ollama would refuse: answered as {"error": message} with its status code."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def create_app() -> FastAPI:
    app = FastAPI(title="extractive-planner (Ollama API subset)", docs_url=None, redoc_url=None, openapi_url=None)
    started = _iso_now()
    started_s = int(time.time())
    # The "weights" are the planner's rules, so its source is what the digest identifies.
    digest = hashlib.sha256(Path(planner.__file__).read_bytes()).hexdigest()

    @app.exception_handler(BadRequest)
    async def ollama_error(request: Request, error: BadRequest) -> JSONResponse:
        if request.url.path.startswith("/v1/"):  # OpenAI clients read error.message
            body = {"error": {"message": error.message, "type": "invalid_request_error", "param": None, "code": None}}
        else:
            body = {"error": error.message}
        return JSONResponse(body, status_code=error.status_code)

    @app.get("/api/version")
    async def version() -> dict:
        return {"version": VERSION}

    @app.get("/api/tags")
    async def tags() -> dict:
        return {
            "models": [
                {
                    "name": MODEL_TAG,
                    "model": MODEL_TAG,
                    "modified_at": started,
                    "size": 0,
                    "digest": digest,
                    "details": {
                        "format": "rules",
                        "family": "extractive",
                        "families": ["extractive"],
                        "parameter_size": "0",
                        "quantization_level": "none",
                    },
                }
            ]
        }

    def openai_model() -> dict:
        # Named as Ollama's OpenAI endpoint names a pulled model: with its tag.
        return {"id": MODEL_TAG, "object": "model", "created": started_s, "owned_by": OWNER}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [openai_model()]}

    @app.get("/v1/models/{model:path}")
    async def model(model: str) -> dict:
        if model not in (MODEL_NAME, MODEL_TAG):
            raise BadRequest(f"model '{model}' not found", status_code=404)
        return openai_model()

    @app.post("/api/chat")
    async def chat(request: Request) -> Response:
        body = await _json_object(request)
        model = _model(body)
        messages = _messages(body)
        stream = _stream(body)
        _options(body)
        reply = await _answer(_last_user_message(messages), "array" if body.get("format") else None)
        prompt_words = sum(len(message["content"].split()) for message in messages)

        def piece(content: str) -> dict:
            return {"model": model, "created_at": _iso_now(), "message": {"role": "assistant", "content": content}}

        return _respond(piece, reply, prompt_words, stream)

    @app.post("/api/generate")
    async def generate(request: Request) -> Response:
        body = await _json_object(request)
        model = _model(body)
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string")
        stream = _stream(body)
        _options(body)
        reply = await _answer(prompt, "array" if body.get("format") else None)

        def piece(content: str) -> dict:
            return {"model": model, "created_at": _iso_now(), "response": content}

        return _respond(piece, reply, len(prompt.split()), stream)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await _json_object(request)
        model = _model(body)
        messages = _messages(body, text_parts=True)
        stream = _stream(body, default=False)
        response_format = body.get("response_format")
        wants_json = isinstance(response_format, dict) and response_format.get("type") in (
            "json_object",
            "json_schema",
        )
        reply = await _answer(_last_user_message(messages), "object" if wants_json else None)
        prompt_words = sum(len(message["content"].split()) for message in messages)
        completion_words = len(reply.text.split())
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": f"fp_{digest[:8]}",
        }
        usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": completion_words,
            "total_tokens": prompt_words + completion_words,
        }
        if stream:  # server-sent events: the whole content in one chunk, then the finish, then [DONE]
            chunk = head | {"object": "chat.completion.chunk"}
            events = [
                chunk | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": reply.text},
                                      "finish_reason": None}]},
                chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
            lines = [f"data: {json.dumps(event, ensure_ascii=False)}\n\n" for event in events]
            return Response("".join(lines) + "data: [DONE]\n\n", media_type="text/event-stream")
        return JSONResponse(head | {
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"}
            ],
            "usage": usage,
        })

    return app


@dataclass(frozen=True)
class _Reply:
    """The planner's answer and how long it took, in nanoseconds as Ollama reports durations."""

    text: str
    duration_ns: int


async def _answer(prompt: str, json_shape: str | None) -> _Reply:
    """Plan the prompt's document: a chat-style reply, or bare JSON if JSON was asked for.

    `json_shape` "array" gives the scenes array (Ollama's `format`); "object" gives {"scenes": [...]},
    since OpenAI's JSON modes always answer an object.
    """
    started = time.perf_counter_ns()
    # Planning a large document is CPU work; keep the event loop free for /api/version probes.
    scenes = await run_in_threadpool(planner.plan_scenes, document_in(prompt))
    if json_shape is None:
        text = planner.render_reply(scenes)
    else:
        text = json.dumps(scenes if json_shape == "array" else {"scenes": scenes}, ensure_ascii=False)
    return _Reply(text, time.perf_counter_ns() - started)


def _respond(piece: Callable[[str], dict], reply: _Reply, prompt_words: int, stream: bool) -> Response:
    """Ollama's answer: one JSON object, or NDJSON with the content chunk then the stats."""
    stats = {
        "done": True,
        "done_reason": "stop",
        "total_duration": reply.duration_ns,
        "load_duration": 0,
        "prompt_eval_count": prompt_words,
        "eval_count": len(reply.text.split()),
        "eval_duration": reply.duration_ns,
    }
    if not stream:
        return JSONResponse(piece(reply.text) | stats)
    chunks = [piece(reply.text) | {"done": False}, piece("") | stats]
    ndjson = "".join(json.dumps(chunk, ensure_ascii=False) + "\n" for chunk in chunks)
    return Response(ndjson, media_type="application/x-ndjson")


async def _json_object(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("missing request body")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, absurd nesting
        raise BadRequest(f"invalid JSON body: {error}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("model is required")
    if model not in (MODEL_NAME, MODEL_TAG):
        raise BadRequest(f"model '{model}' not found", status_code=404)
    return model


def _messages(body: dict, text_parts: bool = False) -> list[dict]:
    """The {role, content} messages; with `text_parts` (OpenAI) content may also be a list of
    {"type": "text", "text": ...} parts, joined here into one string."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("messages must be a list of {role, content} objects")
    checked = []
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if text_parts and isinstance(content, list):
            content = _joined_text_parts(content, index)
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not isinstance(content, str):
            raise BadRequest(f"messages[{index}] must be an object with string role and content")
        checked.append({"role": message["role"], "content": content})
    return checked


def _joined_text_parts(parts: list, index: int) -> str:
    texts = []
    for part in parts:
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise BadRequest(f"messages[{index}].content: only text parts are understood here")
        texts.append(part["text"])
    return "\n".join(texts)


def _last_user_message(messages: list[dict]) -> str:
    return next((message["content"] for message in reversed(messages) if message["role"] == "user"), "")


def _stream(body: dict, default: bool = True) -> bool:
    """The `stream` flag; Ollama streams unless told not to, OpenAI endpoints do not."""
    stream = body.get("stream")
    if stream is None:
        return default
    if not isinstance(stream, bool):
        raise BadRequest("stream must be true or false")
    return stream


def _options(body: dict) -> None:
    """Options (temperature, num_ctx...) change nothing in a deterministic planner, but must be an object."""
    if not isinstance(body.get("options", {}), dict):
        raise BadRequest("options must be an object")


def _iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
