"""A run's figures as PNG and SVG files under `reports/figures/`, drawn from its `RunMetrics` only.

Every number drawn is one RunMetrics holds (the summary figures, or `metrics.series` for the raw values a
CDF or a timeline needs); this module computes none. A figure whose data is absent is not drawn, and
`write_figures` returns the ones it drew, each with a caption that carries its n, for the reports to
show (`<img>` in HTML, a link in Markdown). Matplotlib draws off screen (Agg), without pyplot's global
state, and the files carry no date, so a run rendered twice gives the same SVG.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")  # no display: before anything else of matplotlib is imported

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from analysis.metrics import RunMetrics  # noqa: E402
from analysis.series import PHASES  # noqa: E402

FOLDER = "figures"  # under reports/
DPI = 150
WIDTH_IN, HEIGHT_IN = 7.0, 4.0
LABELLED_ROUNDS = 20  # up to this many rounds, each is ticked and its point labelled; beyond, they would overlap
PHASE_NAMES = {"queued_s": "queued", "script_s": "script", "audio_s": "audio", "visual_s": "visual",
               "compose_s": "compose"}
# SVG ids are random unless salted; PNG and SVG carry no creation date
SAVE_OPTIONS = {"png": {"dpi": DPI, "metadata": {"Software": None}}, "svg": {"metadata": {"Date": None}}}
matplotlib.rcParams["svg.hashsalt"] = "t2v-bench"


class DrawnFigure(NamedTuple):
    """A figure written under reports/: its paths are relative to reports/ (e.g. figures/job_time_cdf.png)."""

    name: str
    title: str
    png: str
    svg: str
    caption: str


class LeftOut(NamedTuple):
    """A figure the reports list but that was not drawn, with why (the server never reports what it shows)."""

    name: str
    title: str
    why: str


class ConcurrencyPoint(NamedTuple):
    """One plotted point of job time vs concurrency: a statistic of a level's verified successes, with the
    bounds of its 95 % confidence interval where the report has one."""

    level: int
    statistic: str  # "median" | "p95"
    value: float
    low: float | None
    high: float | None
    n: int


def concurrency_points(metrics: RunMetrics) -> list[ConcurrencyPoint]:
    """The median of every level with a verified success and the p95 where n supports one, each with the
    report's interval when it is the interval of that statistic."""
    points = []
    for group in metrics.levels:
        figure = group.seconds
        for statistic, value in (("median", figure.median), ("p95", figure.p95)):
            if value is None or group.level is None:
                continue
            ci = figure.ci if figure.ci_of == statistic else None
            points.append(ConcurrencyPoint(level=group.level, statistic=statistic, value=value,
                                           low=ci.low if ci else None, high=ci.high if ci else None, n=figure.n))
    return points


def _n_list(pairs: list[tuple[str, int]]) -> str:
    return ", ".join(f"{label} n={n}" for label, n in pairs)


def _job_time_vs_concurrency(metrics: RunMetrics, figure: Figure) -> str | None:
    points = concurrency_points(metrics)
    if not points:
        return None
    axes = figure.subplots()
    for statistic, marker in (("median", "o"), ("p95", "s")):
        chosen = [p for p in points if p.statistic == statistic]
        if not chosen:
            continue
        low = [p.value - p.low if p.low is not None else 0.0 for p in chosen]
        high = [p.high - p.value if p.high is not None else 0.0 for p in chosen]
        axes.errorbar([p.level for p in chosen], [p.value for p in chosen], yerr=[low, high], marker=marker,
                      capsize=4, label=statistic)
        for p in chosen:
            axes.annotate(f"n={p.n}", (p.level, p.value), textcoords="offset points", xytext=(6, 6), fontsize=8)
    levels = sorted({p.level for p in points})
    limit = metrics.max_concurrent_jobs
    queueing = limit is not None and levels[-1] > limit
    if queueing:
        axes.axvline(limit, color="grey", linestyle="--", linewidth=1)
        axes.annotate(f"the target runs at most {limit} jobs at once", (limit, 0), textcoords="offset points",
                      xytext=(4, 4), fontsize=8, color="grey")
    axes.set_xticks(levels)
    axes.set_xlabel("concurrent jobs (concurrency level)")
    axes.set_ylabel("end-to-end job time (s)")
    axes.set_ylim(bottom=0)
    axes.legend()
    bars = [p for p in points if p.low is not None]
    without = sorted({p.level for p in points} - {p.level for p in bars})
    return ("End-to-end seconds of the verified successes per concurrency level "
            f"({_n_list([(f'level {g.level}', g.seconds.n) for g in metrics.levels if g.seconds.n])}); bars: 95 % "
            "confidence interval of the statistic drawn (bootstrap; from n ≥ 5)"
            + (f"; no interval at {'level' if len(without) == 1 else 'levels'} {', '.join(map(str, without))} (n < 5)"
               if without else "") + "."
            + (f" The target runs at most {limit} jobs at once (dashed line): levels above {limit} measure queueing."
               if queueing else ""))


