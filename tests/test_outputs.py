"""The paper outputs (figures, LaTeX and CSV tables) and the recorded environment, rendered from a stored run.

tests/data/run is a real smoke campaign's folder (bundled stack, `--profile smoke --set
workload.concurrency_levels=[1,2,5] --set workload.sequential_jobs=5`, fault experiments included): its
Parquet tables, manifest, checks and ledger, without the videos and the fault stage's own ledger. What
the figures draw is recomputed here from the Parquet tables and compared with what RunMetrics (and so
the reports) say.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analysis.metrics import compute_metrics, metrics_of
from analysis.schema import frame
from analysis.stats import distribution
from artifacts.__main__ import main as render_main
from artifacts.figures import (
    FIGURES,
    ROUND_FIGURES,
    concurrency_points,
    left_out,
    shaded_spans,
    with_gaps,
    write_figures,
)
from artifacts.latex import escape, write_latex_tables
from artifacts.markdown import main_tables, render_reports
from artifacts.paper_tables import paper_tables
from artifacts.tables_csv import write_csv_tables
from profiles.settings import load_profile
from tasks.run import environment, llm_digest, machine, open_run, profile_sha256, record_services
from tasks.services import Services
from tasks.store import load_tables
from tests.rounds_run import rounds_metrics
from tests.stackutil import ROOT, service_process

STORED = Path(__file__).parent / "data" / "run"
TABLES = ("concurrency-summary", "api-latency-summary", "video-integrity", "resource-usage", "per-job-memory",
          "contract-conformance", "fault-recovery", "environment")  # the stored run's: one round, so none per round
ONE_ROUND_FIGURES = [name for name in FIGURES if name not in ROUND_FIGURES]
ROUND_TABLES = ("rounds", "round-trends")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """The stored run rendered once by `python -m artifacts RUN_DIR`, in a copy (the test data stays as shipped)."""
    run_dir = tmp_path_factory.mktemp("outputs") / "run"
    shutil.copytree(STORED, run_dir)
    assert render_main([str(run_dir)]) == 0
    return run_dir / "reports"


@pytest.fixture(scope="module")
def metrics():
    return metrics_of(STORED)


def _verified(stage: str) -> pl.DataFrame:
    jobs = pl.read_parquet(STORED / "jobs.parquet")
    return jobs.filter((pl.col("stage") == stage) & pl.col("succeeded") & (pl.col("outcome") == "succeeded"))


def test_shipped_run_is_small_and_has_no_videos():
    size = sum(path.stat().st_size for path in STORED.rglob("*") if path.is_file())
    assert size < 1_000_000
    assert not list(STORED.rglob("*.mp4"))


def test_rendering_writes_every_figure_table_and_report(rendered):
    for name in ONE_ROUND_FIGURES:
        png, svg = rendered / "figures" / f"{name}.png", rendered / "figures" / f"{name}.svg"
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), png
        assert ElementTree.parse(svg).getroot().tag.endswith("svg"), svg
    for table in TABLES:
        assert (rendered / "latex" / f"{table}.tex").read_text().count("\\toprule") == 1
        assert len(list(csv.reader((rendered / "csv" / f"{table}.csv").open()))) > 1
    assert (rendered / "integration_performance_report.md").is_file()
    assert (rendered / "integration_performance_report.html").is_file()
    for name in ROUND_FIGURES:  # a run of one round has no per-round figure or table
        assert not (rendered / "figures" / f"{name}.png").exists()
    for table in ROUND_TABLES:
        assert not (rendered / "csv" / f"{table}.csv").exists() and not (rendered / "latex" / f"{table}.tex").exists()


def test_every_main_table_of_the_reports_is_exported(metrics):
    assert [table.key for table in paper_tables(metrics)] == [*main_tables(metrics), "environment"]


def test_write_figures_returns_what_it_drew(metrics, tmp_path):
    drawn = write_figures(metrics, tmp_path)
    assert [figure.name for figure in drawn] == ONE_ROUND_FIGURES
    for figure in drawn:
        assert figure.png == f"figures/{figure.name}.png" and (tmp_path / figure.png).is_file()
        assert figure.svg == f"figures/{figure.name}.svg" and (tmp_path / figure.svg).is_file()
        assert "n=" in figure.caption, figure
    again = tmp_path / "again"
    write_figures(metrics, again)
    assert (again / drawn[0].svg).read_bytes() == (tmp_path / drawn[0].svg).read_bytes()  # no date, no random ids


def test_a_server_that_reports_no_phases_gets_no_phase_figure_and_the_reports_say_why(metrics, tmp_path):
    """Its jobs may still hold a queued time (polled while pending), which is no phase of the server's own."""
    no_phases = metrics.model_copy(update={"unreported": {
        "phase": "the server reports no phases: time per phase not measured"}})
    assert [figure.name for figure in left_out(no_phases)] == ["phases"]
    drawn = write_figures(no_phases, tmp_path)
    assert "phases" not in [figure.name for figure in drawn] and not (tmp_path / "figures" / "phases.png").exists()
    text = render_reports(no_phases, drawn, left_out(no_phases))["test_single_request.md"]
    assert "- Time per phase: not drawn, the server reports no phases: time per phase not measured." in text
    assert "phases.png" not in text
    assert left_out(metrics) == []


