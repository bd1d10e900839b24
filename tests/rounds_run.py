"""A hand-made campaign of several rounds with known trends, for the pure tests of per-round and pooled figures,
trends and their rendering.

Round r (1-based) of ROUNDS: two jobs at concurrency 2 taking 10 + r and 11 + r seconds (round 4's second job
fails), five health probes around 10 + 2r ms, server RSS about 100 + 5r MB under load (a leak), tts RSS flat
at 50 MB; tts was unreachable for 12.5 s before round 3 and answered again.
"""

from __future__ import annotations

from analysis.metrics import RunMetrics, compute_metrics
from analysis.resources import MB
from analysis.schema import frame

ROUNDS = 4
LEAK_MB = 5.0
NOISE = (0.3, -0.2, 0.1, -0.3, 0.2, 0.0)  # small, fixed: trends are tested, not the random generator


def _round_rows(r: int) -> dict[str, list[dict]]:
    start = 1000.0 * r
    failed = r == 4
    jobs = [{"job_id": f"r{r}-{slot}", "stage": "concurrent", "round": r, "level": 2, "batch": 0, "slot": slot,
             "submitted_at": start, "finished_at": start + 10 + r + slot, "total_seconds": 10.0 + r + slot,
             "server_status": "completed", "outcome": "failed" if failed and slot else "succeeded",
             "succeeded": not (failed and slot),
             "failure": "server said failed: tts error" if failed and slot else None} for slot in (0, 1)]
    latency = [{"endpoint": "health", "round": r, "i": i, "t": start + 50 + i,
                "ms": 10.0 + 2 * r + NOISE[(i + r) % 6], "status_code": 200, "ok": True} for i in range(5)]
    samples = [{"stage": "concurrent", "round": r, "t": start + 5 + i, "service": service, "processes": 1,
                "cpu_percent": 40.0, "rss_bytes": int((mb + NOISE[(r + i) % 6]) * MB)}
               for i in range(2) for service, mb in (("server", 100 + LEAK_MB * r), ("tts", 50.0))]
    stages = [{"stage": stage, "round": r, "started_at": start + offset, "finished_at": start + offset + 40,
               "outcome": "completed"} for offset, stage in ((0, "concurrent"), (50, "latency"))]
    batches = [{"stage": "concurrent", "round": r, "level": 2, "batch": 0, "jobs": 2, "started_at": start,
                "finished_at": start + 12 + r, "wall_seconds": 12.0 + r}]
    videos = [{"job_id": job["job_id"], "stage": "concurrent", "round": r, "video_seconds": 10.0, "ok": True,
               "width": 1280, "height": 720} for job in jobs if job["succeeded"]]
    return {"jobs": jobs, "latency": latency, "samples": samples, "stages": stages, "batches": batches,
            "videos": videos}


def rounds_frames(rounds: int = ROUNDS) -> dict:
    rows: dict[str, list[dict]] = {}
    for r in range(1, rounds + 1):
        for table, part in _round_rows(r).items():
            rows.setdefault(table, []).extend(part)
    rows["stages"] = [{"stage": "verification", "round": 1, "started_at": 900.0, "finished_at": 901.0,
                       "outcome": "completed"}, *rows["stages"]]
    rows["services"] = [{"service": name, "round": 1, "ok": True, "url": f"http://127.0.0.1/{name}"}
                        for name in ("server", "tts")]
    if rounds >= 3:
        rows["services"].append({"service": "tts", "round": 3, "ok": False, "detail": "connection refused"})
        rows["downtime"] = [{"round": 3, "started_at": 2990.0, "ended_at": 3002.5, "seconds": 12.5,
                             "services": "tts", "recovered": True, "detail": "tts: connection refused"}]
    return {table: frame(table, part) for table, part in rows.items()}


def rounds_manifest() -> dict:
    return {"run_id": "20261127T000000Z-rounds", "profile_name": "soak",
            "profile": {"name": "soak", "thresholds": {"success_rate": 0.5}},
            "started_at": "1970-01-01T00:15:00+00:00", "finished_at": "1970-01-01T01:30:00+00:00",
            "machine": {"cpu_count": 2, "memory_bytes": 4096 * MB}, "outcome": "measured"}


def rounds_metrics(rounds: int = ROUNDS) -> RunMetrics:
    return compute_metrics(rounds_frames(rounds), rounds_manifest(), [])