def _job_time_cdf(metrics: RunMetrics, figure: Figure) -> str | None:
    levels = [level for level in metrics.series.job_seconds if level.seconds]
    if not levels:
        return None
    axes = figure.subplots()
    for level in levels:
        n = len(level.seconds)
        axes.ecdf(level.seconds, label=f"level {level.level} (n={n})")
    axes.set_xlabel("end-to-end job time (s)")
    axes.set_ylabel("share of verified successes")
    axes.legend()
    return ("Empirical distribution (CDF) of the end-to-end seconds of the verified successes per concurrency "
            f"level ({_n_list([(f'level {level.level}', len(level.seconds)) for level in levels])}).")


def _group_label(stage: str, level: int | None) -> str:
    return f"level {level}" if stage == "concurrent" else stage


def _phases(metrics: RunMetrics, figure: Figure) -> str | None:
    groups = metrics.series.phases
    if not groups:
        return None
    axes = figure.subplots()
    labels = [f"{_group_label(g.stage, g.level)} (n={g.n})" for g in groups]
    rows = list(range(len(groups)))
    left = [0.0] * len(groups)
    for phase in PHASES:
        widths = [g.seconds[phase] for g in groups]
        if any(widths):
            axes.barh(rows, widths, left=left, label=PHASE_NAMES[phase])
            left = [a + b for a, b in zip(left, widths, strict=True)]
    totals = [(row, g.total_seconds) for row, g in zip(rows, groups, strict=True) if g.total_seconds is not None]
    axes.scatter([t for _, t in totals], [row for row, _ in totals], marker="D", color="black", zorder=3,
                 label="end-to-end")
    axes.set_yticks(rows, labels)
    axes.invert_yaxis()
    axes.set_xlabel("mean seconds")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    unseen = [f"{_group_label(g.stage, g.level)}: {', '.join(PHASE_NAMES[p] for p in PHASES if g.seen[p] < g.n)}"
              for g in groups if any(g.seen[p] < g.n for p in PHASES)]
    return ("Mean seconds per phase of the verified successes, as polled: a job's phases split its end-to-end time "
            "(the diamond: their mean end-to-end seconds); a phase no poll saw counts 0 s, its time counted in the "
            "phase seen before it; "
            f"{_n_list([(_group_label(g.stage, g.level), g.n) for g in groups])}."
            + (f" Phases not seen in every job: {'; '.join(unseen)}." if unseen else ""))


FAULT_STAGE = "faults"  # services are killed, frozen and slowed on purpose there: shaded apart
LABEL_CHAR_FRACTION = 0.012  # the share of the time axis one character of a stage's label takes (7 in wide, 8 pt)
GAP_INTERVALS = 3  # a service's samples further apart than this many of its usual intervals: no line across the gap


class ShadedSpan(NamedTuple):
    """A stage's span on the resource timeline, as shaded, and its label: its name where there is room for it,
    else its number in time order (the caption names it)."""

    stage: str
    round: int
    start_s: float
    end_s: float
    label: str | None
    fault: bool