def test_nothing_measured_draws_nothing_and_writes_no_table(tmp_path):
    empty = compute_metrics({}, {}, [])
    assert write_figures(empty, tmp_path) == []
    assert write_latex_tables(empty, tmp_path) == []
    assert write_csv_tables(empty, tmp_path) == []
    assert not list((tmp_path / "figures").iterdir())


def test_job_time_points_are_the_parquet_medians_and_the_reports_intervals(metrics):
    verified = _verified("concurrent")
    points = {point.level: point for point in concurrency_points(metrics) if point.statistic == "median"}
    assert sorted(points) == sorted(verified["level"].unique().to_list()) == [1, 2, 5]
    for level, point in points.items():
        seconds = verified.filter(pl.col("level") == level)["total_seconds"].to_list()
        assert point.n == len(seconds)
        assert point.value == pytest.approx(float(np.median(seconds)), rel=1e-12)
        recomputed = distribution(seconds, "s")  # the stats rule, applied to the raw Parquet values
        reported = next(group for group in metrics.levels if group.level == level).seconds
        if len(seconds) >= 5:
            assert (point.low, point.high) == (recomputed.ci.low, recomputed.ci.high)
            assert (point.low, point.high) == (reported.ci.low, reported.ci.high)
        else:
            assert point.low is None and reported.ci is None


def test_cdf_latency_phase_and_timeline_series_match_the_parquet_tables(metrics):
    verified = _verified("concurrent")
    for level in metrics.series.job_seconds:
        expected = sorted(verified.filter(pl.col("level") == level.level)["total_seconds"].to_list())
        assert level.seconds == expected

    latency = pl.read_parquet(STORED / "latency.parquet")
    for endpoint in metrics.series.latency_ms:
        probes = latency.filter(pl.col("endpoint") == endpoint.endpoint)
        answered = probes.filter(pl.col("ok") & pl.col("ms").is_not_null())["ms"].to_list()
        assert endpoint.ms == answered
        assert endpoint.unanswered == probes.height - len(answered)
        shown = next(e for e in metrics.latency if e.endpoint == endpoint.endpoint).answered
        assert shown.n == len(answered) and shown.median == pytest.approx(float(np.median(answered)))

    for group in metrics.series.phases:  # a job's phases split its end-to-end time, so the means add up
        assert sum(group.seconds.values()) == pytest.approx(group.total_seconds, rel=1e-9)
    sequential = _verified("sequential")
    phases = next(group for group in metrics.series.phases if group.stage == "sequential")
    assert phases.n == sequential.height
    assert phases.seconds["compose_s"] == pytest.approx(sequential["compose_s"].fill_null(0).mean())

    samples = pl.read_parquet(STORED / "samples.parquet").filter(pl.col("service") != "machine")
    for timeline in metrics.series.timelines:
        rows = samples.filter(pl.col("service") == timeline.service).sort("t")
        assert len(timeline.t) == rows.height
        assert timeline.rss_mb == pytest.approx((rows["rss_bytes"] / 2**20).to_list())


