"""A cached view of the dependencies, refreshed in the background so /health answers instantly."""

from __future__ import annotations

import asyncio
import logging

import httpx
import redis.asyncio as aioredis

from stack.server import clients
from stack.server.jobs import utc_now

REFRESH_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 0.8

log = logging.getLogger("stack.server.health")


class HealthMonitor:
    def __init__(self, http: httpx.AsyncClient, redis_client: aioredis.Redis, tts_url: str, llm_url: str) -> None:
        self.http = http
        self.redis = redis_client
        self.tts_url = tts_url
        self.llm_url = llm_url
        self.dependencies = {"tts_service": "down", "llm_service": "down", "redis": "down"}

    async def _redis_up(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                return bool(await self.redis.ping())
        except (OSError, TimeoutError, aioredis.RedisError):
            return False

    async def refresh(self) -> None:
        tts, llm, redis_up = await asyncio.gather(
            clients.answers(self.http, f"{self.tts_url}/health", PROBE_TIMEOUT_S,
                            healthy=lambda body: isinstance(body, dict) and body.get("status") == "healthy"),
            clients.answers(self.http, f"{self.llm_url}/api/version", PROBE_TIMEOUT_S),
            self._redis_up(),
        )
        state = {"tts_service": tts, "llm_service": llm, "redis": redis_up}
        changed = {name: up for name, up in state.items() if (self.dependencies[name] == "up") != up}
        if changed:
            log.info("dependencies changed: %s",
                     ", ".join(f"{name} {'up' if up else 'down'}" for name, up in changed.items()))
        self.dependencies = {name: "up" if up else "down" for name, up in state.items()}

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_INTERVAL_S)

    def report(self) -> dict:
        healthy = all(state == "up" for state in self.dependencies.values())
        return {"status": "healthy" if healthy else "degraded", "service": "text-to-video",
                "dependencies": dict(self.dependencies), "timestamp": utc_now()}
