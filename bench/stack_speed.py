"""Speed of the bundled stack on this machine; prints its figures (no pass/fail: machines are shared).

1. A one-page document (~300 words) to a finished video, end to end (submit → completed), median of N.
2. /health and the status endpoint, p50/p95 ms, while two jobs encode at the same time.

    python bench/stack_speed.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.stats import percentile  # noqa: E402
from stack import running_stack  # noqa: E402

DOCUMENT = Path(__file__).resolve().parent.parent / "profiles" / "documents" / "one_page.md"
API = "/api/v1/video"


def submit(client: httpx.Client) -> str:
    response = client.post(f"{API}/generate", files={"file": (DOCUMENT.name, DOCUMENT.read_bytes(), "text/markdown")})
    response.raise_for_status()
    return response.json()["job_id"]


def wait(client: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{API}/status/{job_id}").json()
        if job["status"] in ("completed", "completed_with_errors", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} not finished after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    words = len(DOCUMENT.read_text().split())
    with running_stack() as stack, httpx.Client(base_url=stack.urls.server, timeout=30) as client:
        totals, processing, video = [], [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            job = wait(client, submit(client))
            totals.append(time.perf_counter() - started)
            assert job["status"] == "completed", job
            processing.append(job["result"]["processing_time_seconds"])
            video.append(job["result"]["video"]["duration_seconds"])
        print(f"document: {DOCUMENT.name}, {words} words → {statistics.median(video):.1f} s of video")
        print(f"end to end: median {statistics.median(totals):.2f} s over {args.runs} runs "
              f"(each: {', '.join(f'{t:.2f}' for t in totals)}); server processing median "
              f"{statistics.median(processing):.2f} s; target < 15 s")

        # Probe continuously while two jobs run; keep apart the probes taken while both were encoding.
        jobs = [submit(client), submit(client)]
        timings: dict[tuple[str, bool], list[float]] = {}
        while True:
            phases = [client.get(f"{API}/status/{j}").json() for j in jobs]
            if all(p["status"] not in ("pending", "processing") for p in phases):
                break
            both_encoding = all(p["phase"] == "compose" for p in phases)
            for name, path in (("health", "/health"), ("status", f"{API}/status/{jobs[0]}")):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                timings.setdefault((name, both_encoding), []).append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
        for (name, both_encoding), values in sorted(timings.items()):
            when = "while both jobs encode" if both_encoding else "while two jobs run (other phases)"
            print(f"{name} {when}: p50 {percentile(values, 50):.2f} ms, p95 {percentile(values, 95):.2f} ms "
                  f"over {len(values)} requests; target p50 < 5 ms")

if __name__ == "__main__":
    main()