def shaded_spans(metrics: RunMetrics) -> list[ShadedSpan]:
    """Every stage with resource samples, whatever stage the sampler labelled them with (baseline to faults), in
    time order: over several rounds each round is named at its first stage; otherwise each stage by its name
    where its span is wide enough for it, else by its number (a stage of a second beside one of a minute)."""
    timelines = [timeline for timeline in metrics.series.timelines if timeline.t]
    if not timelines:
        return []
    sampled = {stage for timeline in timelines for stage in timeline.stage}
    last = max(max(timeline.t) for timeline in timelines)
    spans = [span for span in metrics.series.stages if span.stage in sampled]
    first = min([span.start_s for span in spans] + [min(timeline.t) for timeline in timelines])
    width = max([last] + [span.end_s for span in spans if span.end_s is not None]) - first
    rounds = metrics.rounds.count > 1  # many spans: each round is named once, at its first, not each stage
    shaded, named = [], set()
    for number, span in enumerate(spans, start=1):
        end = span.end_s if span.end_s is not None else last
        if rounds:
            label = f"round {span.round}" if span.round not in named else None
            named.add(span.round)
        else:
            room = width > 0 and (end - span.start_s) / width >= LABEL_CHAR_FRACTION * (len(span.stage) + 1)
            label = span.stage if room else str(number)
        shaded.append(ShadedSpan(stage=span.stage, round=span.round, start_s=span.start_s, end_s=end, label=label,
                                 fault=span.stage == FAULT_STAGE))
    return shaded


def _shade_stages(spans: list[ShadedSpan], axes: Axes, labelled: bool, rounds: bool) -> None:
    for i, span in enumerate(spans):
        axes.axvspan(span.start_s, span.end_s, color="tab:red" if span.fault else "grey",
                     alpha=0.08 if i % 2 else 0.16, linewidth=0)
        if labelled and span.label:
            axes.text((span.start_s + span.end_s) / 2 if not rounds else span.start_s, 1.02, span.label,
                      transform=axes.get_xaxis_transform(), ha="center" if not rounds else "left", fontsize=8)


