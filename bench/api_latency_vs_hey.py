"""The suite's API latency probe against `hey -c 1` on the bundled stack's /health, in one run.

Both ask the same server one request at a time over one kept-alive connection, in alternating rounds
(so a busy moment of the shared machine falls on both); prints each one's median and the ratio
suite p50 / hey p50. The suite times an answer at the wire (first request byte written → last answer byte read), so
the ratio should stay at or under 1.1: above it, the client's own work is leaking into the figure.

    apt-get install hey            # Debian's package
    python bench/api_latency_vs_hey.py [-n 2000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack import running_stack  # noqa: E402
from tasks import http  # noqa: E402
from tasks.latency import probe  # noqa: E402

TIMEOUT_S = 15.0
HEY_STEP_MS = 0.1  # hey's CSV gives each time in seconds to 4 decimals


def stepped_median(values: list[float], step: float) -> float:
    """The median of values rounded to `step`, read within its step as if spread evenly over it (a /health
    answer takes 2-3 steps: the plain median of rounded values would be off by up to half a step)."""
    counts = Counter(round(value / step) for value in values)
    below, half = 0, len(values) / 2
    for level in sorted(counts):
        if below + counts[level] >= half:
            return (level - 0.5 + (half - below) / counts[level]) * step
        below += counts[level]
    raise ValueError("no values")


def hey_ms(hey: str, url: str, requests: int) -> list[float]:
    """Per-request times hey measured (its CSV: response-time in seconds per request)."""
    done = subprocess.run([hey, "-c", "1", "-n", str(requests), "-o", "csv", url],
                          capture_output=True, text=True, timeout=600, check=True)
    rows = csv.DictReader(io.StringIO(done.stdout))
    return [float(row["response-time"]) * 1000 for row in rows if row["status-code"] == "200"]


def suite_ms(url: str, requests: int) -> list[float]:
    with http.timed_client() as client:
        rows = [probe(client, url, TIMEOUT_S) for _ in range(requests)]
    return [row["ms"] for row in rows if row["ok"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="requests per tool per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of each tool (default 4)")
    args = parser.parse_args()
    hey = shutil.which("hey")
    if hey is None:
        sys.exit("hey not found on PATH: apt-get install hey")
    with running_stack() as stack:
        url = stack.urls.server + "/health"
        suite_ms(url, 50)  # warm both sides up: imports, the server's first answers
        hey_ms(hey, url, 50)
        suite, by_hey = [], []
        for _ in range(args.rounds):
            by_hey += hey_ms(hey, url, args.n)
            suite += suite_ms(url, args.n)
    hey_p50, suite_p50 = stepped_median(by_hey, HEY_STEP_MS), statistics.median(suite)
    print(f"/health, one request at a time, {args.rounds} alternating rounds of {args.n} each")
    print(f"hey -c 1:    p50 {hey_p50:.3f} ms over {len(by_hey)} answers (read within hey's {HEY_STEP_MS} ms steps; "
          f"plain median {statistics.median(by_hey):.1f})")
    print(f"suite probe: p50 {suite_p50:.3f} ms over {len(suite)} answers "
          "(first request byte written → last answer byte read)")
    print(f"ratio suite p50 / hey p50: {suite_p50 / hey_p50:.2f} (target ≤ 1.1)")


if __name__ == "__main__":
    main()
