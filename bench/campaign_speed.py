"""Speed of the campaign itself on this machine; prints its figures (no pass/fail: machines are shared).

1. `python -m flows.full_suite --profile smoke`, end to end as a user runs it (Prefect's temporary
   server start included), median of N runs; target under 3 minutes.
2. The campaign's own CPU while it watches 5 concurrent jobs (polling, resource sampling, Prefect
   task bookkeeping), as % of one core over the watching window; target under 5 %. Only this
   process is counted: the stack's processes and Prefect's server process are reported apart.

    python bench/campaign_speed.py [--runs 3] [--jobs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def smoke_seconds(results_dir: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.full_suite", "--profile", "smoke", "--set",
                           f'results_dir="{results_dir}"'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"smoke run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def watch_jobs(jobs: int, results_dir: str) -> tuple[float, float, int]:
    """(own CPU %, wall seconds, jobs completed) while `jobs` concurrent jobs are watched."""
    from prefect import flow
    from prefect.futures import wait
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.lifecycle import campaign_settings, prefect_api
    from profiles.settings import load_profile
    from tasks.jobs import measure_job
    from tasks.processes import ResourceSampler
    from tasks.services import services_under_test
    from tasks.store import Ledger

    profile = load_profile("local", [f'results_dir="{results_dir}"'])
    run_dir = str(Path(results_dir) / "watch")
    document = str(profile.workload.documents[0])

    @flow(name="bench-watch-jobs", task_runner=ThreadPoolTaskRunner(max_workers=jobs))
    def watch(services) -> tuple[float, float, int]:
        with ResourceSampler(Ledger.of(run_dir), services.ports(), profile.timing.sample_interval_s, "concurrent"):
            cpu_before, wall_before = own_cpu_seconds(), time.perf_counter()
            futures = [measure_job.submit(profile, services, run_dir, document, "concurrent", jobs, 0, slot,
                                          profile.timing.poll_interval_s) for slot in range(jobs)]
            wait(futures)
            cpu, wall = own_cpu_seconds() - cpu_before, time.perf_counter() - wall_before
        completed = sum(1 for f in futures if f.result().get("server_status") == "completed")  # videos unchecked
        return 100.0 * cpu / wall, wall, completed

    with campaign_settings(), prefect_api(), services_under_test(profile) as services:  # as the campaign runs
        return watch(services)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="smoke runs to take the median of (default 3)")
    parser.add_argument("--jobs", type=int, default=5, help="concurrent jobs to watch (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-campaign-") as results:
        times = [smoke_seconds(results) for _ in range(args.runs)]
        print(f"smoke end to end: median {statistics.median(times):.1f} s over {args.runs} runs "
              f"(each: {', '.join(f'{t:.1f}' for t in times)}); target < 180 s")
        cpu, wall, completed = watch_jobs(args.jobs, results)
        print(f"own CPU while watching {args.jobs} concurrent jobs: {cpu:.2f} % of one core over {wall:.1f} s "
              f"({completed}/{args.jobs} completed); target < 5 %")


if __name__ == "__main__":
    main()