def with_gaps(t: list[float], values: list[float | None]) -> tuple[list[float], list[float]]:
    """A service's points with a break (NaN) where its samples stop for longer than GAP_INTERVALS of its usual
    interval (killed, or not found again yet, during a fault experiment), so that no line claims values across
    the gap."""
    steps = sorted(b - a for a, b in zip(t, t[1:], strict=False))
    usual = steps[len(steps) // 2] if steps else 0.0
    xs: list[float] = []
    ys: list[float] = []
    for i, (x, y) in enumerate(zip(t, values, strict=True)):
        if i and usual > 0 and x - t[i - 1] > GAP_INTERVALS * usual:
            xs.append((x + t[i - 1]) / 2)
            ys.append(float("nan"))
        xs.append(x)
        ys.append(y if y is not None else float("nan"))
    return xs, ys


def _resources(metrics: RunMetrics, figure: Figure) -> str | None:
    timelines = [timeline for timeline in metrics.series.timelines if timeline.t]
    if not timelines:
        return None
    cpu_axes, rss_axes = figure.subplots(2, 1, sharex=True)
    for timeline in timelines:
        cpu_axes.plot(*with_gaps(timeline.t, timeline.cpu_percent), label=timeline.service, linewidth=1)
        rss_axes.plot(*with_gaps(timeline.t, timeline.rss_mb), label=timeline.service, linewidth=1)
    spans, rounds = shaded_spans(metrics), metrics.rounds.count > 1
    _shade_stages(spans, cpu_axes, labelled=True, rounds=rounds)
    _shade_stages(spans, rss_axes, labelled=False, rounds=rounds)
    cores = metrics.environment.cpu_cores or metrics.machine.cpu_count
    cpu_axes.set_ylabel("CPU % of one core")
    rss_axes.set_ylabel("RSS (MB)")
    rss_axes.set_xlabel("seconds since the run started")
    cpu_axes.legend(fontsize=8, ncols=len(timelines), loc="upper left")
    numbered = not rounds and any(span.label != span.stage for span in spans)
    stages = ([f"{number} {span.stage}" for number, span in enumerate(spans, start=1)] if numbered
              else list(dict.fromkeys(span.stage for span in spans)))
    machine = f"; the machine has {cores} cores, so at most {cores * 100} %" if cores else ""
    return ("CPU and resident memory (MB of 2^20 bytes) of each service at each sampling instant through the stages "
            f"sampled, shaded in turn ({', '.join(stages)}"
            + ("; a stage too short for its name is numbered on the plot" if numbered else "") + ")"
            + ("; the fault experiments' stage in red (services killed, frozen and slowed on purpose; a gap in a "
               "line: no process of that service was found)" if any(span.fault for span in spans) else "")
            + f"; {_n_list([(t.service, len(t.t)) for t in timelines])} samples. CPU is % of one core (100 = one core "
            f"busy{machine}).")


def _latency(metrics: RunMetrics, figure: Figure) -> str | None:
    endpoints = metrics.series.latency_ms
    if not any(endpoint.ms for endpoint in endpoints):  # no answer at all: nothing to draw, the reports say why
        return None
    axes = figure.subplots()
    labels = [f"{e.endpoint}\n(n={len(e.ms)})" if e.ms else f"{e.endpoint}\n(no answer)" for e in endpoints]
    axes.boxplot([e.ms or [float("nan")] for e in endpoints], tick_labels=labels, showfliers=True)
    axes.set_yscale("log")
    plain = FuncFormatter(lambda value, _position: f"{value:g}")  # 0.5, not 5 × 10^-1
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_formatter(plain)
    axes.set_ylabel("answer time (ms, log scale)")
    unanswered = [f"{e.endpoint} {e.unanswered}" for e in endpoints if e.unanswered]
    return ("Time of each answer per API endpoint, answered probes only (box: quartiles; whiskers: 1.5 × the "
            f"interquartile range; dots beyond); {_n_list([(e.endpoint, len(e.ms)) for e in endpoints])}."
            + (f" Probes without the expected answer, not drawn: {', '.join(unanswered)}." if unanswered else ""))


def _per_round_n(counts: list[tuple[int, int]]) -> str:
    """"n=6 in each of 3 rounds", or "round 1 n=2, round 2 n=1" when they differ."""
    if len({n for _, n in counts}) == 1:
        return f"n={counts[0][1]} in each of {len(counts)} rounds"
    return _n_list([(f"round {number}", n) for number, n in counts])


def _round_axis(axes: Axes, rounds: list[int]) -> None:
    """Rounds on the x axis: each one ticked while they are few, whole numbers only beyond."""
    if len(rounds) <= LABELLED_ROUNDS:
        axes.set_xticks(rounds)
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("round")


def _success_per_round(metrics: RunMetrics, figure: Figure) -> str | None:
    per_round = [figures for figures in metrics.rounds.per_round if figures.success.n]
    if len(metrics.rounds.per_round) < 2 or not per_round:
        return None
    axes = figure.subplots()
    rounds = [figures.round for figures in per_round]
    shares = [figures.success.value * 100 for figures in per_round]
    low = [share - figures.success.ci.low * 100 if figures.success.ci else 0.0
           for share, figures in zip(shares, per_round, strict=True)]
    high = [figures.success.ci.high * 100 - share if figures.success.ci else 0.0
            for share, figures in zip(shares, per_round, strict=True)]
    axes.errorbar(rounds, shares, yerr=[low, high], marker="o", capsize=4, linestyle="-")
    labelled = len(per_round) <= LABELLED_ROUNDS
    for figures, share in zip(per_round, shares, strict=True) if labelled else ():
        axes.annotate(f"{figures.success.k}/{figures.success.n}", (figures.round, share), textcoords="offset points",
                      xytext=(6, -12), fontsize=8)
    pooled = metrics.rounds.pooled_success
    if pooled.value is not None:
        axes.axhline(pooled.value * 100, color="grey", linestyle="--", linewidth=1, label="pooled")
        axes.legend(loc="lower left")
    _round_axis(axes, rounds)
    axes.set_ylabel("verified successes (%)")
    axes.set_ylim(-5, 105)
    without = [figures.round for figures in per_round if figures.success.ci is None]
    trend = metrics.rounds.success_trend
    return ("Share of each round's jobs that delivered a verified video (jobs that reached an outcome"
            + ("; k/n beside each point" if labelled else "")
            + f"; {_per_round_n([(f.round, f.success.n) for f in per_round])}); bars: 95 % Wilson interval (from "
            "n ≥ 5)"
            + ("" if not without else ", none in any round (n < 5)" if len(without) == len(per_round) else
               f", none for {'round' if len(without) == 1 else 'rounds'} {', '.join(map(str, without))} (n < 5)")
            + f"; dashed: pooled over every round ({pooled.k} of {pooled.n})."
            + (f" {trend.sentence[:1].upper()}{trend.sentence[1:]}." if trend else ""))


def _job_time_per_round(metrics: RunMetrics, figure: Figure) -> str | None:
    per_round = metrics.rounds.per_round
    levels = sorted({g.level for figures in per_round for g in figures.levels if g.level is not None and g.seconds.n})
    if len(per_round) < 2 or not levels:
        return None
    axes = figure.subplots()
    counts = []
    for level in levels:
        points = [(figures.round, group.seconds) for figures in per_round for group in figures.levels
                  if group.level == level and group.seconds.n]
        ci = [(seconds.ci if seconds.ci_of == "median" else None) for _, seconds in points]
        axes.errorbar([r for r, _ in points], [seconds.median for _, seconds in points],
                      yerr=[[s.median - c.low if c else 0.0 for (_, s), c in zip(points, ci, strict=True)],
                            [c.high - s.median if c else 0.0 for (_, s), c in zip(points, ci, strict=True)]],
                      marker="o", capsize=4, label=f"level {level}")
        counts.append((f"level {level}", _per_round_n([(r, seconds.n) for r, seconds in points])))
    _round_axis(axes, [figures.round for figures in per_round])
    axes.set_ylabel("median end-to-end job time (s)")
    axes.set_ylim(bottom=0)
    axes.legend()
    return ("Median end-to-end seconds of each round's verified successes per concurrency level; bars: 95 % "
            "confidence interval of the median (bootstrap, from n ≥ 5); "
            + "; ".join(f"{label}: {counts_text}" for label, counts_text in counts) + ".")


# name → (title, drawing function): a function returns its caption, or None when its data is absent
FIGURES: dict[str, tuple[str, Callable[[RunMetrics, Figure], str | None]]] = {
    "job_time_vs_concurrency": ("Job time vs concurrency", _job_time_vs_concurrency),
    "job_time_cdf": ("Job-time distribution per concurrency level", _job_time_cdf),
    "phases": ("Time per phase", _phases),
    "resources": ("CPU and memory per service", _resources),
    "api_latency": ("API latency per endpoint", _latency),
    # drawn from 2 rounds on (a campaign of one round has no per-round figure)
    "success_per_round": ("Success per round", _success_per_round),
    "job_time_per_round": ("Job time per round", _job_time_per_round),
}
ROUND_FIGURES = ("success_per_round", "job_time_per_round")
# a figure of a server status field: left out when the server never reports it (RunMetrics.unreported), whatever
# else the jobs hold (a job polled only while pending still has a queued time, which is no phase of its own)
NEEDS_FIELD = {"phases": "phase"}


def left_out(metrics: RunMetrics) -> list[LeftOut]:
    """The figures not drawn because the server does not report their field, each with the reports' words why."""
    return [LeftOut(name=name, title=FIGURES[name][0], why=metrics.unreported[field])
            for name, field in NEEDS_FIELD.items() if field in metrics.unreported]


def write_figures(metrics: RunMetrics, reports_dir: Path) -> list[DrawnFigure]:
    """Draw every figure the run has data for into `reports_dir/figures/` (PNG and SVG); returns them in order.
    A figure of a field the server does not report is not drawn (`left_out` says why). Files of a figure that is
    no longer drawn are removed, so the folder shows only this rendering."""
    folder = reports_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    unreported = {figure.name for figure in left_out(metrics)}
    for name, (title, draw) in FIGURES.items():
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN * (1.5 if name == "resources" else 1)), layout="constrained")
        caption = None if name in unreported else draw(metrics, figure)
        paths = {kind: f"{FOLDER}/{name}.{kind}" for kind in SAVE_OPTIONS}
        if caption is None:
            for path in paths.values():
                (reports_dir / path).unlink(missing_ok=True)
            continue
        figure.suptitle(title)
        for kind, path in paths.items():
            figure.savefig(reports_dir / path, format=kind, **SAVE_OPTIONS[kind])
        drawn.append(DrawnFigure(name=name, title=title, png=paths["png"], svg=paths["svg"], caption=caption))
    return drawn