def test_csv_holds_full_precision_with_separate_intervals(rendered, metrics):
    rows = list(csv.DictReader((rendered / "csv" / "concurrency-summary.csv").open()))
    by_level = {int(row["level"]): row for row in rows}
    level5 = next(group for group in metrics.levels if group.level == 5)
    row = by_level[5]
    assert float(row["job_median_s"]) == level5.seconds.median  # exact: not rounded
    assert float(row["job_median_s_ci95_low"]) == level5.seconds.ci.low
    assert float(row["job_median_s_ci95_high"]) == level5.seconds.ci.high
    assert float(row["success_fraction_ci95_low"]) == level5.success.ci.low
    assert by_level[1]["job_median_s_ci95_low"] == "" and by_level[1]["job_p95_s"] == ""  # n=1 supports neither
    usage = next(csv.DictReader((rendered / "csv" / "resource-usage.csv").open()))
    assert {"cpu_mean_pct_of_one_core", "rss_peak_mb"} <= set(usage)


def test_latex_prints_values_with_their_interval(rendered, metrics):
    text = (rendered / "latex" / "concurrency-summary.tex").read_text()
    level5 = next(group for group in metrics.levels if group.level == 5).seconds
    assert f"{level5.median:.2f}\\\\{{}}[{level5.ci.low:.2f}, {level5.ci.high:.2f}]" in text  # the interval below
    assert "success\\\\{}\\%" in text and text.isascii()  # a header over lines


def test_latex_escapes_special_characters():
    assert escape("50% of a_b & c#1 {x} ~ ^ \\ $") == \
        r"50\% of a\_b \& c\#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{} \$"
    assert escape("p95 ≤ 250 ms — café…") == r"p95 $\leq$ 250 ms --- cafe\ldots{}"
    assert escape("two\nlines") == "two lines"


OVERFULL_PT = 2.0  # a table this much wider than the text is still drawn within the margin


def _compile(tables: list[Path], tmp_path: Path) -> subprocess.CompletedProcess:
    """The tables in a standard `article` (10 pt, its own margins), each in a table float as a paper would put it."""
    engine = shutil.which("pdflatex") or shutil.which("lualatex")
    inputs = "\n".join(f"\\begin{{table}}[p]\\input{{{table.as_posix()}}}\\caption{{{table.stem}}}\\end{{table}}"
                       for table in tables)
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs,tabularx}\n"
        "\\begin{document}\n" + inputs + "\n\\end{document}\n")
    return subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def _too_wide(tmp_path: Path) -> list[float]:
    """How much wider than the text each overfull line of the compiled tables is, in pt (above OVERFULL_PT)."""
    log = (tmp_path / "paper.log").read_text(errors="replace")
    widths = re.findall(r"Overfull \\hbox \(([0-9.]+)pt too wide\)", log)
    return [float(pt) for pt in widths if float(pt) > OVERFULL_PT]


