"""Job state in Redis: one hash per job, a queue, and two sorted sets (all jobs, active jobs).

Every change of a job goes through one Lua script, so Redis alone decides races such as a
cancel arriving while the worker finishes: a job in a terminal status is never modified again,
and progress never goes down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

PREFIX = "t2v:"
QUEUE_KEY = PREFIX + "queue"
ALL_KEY = PREFIX + "jobs"  # job ids scored by creation time
ACTIVE_KEY = PREFIX + "active"  # pending and processing job ids, scored by creation time
TERMINAL = ("completed", "completed_with_errors", "failed", "cancelled")
# The job status object of the contract, plus when a worker picked the job up.
PUBLIC_FIELDS = ("job_id", "status", "phase", "message", "progress", "created_at", "updated_at",
                 "started_at", "completed_at", "result", "errors")
SUMMARY_FIELDS = ("job_id", "status", "message", "progress", "updated_at")

# KEYS: job hash, active set. ARGV: job id, the status the job must have ('' for any non-terminal one),
# then field/JSON-value pairs.
# Answers {"ok", status after} | {"terminal", status} | {"other", status} | {"missing"}.
_UPDATE_LUA = """
local terminal = {__TERMINAL__}
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw then return {'missing'} end
local status = cjson.decode(raw)
if terminal[status] then return {'terminal', status} end
if ARGV[2] ~= '' and status ~= ARGV[2] then return {'other', status} end
for i = 3, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if field == 'progress' then
    local old = cjson.decode(redis.call('HGET', KEYS[1], 'progress') or 'null')
    local new = cjson.decode(value)
    if type(old) == 'number' and (type(new) ~= 'number' or new < old) then value = nil end
  end
  if value then
    redis.call('HSET', KEYS[1], field, value)
    if field == 'status' then status = cjson.decode(value) end
  end
