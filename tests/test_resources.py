import pytest

from analysis.resources import MB, baseline_by_service, jobs_per_gb, machine_by_stage, per_job_usage, usage_by_service
from analysis.schema import frame


def sample(stage, t, service, cpu, rss_mb):
    return {"stage": stage, "t": t, "service": service, "processes": 1, "cpu_percent": cpu,
            "rss_bytes": int(rss_mb * MB)}


SAMPLES = frame("samples", [
    sample("baseline", 0.0, "server", 1.0, 40), sample("baseline", 0.0, "total", 3.0, 100),
    sample("baseline", 0.0, "machine", 10.0, 2000),
    sample("baseline", 1.0, "server", 3.0, 60), sample("baseline", 1.0, "total", 5.0, 120),
    sample("single", 10.0, "total", 80.0, 150), sample("single", 10.0, "server", 50.0, 70),
    sample("concurrent", 20.0, "total", 90.0, 170),
    sample("concurrent", 30.0, "total", 150.0, 260),
    sample("concurrent", 40.0, "total", 110.0, 200),
    sample("sequential", 50.0, "total", 60.0, 140),
])


def job(job_id, stage, start, end, level=None, batch=None):
    return {"job_id": job_id, "stage": stage, "level": level, "batch": batch, "submitted_at": start, "finished_at": end}


def test_baseline_by_service_excludes_machine_and_puts_total_last():
    rows = baseline_by_service(SAMPLES)
    assert [row["service"] for row in rows] == ["server", "total"]
    server, total = rows
    assert server == {"service": "server", "samples": 2, "cpu_mean_percent": 2.0, "cpu_max_percent": 3.0,
                      "rss_mean_mb": 50.0, "rss_max_mb": 60.0}
    assert total["rss_mean_mb"] == 110.0 and total["cpu_max_percent"] == 5.0


def test_usage_by_service_covers_only_the_run_stages():
    rows = {row["service"]: row for row in usage_by_service(SAMPLES)}
    assert list(rows) == ["server", "total"]
    assert rows["total"]["samples"] == 4
    assert rows["total"]["cpu_mean_percent"] == pytest.approx((80 + 90 + 150 + 110) / 4)
    assert rows["total"]["rss_max_mb"] == 260.0
    assert usage_by_service(SAMPLES, stages=("sequential",))[0]["rss_mean_mb"] == 140.0


def test_machine_by_stage():
    assert machine_by_stage(SAMPLES) == [{"stage": "baseline", "samples": 1, "cpu_mean_percent": 10.0,
                                          "cpu_max_percent": 10.0, "rss_mean_mb": 2000.0, "rss_max_mb": 2000.0}]


def test_per_job_usage_uses_total_samples_within_each_window():
    jobs = frame("jobs", [job("a", "single", 5.0, 10.0), job("b", "concurrent", 20.0, 30.0, 2, 0),
                          job("c", "sequential", 60.0, 70.0)])
    usage = per_job_usage(SAMPLES, jobs)
    a, b, c = usage["jobs"]
    assert (a["samples"], a["peak_rss_mb"], a["mean_cpu_percent"], a["peak_cpu_percent"]) == (1, 150.0, 80.0, 80.0)
    assert (b["samples"], b["peak_rss_mb"], b["mean_cpu_percent"], b["peak_cpu_percent"]) == (2, 260.0, 120.0, 150.0)
    assert (c["samples"], c["peak_rss_mb"]) == (0, None)
    assert usage["overall"] == {"jobs": 3, "jobs_with_samples": 2, "mean_peak_rss_mb": 205.0, "max_peak_rss_mb": 260.0,
                                "mean_cpu_percent": 100.0, "peak_cpu_percent": 150.0}


def test_per_job_usage_without_jobs_or_samples():
    usage = per_job_usage(frame("samples", []), frame("jobs", [job("a", "single", 0.0, None)]))
    assert usage["jobs"][0]["samples"] == 0
    assert usage["overall"]["mean_peak_rss_mb"] is None and usage["overall"]["peak_cpu_percent"] is None


def test_jobs_per_gb_per_level():
    jobs = frame("jobs", [
        job("l1", "concurrent", 18.0, 22.0, 1, 0),
        job("l2a", "concurrent", 25.0, 35.0, 2, 0), job("l2b", "concurrent", 26.0, 41.0, 2, 0),
        job("single", "single", 0.0, 100.0),  # not a concurrency level: ignored
    ])
    level1, level2 = jobs_per_gb(SAMPLES, jobs, baseline_by_service(SAMPLES))
    # level 1: peak 170 MB − baseline 110 MB = 60 MB per job
    assert level1["marginal_mb_per_job"] == pytest.approx(60.0)
    assert level1["jobs_per_gib"] == pytest.approx(1024 / 60)
    # level 2: window 25..41 holds 260 and 200; (260 − 110) / 2 = 75 MB per job
    assert level2["samples"] == 2 and level2["peak_total_rss_mb"] == 260.0
    assert level2["marginal_mb_per_job"] == pytest.approx(75.0)
    assert level2["jobs_per_gib"] == pytest.approx(1024 / 75)


def test_jobs_per_gb_is_none_when_memory_did_not_grow_or_was_not_sampled():
    jobs = frame("jobs", [job("l1", "concurrent", 45.0, 55.0, 1, 0), job("l2", "concurrent", 500.0, 600.0, 2, 0)])

    def levels(baseline_mb, during_mb):
        samples = frame("samples", [sample("baseline", 0.0, "total", 1.0, baseline_mb),
                                    sample("concurrent", 50.0, "total", 1.0, during_mb)])
        return jobs_per_gb(samples, jobs, baseline_by_service(samples))

    shrunk, unsampled = levels(200, 150)
    assert shrunk["marginal_mb_per_job"] == pytest.approx(-50.0) and shrunk["jobs_per_gib"] is None
    assert unsampled["samples"] == 0 and unsampled["marginal_mb_per_job"] is None
    assert unsampled["jobs_per_gib"] is None
    assert levels(150, 150)[0]["jobs_per_gib"] is None
    assert jobs_per_gb(frame("samples", []), jobs, [])[0]["jobs_per_gib"] is None