@pytest.mark.skipif(not (shutil.which("pdflatex") or shutil.which("lualatex")), reason="no TeX engine installed")
def test_latex_tables_compile_within_a_standard_articles_text_width(rendered, tmp_path):
    done = _compile([rendered / "latex" / f"{table}.tex" for table in TABLES], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert _too_wide(tmp_path) == []


def test_stored_environment_is_in_the_metrics(metrics):
    manifest = json.loads((STORED / "manifest.json").read_text())
    shown = metrics.environment
    assert shown.recorded
    assert shown.cpu_cores == manifest["machine"]["cpu_count"] and shown.os and shown.kernel and shown.cpu_model
    assert shown.packages["prefect"] and shown.packages["polars"] and shown.pyav_ffmpeg and shown.libav["libavcodec"]
    assert shown.espeak_ng and shown.redis == manifest["services"]["redis"]["version"]
    assert shown.llm_model == "extractive-planner" and len(shown.llm_digest) == 64
    assert shown.project_version and len(shown.git_commit) == 40
    canonical = json.dumps(manifest["profile"], sort_keys=True, separators=(",", ":")).encode()
    assert shown.profile_sha256 == hashlib.sha256(canonical).hexdigest()  # anyone can check it


def test_a_run_without_an_environment_says_so():
    assert not compute_metrics({}, {"machine": {"cpu_count": 2}}, []).environment.recorded


def test_environment_capture_holds_versions_and_no_secret():
    profile = load_profile("smoke", ["target.bundled_stack=false", "target.server_url=http://127.0.0.1:1",
                                     "target.tts_url=http://127.0.0.1:2", "target.llm_url=http://127.0.0.1:3",
                                     "target.redis_url=redis://:hunter2secret@127.0.0.1:4/0"])
    captured = environment(profile)
    assert "hunter2secret" not in json.dumps(captured)
    assert captured["espeak_ng"] is None  # a remote target's TTS is not this machine's eSpeak NG
    assert captured["project"]["version"] and captured["packages"]["great_expectations"]
    shown = json.loads(json.dumps(profile.model_dump(mode="json")).replace("hunter2secret", "***"))
    canonical = json.dumps(shown, sort_keys=True, separators=(",", ":")).encode()
    assert profile_sha256(profile) == hashlib.sha256(canonical).hexdigest()
    assert machine()["cpu_count"] >= 1


def test_the_manifest_records_the_bundled_llms_digest(tmp_path):
    """open_run records the environment, record_services the digest the LLM's model list gives (the bundled
    stand-in's digest is the sha256 of its planner's source)."""
    planner = ROOT / "stack" / "llm" / "planner.py"
    profile = load_profile("smoke", [f"results_dir={tmp_path}"])
    run_dir = Path(open_run.fn(profile, "digest-run"))
    with service_process("stack.llm", "/api/version") as run:
        url = str(run.http.base_url).rstrip("/")
        services = Services(server="http://127.0.0.1:1", tts="http://127.0.0.1:2", llm=url,
                            redis="redis://127.0.0.1:3/0", llm_model="extractive-planner")
        record_services.fn(str(run_dir), services, [{"service": "llm", "ok": True, "version": "0.1.0"}])
        assert llm_digest(url, "no-such-model", "/api/tags", 10) is None
    recorded = json.loads((run_dir / "manifest.json").read_text())
    assert recorded["services"]["llm_digest"] == hashlib.sha256(planner.read_bytes()).hexdigest()
    assert recorded["environment"]["profile_sha256"] == profile_sha256(profile)
    assert llm_digest(url, "extractive-planner", "/api/tags", 2) is None  # stopped: no answer, no digest


def _job(job_id, level, seconds, outcome="succeeded", **extra):
    ended = outcome != "running"
    return {"job_id": job_id, "stage": "concurrent", "level": level, "batch": 0, "slot": int(job_id[-1]),
            "submitted_at": 100.0, "finished_at": 100.0 + seconds if ended else None,
            "total_seconds": seconds if ended else None, "outcome": outcome, "succeeded": outcome == "succeeded",
            **extra}


def test_the_resource_timeline_shades_samples_of_every_stage_up_to_the_faults(tmp_path):
    """The sampler labels each sample with its stage (today baseline, single, concurrent; tomorrow every stage up to
    the faults): each sampled stage is shaded, the faults apart, and a service without samples for a while (killed
    by a fault) has a gap, not a line across it."""
    frames = load_tables(STORED)
    spans = frames["stages"].filter(pl.col("finished_at").is_not_null()).sort("started_at").to_dicts()
    rows = []
    for span in spans:
        t = span["started_at"]
        while t < span["finished_at"]:
            for service in ("server", "tts"):
                killed = span["stage"] == "faults" and service == "tts" and t - span["started_at"] < 10
                if not killed:
                    rows.append({"stage": span["stage"], "round": 1, "t": t, "service": service, "processes": 1,
                                 "cpu_percent": 10.0, "rss_bytes": 100 * 2**20})
            t += 0.5
    metrics = compute_metrics({**frames, "samples": frame("samples", rows)},
                              json.loads((STORED / "manifest.json").read_text()), [])
    shaded = shaded_spans(metrics)
    assert [span.stage for span in shaded] == [span["stage"] for span in spans]
    assert [span.stage for span in shaded if span.fault] == ["faults"]
    assert next(span for span in shaded if span.stage == "faults").label == "faults"  # 45 s of 76: room for it
    assert next(span for span in shaded if span.stage == "latency").label == "5"  # 1 s: shaded, numbered
    tts = next(timeline for timeline in metrics.series.timelines if timeline.service == "tts")
    xs, ys = with_gaps(tts.t, tts.cpu_percent)
    assert sum(y != y for y in ys) == 1 and len(xs) == len(tts.t) + 1  # one break: the 10 s without tts
    drawn = {figure.name: figure for figure in write_figures(metrics, tmp_path)}
    caption = drawn["resources"].caption
    assert ("shaded in turn (1 verification, 2 baseline, 3 single, 4 concurrent, 5 latency, 6 sequential, 7 "
            "conformance, 8 faults; a stage too short for its name is numbered on the plot)") in caption
    assert "the fault experiments' stage in red" in caption


def test_partial_data_draws_only_what_it_has(tmp_path):
    """A run cut off mid-stage with no verified success, an endpoint that never answered, a service whose first
    sample has no CPU yet: only the resource figure is drawn, every table with rows is written."""
    jobs = [_job("j0", 2, 5.0, "failed", failure="server said failed"), _job("j1", 2, 0.0, "running")]
    samples = [{"stage": "concurrent", "t": 101.0 + i, "service": "server", "processes": 1,
                "cpu_percent": None if i == 0 else 50.0, "rss_bytes": 100 * 2**20} for i in range(3)]
    latency = [{"endpoint": "status", "i": i, "t": 1.0, "ms": None, "ok": False, "error_kind": "timeout"}
               for i in range(3)]
    stages = [{"stage": "concurrent", "started_at": 100.0, "finished_at": None, "outcome": "running"}]
    metrics = compute_metrics(
        {"jobs": frame("jobs", jobs), "samples": frame("samples", samples), "latency": frame("latency", latency),
         "stages": frame("stages", stages)},
        {"started_at": "1970-01-01T00:01:40+00:00", "machine": {"cpu_count": 2}, "outcome": "running"}, [])
    drawn = {figure.name: figure for figure in write_figures(metrics, tmp_path)}
    assert set(drawn) == {"resources"}  # no verified job, no answered probe: their figures are not drawn
    health = [{"endpoint": "health", "i": i, "t": 1.0, "ms": 2.0 + i, "ok": True} for i in range(4)]
    answered = compute_metrics({"latency": frame("latency", health + latency)}, {}, [])
    (figure,) = write_figures(answered, tmp_path)
    assert figure.name == "api_latency" and "health n=4, status n=0" in figure.caption
    assert "Probes without the expected answer, not drawn: status 3." in figure.caption
    assert not (tmp_path / "figures" / "job_time_vs_concurrency.png").exists()
    written = ["concurrency-summary", "api-latency-summary", "resource-usage", "per-job-memory"]  # no video
    assert write_latex_tables(metrics, tmp_path) == [f"latex/{table}.tex" for table in written]
    assert write_csv_tables(metrics, tmp_path) == [f"csv/{table}.csv" for table in written]
    row = next(csv.DictReader((tmp_path / "csv" / "concurrency-summary.csv").open()))
    assert row["job_n"] == "0" and row["job_median_s"] == "" and row["interrupted_jobs"] == "1"


# ---- a campaign of several rounds (hand-made, tests/rounds_run.py) ---------------------------------

@pytest.fixture(scope="module")
def rounds():
    return rounds_metrics()


def test_rounds_draw_success_and_job_time_per_round(rounds, tmp_path):
    drawn = {figure.name: figure for figure in write_figures(rounds, tmp_path)}
    assert set(ROUND_FIGURES) <= set(drawn)
    success = drawn["success_per_round"].caption
    assert "n=2 in each of 4 rounds); bars: 95 % Wilson interval (from n ≥ 5), none in any round (n < 5)" in success
    assert "pooled over every round (7 of 8)" in success
    assert "Cochran–Armitage" in success
    assert "level 2: round 1 n=2, round 2 n=2, round 3 n=2, round 4 n=1" in drawn["job_time_per_round"].caption
    assert ElementTree.parse(tmp_path / drawn["success_per_round"].svg).getroot().tag.endswith("svg")


def test_the_per_round_table_is_one_definition_for_csv_and_latex(rounds, tmp_path):
    assert "latex/rounds.tex" in write_latex_tables(rounds, tmp_path)
    assert "csv/round-trends.csv" in write_csv_tables(rounds, tmp_path)
    rows = list(csv.DictReader((tmp_path / "csv" / "rounds.csv").open()))
    assert [int(row["round"]) for row in rows] == [1, 2, 3, 4]
    fourth = rounds.rounds.per_round[3]
    assert float(rows[3]["success_fraction"]) == fourth.success.value == 0.5
    health = fourth.latency[0].answered
    assert float(rows[3]["latency_health_median_ms"]) == health.median and rows[3]["latency_health_n"] == "5"
    assert float(rows[3]["latency_health_median_ms_ci95_low"]) == health.ci.low
    assert float(rows[2]["downtime_before_s"]) == 12.5 and rows[0]["downtime_before_s"] == ""
    assert {"server_rss_mean_mb", "tts_cpu_mean_pct_of_one_core", "job_level2_median_s"} <= set(rows[0])
    text = (tmp_path / "latex" / "rounds.tex").read_text()
    level2 = next(group for group in fourth.levels if group.level == 2).seconds
    assert f"& {level2.median:.2f} &" in text and "health" not in text and text.isascii()  # per endpoint: CSV only
    trends_tex = (tmp_path / "latex" / "round-trends.tex").read_text()
    server_rss = rounds.rounds.rss_trends[0]
    assert f"{server_rss.slope:.4g}\\\\{{}}[{server_rss.ci.low:.4g}, {server_rss.ci.high:.4g}]" in trends_tex
    trends = {row["what"]: row for row in csv.DictReader((tmp_path / "csv" / "round-trends.csv").open())}
    server = rounds.rounds.rss_trends[0]
    assert float(trends["server RSS"]["slope_ci95_low"]) == server.ci.low
    assert trends["server RSS"]["significant"] == "true"
    assert trends["success rate"]["test"] == "Cochran–Armitage" and trends["success rate"]["slope_ci95_low"] == ""


def test_every_main_table_of_a_campaign_of_rounds_is_exported(rounds):
    assert [table.key for table in paper_tables(rounds)] == [*main_tables(rounds), "environment"]
    assert len(main_tables(rounds)["rounds"]) == 4 and len(main_tables(rounds)["round-trends"]) == 6


@pytest.mark.skipif(not (shutil.which("pdflatex") or shutil.which("lualatex")), reason="no TeX engine installed")
def test_latex_tables_of_rounds_compile(rounds, tmp_path):
    write_latex_tables(rounds, tmp_path)
    done = _compile([tmp_path / "latex" / f"{table}.tex" for table in ROUND_TABLES], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert _too_wide(tmp_path) == []