end
if terminal[status] then redis.call('ZREM', KEYS[2], ARGV[1]) end
return {'ok', status}
""".replace("__TERMINAL__", ", ".join(f"['{name}'] = true" for name in TERMINAL))


def utc_now() -> str:
    """Now as ISO-8601 in UTC with an explicit offset, e.g. 2025-01-31T12:00:00.123+00:00."""
    return iso_utc(time.time())


def iso_utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def seconds_between(start_iso: str, end_iso: str) -> float:
    return (datetime.fromisoformat(end_iso) - datetime.fromisoformat(start_iso)).total_seconds()


class Outcome(Enum):
    UPDATED = "ok"
    TERMINAL = "terminal"
    OTHER_STATUS = "other"  # not in the status the update required
    MISSING = "missing"


def job_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def connect(url: str) -> aioredis.Redis:
    """A client that fails fast when Redis is down (one immediate retry covers a stale connection)."""
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=1.0, socket_timeout=5.0, retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


class JobStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._update = client.register_script(_UPDATE_LUA)

    async def create(self, job_id: str) -> dict:
        """A new pending job at the back of the queue; returns its status object."""
        now = time.time()
        job = dict.fromkeys(PUBLIC_FIELDS)
        job.update(job_id=job_id, status="pending", phase="upload", message="queued", progress=0,
                   created_at=iso_utc(now), updated_at=iso_utc(now))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(job_key(job_id), mapping={field: json.dumps(value) for field, value in job.items()})
            pipe.zadd(ALL_KEY, {job_id: now})
            pipe.zadd(ACTIVE_KEY, {job_id: now})
            pipe.rpush(QUEUE_KEY, job_id)
            await pipe.execute()
        return job

    async def update(self, job_id: str, required_status: str = "", **fields) -> tuple[Outcome, str | None]:
        """Apply `fields` (and a fresh updated_at) unless the job is terminal, or not in `required_status`
        when one is given; (outcome, status)."""
        fields["updated_at"] = utc_now()
        pairs = [part for field, value in fields.items() for part in (field, json.dumps(value))]
        answer = await self._update(keys=[job_key(job_id), ACTIVE_KEY], args=[job_id, required_status, *pairs])
        outcome = Outcome(answer[0].decode())
        return outcome, answer[1].decode() if len(answer) > 1 else None

    async def get(self, job_id: str) -> dict | None:
        values = await self.redis.hmget(job_key(job_id), PUBLIC_FIELDS)
        return _decode(PUBLIC_FIELDS, values)

    async def status(self, job_id: str) -> str | None:
        raw = await self.redis.hget(job_key(job_id), "status")
        return json.loads(raw) if raw is not None else None

    async def _summaries(self, job_ids: list[bytes]) -> list[dict]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hmget(job_key(job_id.decode()), SUMMARY_FIELDS)
            rows = await pipe.execute()
        return [job for job in (_decode(SUMMARY_FIELDS, row) for row in rows) if job is not None]

    async def recent(self, limit: int) -> tuple[list[dict], int]:
        """The newest `limit` jobs, newest first, and how many jobs there are."""
        job_ids = await self.redis.zrevrange(ALL_KEY, 0, limit - 1)
        return await self._summaries(job_ids), await self.redis.zcard(ALL_KEY)

    async def active(self, limit: int) -> tuple[list[dict], int]:
        """The oldest `limit` pending or processing jobs (queue order), and how many there are."""
        job_ids = await self.redis.zrange(ACTIVE_KEY, 0, limit - 1)
        return await self._summaries(job_ids), await self.redis.zcard(ACTIVE_KEY)

    async def next_queued(self, wait_seconds: float) -> str | None:
        """Pop the next queued job id, waiting at most `wait_seconds`."""
        popped = await self.redis.blpop([QUEUE_KEY], timeout=wait_seconds)
        return popped[1].decode() if popped else None

    async def unqueue(self, job_id: str) -> None:
        await self.redis.lrem(QUEUE_KEY, 0, job_id)

    async def recover(self, interrupted_message: str,
                      held: Callable[[str], bool] = lambda _job_id: False) -> tuple[int, int]:
        """Settle the jobs no worker holds: fail those left processing, re-queue pending ones missing
        from the queue. After a restart nothing is held; after a Redis outage `held` names the jobs
        this server's workers still hold (running, or with an outcome waiting to be written).

        Assumes one server per Redis database: a job processing here was this server's.
        Returns (failed, requeued).
        """
        job_ids = [job_id.decode() for job_id in await self.redis.zrange(ACTIVE_KEY, 0, -1)]
        queued = {job_id.decode() for job_id in await self.redis.lrange(QUEUE_KEY, 0, -1)}
        failed, requeue = 0, []
        for job_id in job_ids:
            status = await self.status(job_id)
            if held(job_id):  # asked after the await: a worker may have taken the job meanwhile
                continue
            if status == "processing":
                outcome, _ = await self.finish(job_id, "failed", interrupted_message, [interrupted_message])
                failed += outcome is Outcome.UPDATED
            elif status == "pending" and job_id not in queued:
                requeue.append(job_id)
            elif status is None:  # the hash is gone (deleted by hand): forget the id
                await self.redis.zrem(ACTIVE_KEY, job_id)
        if requeue:
            # At the front, oldest first: they were popped before anything still queued.
            await self.redis.lpush(QUEUE_KEY, *reversed(requeue))
        return failed, len(requeue)

    async def finish(self, job_id: str, status: str, message: str, errors: list[str],
                     result: dict | None = None, **fields) -> tuple[Outcome, str | None]:
        """Move the job to terminal `status` (without `result`: one saying nothing was produced)."""
        job = await self.get(job_id)
        now = utc_now()
        started = (job or {}).get("started_at")
        result = result or {
            "video": None, "script_scenes": 0, "successful_tasks": 0, "failed_tasks": 0,
            "processing_time_seconds": round(seconds_between(started, now), 3) if started else 0.0,
            "errors": errors,
        }
        return await self.update(job_id, status=status, message=message, completed_at=now,
                                 result=result, errors=errors, **fields)


def _decode(fields: tuple[str, ...], values: list[bytes | None]) -> dict | None:
    if values[0] is None:  # job_id is always set: no hash
        return None
    pairs = zip(fields, values, strict=True)
    return {field: json.loads(value) if value is not None else None for field, value in pairs}
