"""The job pipeline (script → audio → visual → compose) and the workers that run it off the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis.exceptions import RedisError

from stack.server import clients
from stack.server.clients import DependencyError
from stack.server.compose import ComposeError, compose_video, join_wavs
from stack.server.jobs import JobStore, Outcome, utc_now
from stack.server.script import Scene, ScriptError, chat_messages, parse_script
from stack.server.settings import Settings
from stack.server.slides import save_slide

QUEUE_WAIT_S = 1.0
CANCEL_POLL_S = 0.3
REDIS_RETRY_S = 1.0
# Writing an outcome Redis could not take: first retry after the shortest delay, doubling up to the longest.
SETTLE_RETRY_MIN_S = 0.5
SETTLE_RETRY_MAX_S = 5.0
SHUTDOWN_WRITE_TIMEOUT_S = 2.0
RESTART_MESSAGE = "interrupted: the server restarted while this job was processing"
STOP_MESSAGE = "interrupted: the server stopped while this job was processing"
LOST_MESSAGE = "interrupted: redis was unavailable and the server lost track of this job"

log = logging.getLogger("stack.server.worker")


class JobCancelled(Exception):
    """The job turned terminal under the worker (cancelled): stop without writing anything."""


@dataclass
class Finish:
    """A terminal write (the arguments of JobStore.finish), and the video to delete should the job
    have turned terminal otherwise (cancelled) before it is written."""

    status: str
    message: str
    errors: list[str]
    result: dict | None = None
    fields: dict = field(default_factory=dict)
    video: Path | None = None


class Outcomes:
    """Every job's terminal write, kept until Redis has taken it.

    A job whose outcome could not be written (Redis restarting) would otherwise stay "processing"
    until the server restarts. The outcome is kept and written in the background once Redis answers
    again (retries back off from SETTLE_RETRY_MIN_S to SETTLE_RETRY_MAX_S, and go on until written:
    dropping it would lose the job's result). After any Redis trouble the jobs no worker holds (a
    claim or a queue pop lost in the outage) are settled as a restart settles them.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.unwritten: dict[str, Finish] = {}
        self.running: set[str] = set()
        self._trouble = asyncio.Event()

    def held(self, job_id: str) -> bool:
        return job_id in self.running or job_id in self.unwritten

    def redis_failed(self) -> None:
        """Something met a Redis error: look for unwritten outcomes and lost jobs once it answers."""
        self._trouble.set()

    async def record(self, job_id: str, finish: Finish) -> Outcome | None:
        """Write the outcome now; None when Redis is down and it is kept for the background."""
        try:
            return await self._write(job_id, finish)
        except RedisError as exc:
            log.warning("job %s: %s, not recorded yet (redis: %s); retrying in the background",
                        job_id, finish.status, exc)
            self.unwritten[job_id] = finish
            self.redis_failed()
            return None

    async def _write(self, job_id: str, finish: Finish) -> Outcome:
        outcome, _ = await self.store.finish(job_id, finish.status, finish.message, finish.errors, finish.result,
                                             **finish.fields)
        if outcome is not Outcome.UPDATED and finish.video is not None:  # cancelled while it waited
            finish.video.unlink(missing_ok=True)
        return outcome

    async def run(self) -> None:
        delay = SETTLE_RETRY_MIN_S
        while True:
            await self._trouble.wait()
            self._trouble.clear()  # before the work: trouble met during it calls for another round
            try:
                for job_id, finish in list(self.unwritten.items()):
                    outcome = await self._write(job_id, finish)
                    del self.unwritten[job_id]
                    log.info("job %s: %s recorded once redis answered again (%s)", job_id, finish.status,
                             outcome.name.lower())
                failed, requeued = await self.store.recover(LOST_MESSAGE, self.held)
                if failed or requeued:
                    log.info("after redis trouble: %d lost job(s) failed, %d re-queued", failed, requeued)
                delay = SETTLE_RETRY_MIN_S
            except RedisError as exc:
                log.warning("outcomes wait for redis (next try in %.1f s): %s", delay, exc)
                self._trouble.set()
                await asyncio.sleep(delay)
                delay = min(2 * delay, SETTLE_RETRY_MAX_S)


@dataclass
class Tally:
    """Per-scene tasks (one audio and one visual per scene) for the job's result."""

    scenes: int = 0
    succeeded: int = 0
    failed: int = 0


