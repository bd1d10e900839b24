"""The TTS service's HTTP face: the Chatterbox TTS API subset of CONTRACT.md, spoken by eSpeak NG."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from stack.tts import speech

MODEL_ID = "espeak-ng"  # what really speaks; this service never claims to be Chatterbox
MAX_INPUT_CHARACTERS = 3000
MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
# The Chatterbox TTS API answers each route under aliases too, and its clients use them (the upstream
# server checks GET /v1/health before it starts); the first path of each is the one CONTRACT.md names.
HEALTH_PATHS = ("/health", "/v1/health", "/status")
SPEECH_PATHS = ("/v1/audio/speech", "/audio/speech", "/tts")
STARTED_AT = int(time.time())


class SpeechRequest(BaseModel):
    input: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_INPUT_CHARACTERS)]
    voice: str = "alloy"  # any name is accepted; every voice speaks eSpeak's US English
    response_format: Literal["wav", "mp3"] = "wav"
    speed: float = Field(1.0, ge=0.25, le=4.0)


@asynccontextmanager
async def lifespan(_app: FastAPI):
    await run_in_threadpool(speech.engine)  # load eSpeak before the first request, off the event loop
    yield


app = FastAPI(title="stack.tts", description="Chatterbox TTS API subset, spoken by eSpeak NG", lifespan=lifespan)


def _describe(error: dict) -> str:
    field = ".".join(part for part in error["loc"][1:] if isinstance(part, str)) or "body"
    if error["type"] == "json_invalid":
        return f"{field}: malformed JSON ({error['ctx']['error']})"
    if field == "body" and error["type"] == "model_attributes_type":
        return "body: expected a JSON object, sent with Content-Type: application/json"
    return f"{field}: {error['msg']}"


@app.exception_handler(RequestValidationError)
async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own handler echoes the rejected input, which turns a NaN speed into a 500.
    return JSONResponse({"detail": "; ".join(_describe(error) for error in exc.errors())}, status_code=422)


def routed(paths: tuple[str, ...], method: str):
    """Register one handler under every path of `paths`; only the first is in the OpenAPI schema."""

    def register(handler):
        for path in paths:
            app.add_api_route(path, handler, methods=[method], include_in_schema=path == paths[0])
        return handler

    return register


@routed(HEALTH_PATHS, "GET")
async def health() -> dict:
    return {
        "status": "healthy",
        "model_loaded": True,
        "device": "cpu",
        "engine": "espeak-ng",
        "engine_source": speech.engine().source,
    }


@app.get("/v1/models")
async def models() -> dict:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": STARTED_AT, "owned_by": "stack.tts"}],
    }


def _render(request: SpeechRequest) -> bytes:
    wav = speech.synthesize(request.input, request.speed)
    return speech.encode_mp3(wav) if request.response_format == "mp3" else wav


@routed(SPEECH_PATHS, "POST")
async def create_speech(request: SpeechRequest) -> Response:
    try:
        audio = await run_in_threadpool(_render, request)
    except speech.SpeechError as exc:
        return JSONResponse({"detail": f"speech engine failed: {exc}"}, status_code=503)
    return Response(audio, media_type=MEDIA_TYPES[request.response_format])
