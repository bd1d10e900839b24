"""Resource figures from recorded samples: one CPU scale, the deployment summed at each instant; and the
sampler against a real listening process."""

import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from analysis.resources import MB, baseline_rss_bytes, deployment_instants, machine_by_stage, per_job_memory, usage
from analysis.schema import frame


def sample(stage, t, service, cpu, rss_mb):
    return {"stage": stage, "t": t, "service": service, "processes": 1, "cpu_percent": cpu,
            "rss_bytes": int(rss_mb * MB)}


SAMPLES = frame("samples", [
    sample("baseline", 0.0, "server", None, 40), sample("baseline", 0.0, "tts", None, 60),
    sample("baseline", 0.0, "total", None, 100), sample("baseline", 0.0, "machine", 10.0, 2000),
    sample("baseline", 1.0, "server", 3.0, 60), sample("baseline", 1.0, "tts", 1.0, 60),
    sample("single", 10.0, "server", 150.0, 70), sample("single", 10.0, "tts", 10.0, 80),
    sample("single", 11.0, "server", 20.0, 90), sample("single", 11.0, "tts", 120.0, 80),
    sample("single", 11.0, "machine", 190.0, 2100),
])


def job(job_id, stage, start, end, level=None):
    return {"job_id": job_id, "stage": stage, "level": level, "batch": 0, "submitted_at": start, "finished_at": end}


def test_deployment_is_summed_per_instant_and_a_first_sample_without_cpu_is_no_cpu():
    instants = deployment_instants(SAMPLES)
    assert instants["t"].to_list() == [0.0, 1.0, 10.0, 11.0]
    assert instants["cpu_percent"].to_list() == [None, 4.0, 160.0, 140.0]
    assert [value / MB for value in instants["rss_bytes"].to_list()] == [100.0, 120.0, 150.0, 170.0]


def test_usage_per_service_then_the_deployment_whose_peak_is_the_peak_of_the_sum():
    rows = {row.name: row for row in usage(SAMPLES, ["single"])}
    assert list(rows) == ["server", "tts", "deployment"]
    assert rows["deployment"].cpu_peak == 160.0  # never 150 + 120
    assert rows["deployment"].rss_peak_mb == 170.0 and rows["server"].cpu_mean == 85.0


def test_machine_by_stage_and_idle_baseline():
    assert [(row.name, row.cpu_peak, row.rss_peak_mb) for row in machine_by_stage(SAMPLES)] == \
        [("baseline", 10.0, 2000.0), ("single", 190.0, 2100.0)]
    assert baseline_rss_bytes(SAMPLES) / MB == 110.0


def test_per_job_memory_divides_the_growth_above_idle_by_the_jobs_in_flight():
    jobs = frame("jobs", [job("a", "single", 9.0, 10.5)])
    (row,) = per_job_memory(SAMPLES, jobs)
    # only t=10 has the job in flight: (150 − 110) / 1
    assert (row.stage, row.level, row.instants) == ("single", None, 1)
    assert row.per_job_mb.max == pytest.approx(40.0) and row.jobs_per_gib == pytest.approx(1024 / 40)
    assert row.deployment_peak_rss_mb == 150.0


def test_per_job_memory_without_baseline_or_growth():
    jobs = frame("jobs", [job("a", "single", 9.0, 12.0)])
    no_baseline = SAMPLES.filter(SAMPLES["stage"] != "baseline")
    (row,) = per_job_memory(no_baseline, jobs)
    assert row.per_job_mb.n == 0 and row.jobs_per_gib is None and row.deployment_peak_rss_mb == 170.0
    assert per_job_memory(SAMPLES, frame("jobs", [])) == []


def test_a_child_reaped_by_its_parent_is_counted_once():
    from tasks.processes import CpuAccount

    account, parent, child = CpuAccount(), (100, 1.0), (200, 2.0)
    assert account.interval({parent: (1.0, 0.0, 1), child: (0.0, 0.0, 100)}, {1, 100, 200}, now=0.0) is None
    # 1 s later the child has used 0.8 s, the parent 0.1 s
    assert account.interval({parent: (1.1, 0.0, 1), child: (0.8, 0.0, 100)}, {1, 100, 200}, now=1.0) == \
        pytest.approx(90.0)
    # the child used 0.5 s more, ended and was reaped: its 1.3 s are now in the parent's reaped time
    assert account.interval({parent: (1.2, 1.3, 1)}, {1, 100}, now=2.0) == pytest.approx(60.0)  # 0.1 + 0.5, not 1.4


def test_a_child_read_just_before_its_parent_reaped_it_is_evened_out_next_interval():
    from tasks.processes import CpuAccount

    account, parent, child = CpuAccount(), (100, 1.0), (200, 2.0)
    account.interval({parent: (0.0, 0.0, 1), child: (0.0, 0.0, 100)}, {1, 100, 200}, now=0.0)
    # read as alive (0.5 s) and, a moment later, already in its parent's reaped time: counted twice here...
    first = account.interval({parent: (0.0, 0.5, 1), child: (0.5, 0.0, 100)}, {1, 100, 200}, now=1.0)
    # ...and taken off the next intervals (never below 0), so they add up to what was used: 0.5 + 0.1 + 0.4 s
    second = account.interval({parent: (0.1, 0.5, 1)}, {1, 100}, now=2.0)
    third = account.interval({parent: (0.5, 0.5, 1)}, {1, 100}, now=3.0)
    assert (first, second) == (pytest.approx(100.0), 0.0)
    assert first + second + third == pytest.approx(100.0)


# --- the sampler against a real process ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def listening_service():
    """A real service process (not the test's own, which the sampler never samples): its port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ends = time.monotonic() + 20
        while not any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                      for c in psutil.net_connections(kind="inet")):
            assert time.monotonic() < ends and proc.poll() is None, "the test service did not start"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def stop_flag():
    from tasks import interrupt

    interrupt.reset()
    yield interrupt
    interrupt.reset()


def test_a_stop_ends_the_baseline_at_once_with_what_it_sampled(listening_service, stop_flag, tmp_path):
    from tasks.processes import capture_baseline
    from tasks.store import read_ledger

    threading.Timer(0.6, stop_flag.request_stop).start()
    started = time.monotonic()
    pids = capture_baseline.fn(str(tmp_path), {"server": listening_service}, 30.0, 0.2)
    assert time.monotonic() - started < 1.5
    assert set(pids) == {"server"}
    server = [row for row in read_ledger(tmp_path)["samples"] if row["service"] == "server"]
    assert len(server) >= 2 and all(row["rss_bytes"] > 0 for row in server)


def test_a_service_without_a_visible_process_is_not_measured_rather_than_zero(listening_service, tmp_path):
    from tasks.processes import ResourceSampler
    from tasks.store import Ledger, read_ledger

    sampler = ResourceSampler(Ledger.of(tmp_path), {"server": listening_service, "redis": free_port()}, 0.2)
    sampler.sample()
    sampler.sample()
    rows = read_ledger(tmp_path)["samples"]
    assert {row["service"] for row in rows} == {"server", "machine"}  # no row for redis at all
    server = [row for row in rows if row["service"] == "server"]
    assert server[1]["cpu_percent"] is not None and server[1]["rss_bytes"] > 0
    assert set(sampler.pids) == {"server"}
    # with nothing visible at all, only the machine
    nothing = ResourceSampler(Ledger.of(tmp_path / "none"), {"tts": free_port()}, 0.2)
    nothing.sample()
    assert {row["service"] for row in read_ledger(tmp_path / "none")["samples"]} == {"machine"}