class Pipeline:
    """One job from its extracted text to its MP4, reporting phase and progress along the way."""

    def __init__(self, settings: Settings, store: JobStore, http: httpx.AsyncClient, outcomes: Outcomes,
                 job_id: str) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.outcomes = outcomes
        self.job_id = job_id
        self.tally = Tally()
        self.progress_unrecorded = False  # Redis refused the last progress update (logged once)
        self.work = settings.work_dir(job_id)

    async def _advance(self, phase: str, progress: int, message: str) -> None:
        try:
            outcome, _ = await self.store.update(self.job_id, phase=phase, progress=progress, message=message)
        except RedisError as exc:
            # Progress only informs: a Redis outage does not stop the work, only its outcome waits for Redis.
            if not self.progress_unrecorded:
                log.warning("job %s: progress not recorded from %d%% on (redis: %s)", self.job_id, progress, exc)
            self.progress_unrecorded = True
            self.outcomes.redis_failed()
            return
        self.progress_unrecorded = False
        if outcome is not Outcome.UPDATED:
            raise JobCancelled

    async def _script(self) -> list[Scene]:
        text = await asyncio.to_thread(self.settings.text_path(self.job_id).read_text, encoding="utf-8")
        reply = await clients.chat(self.http, self.settings.llm_url, self.settings.llm_model,
                                   chat_messages(text), self.settings.llm_timeout)
        scenes = parse_script(reply)
        self.tally.scenes = len(scenes)
        await self._advance("audio", 20, f"script ready: {len(scenes)} scenes")
        return scenes

    async def _narration(self, scenes: list[Scene]) -> list[bytes]:
        wavs = []
        for scene in scenes:
            await self._advance("audio", 20 + 40 * (scene.id - 1) // len(scenes),
                                f"narrating scene {scene.id} of {len(scenes)}")
            try:
                pieces = [await clients.speech(self.http, self.settings.tts_url, piece, self.settings.tts_timeout)
                          for piece in clients.split_for_tts(scene.narration_text)]
                wavs.append(pieces[0] if len(pieces) == 1 else join_wavs(pieces)[0])
            except DependencyError:
                self.tally.failed += 1
                raise
            except ComposeError as exc:
                self.tally.failed += 1
                raise DependencyError(f"tts: scene {scene.id}: {exc}") from exc
            self.tally.succeeded += 1
        return wavs

    async def _slides(self, scenes: list[Scene]) -> list[Path]:
        slides = []
        for scene in scenes:
            await self._advance("visual", 60 + 15 * (scene.id - 1) // len(scenes),
                                f"drawing slide {scene.id} of {len(scenes)}")
            path = self.work / f"scene-{scene.id:02d}.png"
            slides.append(await asyncio.to_thread(save_slide, scene, len(scenes), path))
            self.tally.succeeded += 1
        return slides

    async def _compose_progress(self, fraction: float) -> None:
        await self._advance("compose", 75 + int(24 * fraction), "encoding the video")

    def _result(self, video: dict | None, started: float, errors: list[str]) -> dict:
        return {
            "video": video,
            "script_scenes": self.tally.scenes,
            "successful_tasks": self.tally.succeeded,
            "failed_tasks": self.tally.failed,
            "processing_time_seconds": round(time.monotonic() - started, 3),
            "errors": errors,
        }

    async def run(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self.work.mkdir, parents=True, exist_ok=True)
        try:
            scenes = await self._script()
            wavs = await self._narration(scenes)
            slides = await self._slides(scenes)
            await self._advance("compose", 75, "encoding the video")
            output = self.settings.video_path(self.job_id)
            video = await compose_video(slides, wavs, self.work, output, self.settings.partial_video_path(self.job_id),
                                        self.settings.fps, self._compose_progress)
            facts = {
                "video_url": f"/api/v1/video/download/{self.job_id}",
                "download_url": f"/api/v1/video/download/{self.job_id}?download=true",
                "duration_seconds": video.duration_seconds,
                "size_bytes": video.size_bytes,
                "fps": self.settings.fps,
                "resolution": "1280x720",
                "format": "mp4",
            }
            outcome = await self.outcomes.record(self.job_id, Finish(
                "completed", f"video ready: {len(scenes)} scenes, {video.duration_seconds:.1f} s", [],
                self._result(facts, started, []), {"phase": "done", "progress": 100}, video=output))
            if outcome not in (Outcome.UPDATED, None):  # cancelled while the last frames were written
                raise JobCancelled
            log.info("job %s: completed, %d scenes, %.1f s of video in %.1f s", self.job_id,
                     len(scenes), video.duration_seconds, time.monotonic() - started)
        except JobCancelled:
            log.info("job %s: cancelled, stopped", self.job_id)
        except (DependencyError, ScriptError, ComposeError, OSError) as exc:
            await self._fail(str(exc), started)
        except Exception as exc:
            log.exception("job %s: unexpected failure", self.job_id)
            await self._fail(f"internal error: {type(exc).__name__}: {exc}", started)
        finally:
            await asyncio.to_thread(shutil.rmtree, self.work, ignore_errors=True)

    async def _fail(self, error: str, started: float) -> None:
        log.info("job %s: failed: %s", self.job_id, error)
        await self.outcomes.record(self.job_id, Finish("failed", f"failed: {error}", [error],
                                                       self._result(None, started, [error])))


