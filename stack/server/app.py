"""The HTTP API of the server section of CONTRACT.md."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from redis.exceptions import RedisError

from stack.server.extract import SUPPORTED_EXTENSIONS, ExtractError, extract_text
from stack.server.health import HealthMonitor
from stack.server.jobs import JobStore, Outcome, connect
from stack.server.settings import UPLOADING_SUFFIX, Settings
from stack.server.upload import UploadRejected, receive_file
from stack.server.worker import Workers

CANCEL_REASON = "cancelled by user"
BACKGROUND_STOP_TIMEOUT_S = 5.0
FINISHED = ("completed", "completed_with_errors")
# Validation messages name the rule broken, never the input; the cap guards against a rule quoting one.
MAX_VALIDATION_DETAIL_CHARS = 300

log = logging.getLogger("stack.server")

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": f"one of {', '.join(SUPPORTED_EXTENSIONS)}"}},
        }}},
    }
}


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s died", task.get_name(), exc_info=task.exception())


def validation_detail(errors: Sequence[dict]) -> str:
    """FastAPI's list of validation errors as the contract's one string: "where: what; where: what"."""
    parts = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = ".".join(loc[1:]) or ".".join(loc) or "request"  # drop "path"/"query" unless it is all there is
        parts.append(f"{where}: {error.get('msg', 'invalid value')}")
    detail = "; ".join(parts) or "invalid request"
    if len(detail) > MAX_VALIDATION_DETAIL_CHARS:
        detail = detail[: MAX_VALIDATION_DETAIL_CHARS - 1] + "…"
    return detail


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Before serving: nothing is in flight yet, so any scratch file is a leftover.
        settings.prepare_dirs()
        redis_client = connect(settings.redis_url)
        http = httpx.AsyncClient()
        store = JobStore(redis_client)
        health = HealthMonitor(http, redis_client, settings.tts_url, settings.llm_url)
        await health.refresh()
        app.state.store, app.state.health = store, health
        background = [
            asyncio.create_task(health.run(), name="health"),
            asyncio.create_task(Workers(settings, store, http).run(), name="workers"),
        ]
        for task in background:
            task.add_done_callback(_log_crash)
        log.info("text-to-video server on %s:%d, %d worker(s), data in %s",
                 settings.host, settings.port, settings.max_concurrent_jobs, settings.data_dir)
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.wait(background, timeout=BACKGROUND_STOP_TIMEOUT_S)
            await http.aclose()
            await redis_client.aclose()

    app = FastAPI(title="text-to-video", lifespan=lifespan)

    @app.exception_handler(UploadRejected)
    async def upload_rejected(request: Request, exc: UploadRejected) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)

    @app.exception_handler(RedisError)
    async def redis_unavailable(request: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse({"detail": f"redis unavailable: {exc}"}, status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    def store(request: Request) -> JobStore:
        return request.app.state.store

    async def existing_job(request: Request, job_id: str) -> dict:
        job = await store(request).get(job_id)
        if job is None:
            raise HTTPException(404, f"job {job_id} not found")
        return job

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        return JSONResponse(request.app.state.health.report())

    @app.post("/api/v1/video/generate", status_code=202, openapi_extra=_UPLOAD_DOC)
    async def generate(request: Request) -> JSONResponse:
        job_id = str(uuid.uuid4())
        incoming = settings.upload_path(job_id, UPLOADING_SUFFIX)
        received = await receive_file(request, incoming, settings.max_upload_mb)
        upload, text_file = settings.upload_path(job_id, received.extension), settings.text_path(job_id)
        try:
            data = await asyncio.to_thread(incoming.read_bytes)
            text = await asyncio.to_thread(extract_text, data, received.filename)
            incoming.replace(upload)
            await asyncio.to_thread(text_file.write_text, text, encoding="utf-8")
            job = await store(request).create(job_id)
        except BaseException as exc:
            for path in (incoming, upload, text_file):
                path.unlink(missing_ok=True)
            if isinstance(exc, ExtractError):
                raise UploadRejected(400, str(exc)) from exc
            raise
        log.info("job %s: queued %s (%d bytes, %d chars of text)", job_id, received.filename, received.size, len(text))
        return JSONResponse(job, status_code=202)

    @app.get("/api/v1/video/status/{job_id}")
    async def status(request: Request, job_id: uuid.UUID) -> JSONResponse:
        return JSONResponse(await existing_job(request, str(job_id)))

    @app.get("/api/v1/video/download/{job_id}")
    async def download(request: Request, job_id: uuid.UUID, download: bool = False) -> FileResponse:
        job = await existing_job(request, str(job_id))
        if job["status"] in ("failed", "cancelled"):
            raise HTTPException(404, f"job {job_id} is {job['status']}: it has no video")
        if job["status"] not in FINISHED:
            raise HTTPException(400, f"job {job_id} is not finished yet (status {job['status']})")
        path = settings.video_path(str(job_id))
        if not path.is_file():
            raise HTTPException(404, f"the video of job {job_id} is missing from the server")
        return FileResponse(path, media_type="video/mp4", filename=f"{job_id}.mp4" if download else None)

    @app.get("/api/v1/video/jobs")
    async def jobs(request: Request, limit: int = Query(20, ge=1, le=100)) -> JSONResponse:
        found, total = await store(request).recent(limit)
        return JSONResponse({"jobs": found, "total_count": total})

    @app.get("/api/v1/video/active")
    async def active(request: Request, limit: int = Query(20, ge=1, le=100)) -> JSONResponse:
        found, total = await store(request).active(limit)
        return JSONResponse({"active_jobs": found, "total_count": total, "limit": limit})

    @app.post("/api/v1/video/cancel/{job_id}")
    async def cancel(request: Request, job_id: str) -> JSONResponse:
        try:
            job_id = str(uuid.UUID(job_id))
        except ValueError:
            raise HTTPException(400, f"job_id '{job_id}' is not a UUID") from None
        outcome, current = await store(request).finish(job_id, "cancelled", CANCEL_REASON, [CANCEL_REASON])
        if outcome is Outcome.MISSING:
            raise HTTPException(404, f"job {job_id} not found")
        if outcome is Outcome.TERMINAL:
            raise HTTPException(409, f"job {job_id} is already {current}")
        await store(request).unqueue(job_id)
        log.info("job %s: cancelled by user", job_id)
        return JSONResponse({"message": f"job {job_id} cancelled", "job_id": job_id, "reason": CANCEL_REASON})

    return app