class Workers:
    """N loops popping the queue, so at most N jobs process at once; the rest stay pending."""

    def __init__(self, settings: Settings, store: JobStore, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.outcomes = Outcomes(store)

    async def run(self) -> None:
        await self._recover()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.outcomes.run())
            for _ in range(self.settings.max_concurrent_jobs):
                group.create_task(self._loop())

    async def _recover(self) -> None:
        """Before any job runs: settle what a previous server left behind (waits for Redis if down)."""
        while True:
            try:
                failed, requeued = await self.store.recover(RESTART_MESSAGE)
                break
            except RedisError as exc:
                log.warning("recovery waits for redis: %s", exc)
                await asyncio.sleep(REDIS_RETRY_S)
        if failed or requeued:
            log.info("recovered after restart: %d interrupted job(s) failed, %d re-queued", failed, requeued)

    async def _loop(self) -> None:
        while True:
            try:
                job_id = await self.store.next_queued(QUEUE_WAIT_S)
                if job_id is not None:
                    self.outcomes.running.add(job_id)  # at once: a sweep must not re-queue it meanwhile
                    try:
                        await self._process(job_id)
                    finally:
                        self.outcomes.running.discard(job_id)
            except RedisError as exc:
                log.warning("redis error in a worker: %s", exc)
                self.outcomes.redis_failed()  # a job popped or claimed in the outage may be lost
                await asyncio.sleep(REDIS_RETRY_S)
            except Exception:
                # A worker must outlive any one job's bug, or the queue would silently stall.
                log.exception("worker error")
                self.outcomes.redis_failed()  # settles the job it may have dropped

    async def _cancelled(self, job_id: str) -> bool:
        try:
            return await self.store.status(job_id) == "cancelled"
        except RedisError:
            self.outcomes.redis_failed()
            return False  # the pipeline meets the outage itself at its next write

    async def _process(self, job_id: str) -> None:
        # Only a pending job is claimed: one re-queued after an outage may have been taken already.
        outcome, status = await self.store.update(job_id, "pending", status="processing", phase="script",
                                                  progress=5, message="writing the script", started_at=utc_now())
        if outcome is not Outcome.UPDATED:
            log.info("job %s: skipped (%s)", job_id, status or "no such job")
            return
        pipeline = asyncio.create_task(Pipeline(self.settings, self.store, self.http, self.outcomes, job_id).run())
        try:
            # Watch for a cancel while the pipeline waits on something long (LLM, TTS, ffmpeg).
            while not pipeline.done():
                await asyncio.wait({pipeline}, timeout=CANCEL_POLL_S)
                if not pipeline.done() and await self._cancelled(job_id):
                    log.info("job %s: cancelled, stopping its pipeline", job_id)
                    pipeline.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pipeline
                    return
            pipeline.result()
        except asyncio.CancelledError:
            # The server is stopping: stop the job and say so, briefly, then let the stop go on.
            pipeline.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pipeline
            with contextlib.suppress(RedisError, TimeoutError):
                async with asyncio.timeout(SHUTDOWN_WRITE_TIMEOUT_S):
                    await self.store.finish(job_id, "failed", STOP_MESSAGE, [STOP_MESSAGE])
            raise
