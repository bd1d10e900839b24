"""Runs side by side: every headline figure, its change from the first run, and that change's 95 % CI.

Pure: `compare(runs)` takes each run's `RunMetrics` (analysis.metrics, the one model of a run's figures)
and returns a `Comparison`; artifacts/compare.py renders it. The FIRST run is the baseline: a later run's
change is its figure minus the first run's (absolute, in the figure's unit; relative, as a share of the
first run's figure).

The interval of a change (METHODS says the same in every comparison report):
- a median or p95 (job seconds, API latency): percentile bootstrap of the difference of the statistic,
  each run's raw values (RunMetrics.jobs, RunMetrics.series) resampled on their own, with analysis.stats'
  resamples and fixed seed, from CI_MIN_N values on each side;
- a rate (success, answered probes, video integrity): Newcombe's hybrid score interval of the difference
  of two proportions, made of each run's Wilson interval (analysis.stats.rate), from CI_MIN_N on each side;
- a figure a run has one value of (throughput, CPU and memory, rules holding, recovery seconds): none,
  and the row says why.
A change is significant where its interval excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
from pydantic import BaseModel
from scipy import stats as scipy_stats

from analysis.metrics import JobGroup, RunMetrics, plural, success_rate
from analysis.plans import setting_differences
from analysis.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CI_MIN_N,
    CONFIDENCE,
    P95_MIN_N,
    Distribution,
    Interval,
    Rate,
    clean,
    rate,
)

METHODS = (f"The first run is the baseline: a change is a later run's figure minus the first run's. Its "
           f"{CONFIDENCE * 100:.0f} % confidence interval is, for a median or p95, a percentile bootstrap of the "
           f"difference ({BOOTSTRAP_RESAMPLES} resamples of each run's raw values, fixed seed) and, for a rate, "
           f"Newcombe's hybrid score interval built from the two Wilson intervals; either from n ≥ {CI_MIN_N} on "
           "both sides. A figure a run has only one value of (throughput, CPU and memory, contract rules, "
           "recovery seconds) has no interval. A change is marked significant where its interval excludes 0; with "
           "many figures compared, about one in twenty of those that did not change is marked by chance, so read a "
           "mark as a lead to look at, not a proof.")
TOO_FEW = f"too few values for an interval (fewer than {CI_MIN_N} on a side)"
ONE_VALUE = {
    "throughput": "one wall time per level and run: no interval",
    "resources": "resource samples are a time series, not independent draws: no interval",
    "conformance": "a rule is checked, not sampled: no interval",
    "faults": "one experiment per run: no interval",
}


class Figure(BaseModel):
    """One run's value of a compared figure: `value` None where it was not measured, `missing` saying why."""

    value: float | None = None
    n: int | None = None  # the values (jobs, probes, samples) behind it
    detail: str | None = None  # "14 of 14" for a rate or a count of rules
    missing: str | None = None  # "no level 5", "too few probes for a p95 (n=12)"


class Change(BaseModel):
    """A later run's figure minus the baseline's (the first run's)."""

    absolute: float | None = None  # in the figure's unit (a rate: a share, shown in percentage points)
    relative: float | None = None  # absolute / |baseline|; None where the baseline is 0
    ci: Interval | None = None  # of `absolute`
    significant: bool | None = None  # the interval excludes 0; None without an interval
    no_interval: str | None = None  # why there is no interval, in words
    not_comparable: str | None = None  # why there is no change at all: "not comparable (B: no level 5)"


class Row(BaseModel):
    figure: str  # "median job seconds, 3 concurrent jobs"
    kind: str  # artifacts.markdown.fmt's kind of the values: rate | s | ms | ratio | pct | mb | int (a count)
    unit: str  # as shown: "%", "s", "ms", "jobs/min", "MB"
    values: list[Figure]  # one per run, in the runs' order
    changes: list[Change]  # one per run after the first


class Section(BaseModel):
    title: str
    note: str  # what it compares, and the interval its changes carry
    rows: list[Row]


class RunSide(BaseModel):
    """Who is who in a comparison: a run, and what it measured."""

    label: str  # "A", "B", ...
    run_id: str | None
    profile_name: str | None
    started_at: str | None
    outcome: str | None
    interrupted: bool
    verdict: str
    bundled: bool  # it measured the bundled stack (stack/), not an external deployment
    target: str  # "the bundled stack (server http://127.0.0.1:56017, llm extractive-planner)"


class Comparison(BaseModel):
    runs: list[RunSide]
    sections: list[Section]
    statement: str | None  # bundled stack against a real deployment: which is which (the seed's "mocked vs real")
    notes: list[str]  # what limits the comparison: different profiles or machines, an interrupted run
    rule_changes: list[str]  # contract rules whose result differs between runs
    # "workload.concurrency_levels: [1, 2, 5] in A, [1, 2] in B": each setting of the runs' profiles that differs
    setting_changes: list[str] = []

    def significant(self) -> list[tuple[Section, Row, RunSide, Change]]:
        """Every significant change: (its section, its row, the later run, the change)."""
        return [(section, row, self.runs[i + 1], change) for section in self.sections for row in section.rows
                for i, change in enumerate(row.changes) if change.significant]


# ---- intervals of a change -----------------------------------------------------------------------

def excludes_zero(ci: Interval) -> bool:
    return ci.low > 0 or ci.high < 0


def quantile_difference(baseline: Iterable[float | None], later: Iterable[float | None], q: float) -> Interval | None:
    """95 % percentile-bootstrap interval of quantile_q(later) − quantile_q(baseline), each sample resampled on its
    own; None below CI_MIN_N values on either side."""
    first, second = clean(baseline), clean(later)
    if min(first.size, second.size) < CI_MIN_N:
        return None
    if np.all(first == first[0]) and np.all(second == second[0]):  # every resample gives the same difference
        return Interval(low=float(second[0] - first[0]), high=float(second[0] - first[0]))
    result = scipy_stats.bootstrap(
        (first, second), lambda a, b, axis: np.quantile(b, q, axis=axis) - np.quantile(a, q, axis=axis),
        vectorized=True, paired=False, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return Interval(low=float(result.confidence_interval.low), high=float(result.confidence_interval.high))


def rate_difference(baseline: Rate, later: Rate) -> Interval | None:
    """Newcombe's hybrid score interval (his method 10) of later − baseline from the two Wilson intervals; None
    where either rate has none (fewer than CI_MIN_N)."""
    if baseline.ci is None or later.ci is None or baseline.value is None or later.value is None:
        return None
    d = later.value - baseline.value
    low = d - math.hypot(later.value - later.ci.low, baseline.ci.high - baseline.value)
    high = d + math.hypot(later.ci.high - later.value, baseline.value - baseline.ci.low)
    return Interval(low=low, high=high)


def change(baseline: Figure, later: Figure, labels: tuple[str, str], ci: Interval | None = None,
           no_interval: str | None = None) -> Change:
    """`later` − `baseline` with the interval given (or why there is none); "not comparable" with the side that
    lacks the figure and why, where either does."""
    lacking = [f"{label}: {figure.missing or 'not measured'}"
               for label, figure in zip(labels, (baseline, later), strict=True) if figure.value is None]
    if lacking:
        return Change(not_comparable=f"not comparable ({'; '.join(lacking)})")
    absolute = later.value - baseline.value
    relative = absolute / abs(baseline.value) if baseline.value else None
    if ci is None:
        return Change(absolute=absolute, relative=relative, no_interval=no_interval or TOO_FEW)
    return Change(absolute=absolute, relative=relative, ci=ci, significant=excludes_zero(ci))


# ---- one run's figures ---------------------------------------------------------------------------

def rate_figure(share: Rate | None, noun: str, missing: str) -> Figure:
    if share is None or not share.n:
        return Figure(missing=missing)
    return Figure(value=share.value, n=share.n, detail=f"{share.k} of {plural(share.n, noun)}")


def median_figure(figure: Distribution, missing: str) -> Figure:
    return Figure(value=figure.median, n=figure.n) if figure.n else Figure(missing=missing)


def p95_figure(figure: Distribution, missing: str) -> Figure:
    if not figure.n:
        return Figure(missing=missing)
    if figure.p95 is None:
        return Figure(n=figure.n, missing=f"too few values for a p95 (n={figure.n}, p95 from n ≥ {P95_MIN_N})")
    return Figure(value=figure.p95, n=figure.n)


def _level_name(level: int | None) -> str:
    return plural(level, "concurrent job") if level is not None else "level unknown"


def job_groups(metrics: RunMetrics) -> dict[str, JobGroup]:
    """The run's job groups by the name a comparison row gives them: single, each level, sequential."""
    groups = {"single request": metrics.single} if metrics.single else {}
    groups |= {_level_name(group.level): group for group in metrics.levels}
    return groups | ({"sequential runs": metrics.sequential} if metrics.sequential else {})


def job_seconds(metrics: RunMetrics, group: JobGroup) -> list[float | None]:
    """End-to-end seconds of the group's verified successes: the raw values its median is of."""
    return [job.total_seconds for job in metrics.jobs
            if job.stage == group.stage and (group.level is None or job.level == group.level) and job.succeeded]


def latency_ms(metrics: RunMetrics, endpoint: str) -> list[float]:
    return next((series.ms for series in metrics.series.latency_ms if series.endpoint == endpoint), [])


def bundled(metrics: RunMetrics) -> bool:
    """The run measured the bundled stack: only its profile gives the target's job limit (RunMetrics
    .max_concurrent_jobs is None for an external target)."""
    return metrics.max_concurrent_jobs is not None


def target_text(metrics: RunMetrics) -> str:
    """"the bundled stack (server http://127.0.0.1:56017, llm extractive-planner)" or "the deployment at …"."""
    server = next((target.url for target in metrics.targets if target.name == "server" and target.url), None)
    model = metrics.target_notes.get("llm_model") or metrics.environment.llm_model
    where = ", ".join(part for part in (f"server {server}" if server else None, f"llm {model}" if model else None)
                      if part)
    if bundled(metrics):
        return "the bundled stack" + (f" ({where})" if where else "")
    return f"the deployment at {server}" + (f" (llm {model})" if model else "") if server else \
        "an external deployment (its URL was not recorded)"


# ---- sections ------------------------------------------------------------------------------------

Getter = Callable[[RunMetrics], Figure]


def _row(runs: list[RunMetrics], labels: list[str], figure: str, kind: str, unit: str, get: Getter,
         interval: Callable[[RunMetrics, RunMetrics], Interval | None] | None = None,
         no_interval: str | None = None) -> Row:
    values = [get(metrics) for metrics in runs]
    changes = [change(values[0], value, (labels[0], labels[i]),
                      interval(runs[0], runs[i]) if interval and value.value is not None
                      and values[0].value is not None else None, no_interval)
               for i, value in enumerate(values) if i]
    return Row(figure=figure, kind=kind, unit=unit, values=values, changes=changes)


def _names(runs: list[RunMetrics], names_of: Callable[[RunMetrics], Iterable[str]]) -> list[str]:
    """Every name any run has, in the order they first appear (a level or endpoint only one run has is kept)."""
    return list(dict.fromkeys(name for metrics in runs for name in names_of(metrics)))


def _success(runs: list[RunMetrics], labels: list[str]) -> Section:
    def of_group(name: str) -> Getter:
        return lambda m: rate_figure(job_groups(m)[name].success if name in job_groups(m) else None, "job",
                                     "no job reached an outcome" if name in job_groups(m) else f"no {name}")

    def rate_of(name: str) -> Callable[[RunMetrics, RunMetrics], Interval | None]:
        return lambda a, b: rate_difference(job_groups(a)[name].success, job_groups(b)[name].success)

    rows = [_row(runs, labels, "every job", "rate", "%",
                 lambda m: rate_figure(success_rate(m.jobs), "job", "no job reached an outcome"),
                 lambda a, b: rate_difference(success_rate(a.jobs), success_rate(b.jobs)))]
    rows += [_row(runs, labels, name, "rate", "%", of_group(name), rate_of(name))
             for name in _names(runs, lambda m: job_groups(m))]
    return Section(title="Success rate", rows=rows,
                   note="Verified videos (downloaded and passed every integrity check) of the jobs that reached an "
                        "outcome; interrupted jobs are counted in neither.")


def _job_seconds(runs: list[RunMetrics], labels: list[str]) -> Section:
    def of_group(name: str) -> Getter:
        return lambda m: median_figure(job_groups(m)[name].seconds, "no verified success") \
            if name in job_groups(m) else Figure(missing=f"no {name}")

    def interval(name: str) -> Callable[[RunMetrics, RunMetrics], Interval | None]:
        return lambda a, b: quantile_difference(job_seconds(a, job_groups(a)[name]),
                                                job_seconds(b, job_groups(b)[name]), 0.5)

    return Section(title="Job seconds", note="Median end-to-end seconds of the verified successes.",
                   rows=[_row(runs, labels, f"median, {name}", "s", "s", of_group(name), interval(name))
                         for name in _names(runs, lambda m: job_groups(m))])


def _throughput(runs: list[RunMetrics], labels: list[str]) -> Section:
    def level_of(m: RunMetrics, name: str) -> JobGroup | None:
        return next((group for group in m.levels if _level_name(group.level) == name), None)

    def figure(name: str, field: str) -> Getter:
        def get(m: RunMetrics) -> Figure:
            group = level_of(m, name)
            if group is None:
                return Figure(missing=f"no {name}")
            value = getattr(group, field)
            return Figure(value=value, n=group.success.k) if value is not None else \
                Figure(missing="no verified video in a measured wall time")
        return get

    names = _names(runs, lambda m: (_level_name(group.level) for group in m.levels))
    rows = [_row(runs, labels, f"{label}, {name}", "ratio", unit, figure(name, field),
                 no_interval=ONE_VALUE["throughput"])
            for name in names for label, unit, field in
            (("verified videos per minute", "jobs/min", "jobs_per_minute"),
             ("decoded video seconds per wall second", "video s / wall s", "video_seconds_per_wall_second"))]
    return Section(title="Throughput", rows=rows,
                   note="Per concurrency level, over the wall time of its batches (n: the verified videos).")


def _latency(runs: list[RunMetrics], labels: list[str]) -> Section:
    def endpoint_of(m: RunMetrics, name: str):
        return next((endpoint for endpoint in m.latency if endpoint.endpoint == name), None)

    def figure(name: str, statistic: str) -> Getter:
        def get(m: RunMetrics) -> Figure:
            endpoint = endpoint_of(m, name)
            if endpoint is None:
                return Figure(missing=f"{name} not probed")
            if statistic == "answered":
                return rate_figure(rate(endpoint.answered.n, endpoint.probes), "probe", "no probe")
            silent = f"no probe answered ({endpoint.error_kinds})"
            return median_figure(endpoint.answered, silent) if statistic == "median" else \
                p95_figure(endpoint.answered, silent)
        return get

    def interval(name: str, statistic: str) -> Callable[[RunMetrics, RunMetrics], Interval | None]:
        if statistic == "answered":
            def shares(a: RunMetrics, b: RunMetrics) -> Interval | None:
                first, second = endpoint_of(a, name), endpoint_of(b, name)
                return rate_difference(rate(first.answered.n, first.probes), rate(second.answered.n, second.probes))
            return shares
        q = 0.5 if statistic == "median" else 0.95
        return lambda a, b: quantile_difference(latency_ms(a, name), latency_ms(b, name), q)

    rows = [_row(runs, labels, f"{name} {statistic}", *(("rate", "%") if statistic == "answered" else ("ms", "ms")),
                 figure(name, statistic), interval(name, statistic))
            for name in _names(runs, lambda m: (endpoint.endpoint for endpoint in m.latency))
            for statistic in ("median", "p95", "answered")]
    return Section(title="API latency", rows=rows,
                   note="Milliseconds of answered probes per endpoint (median, and p95 where both runs have n ≥ "
                        f"{P95_MIN_N}); answered: the share of probes answered as expected.")


def _resources(runs: list[RunMetrics], labels: list[str]) -> Section:
    def figure(name: str, field: str) -> Getter:
        def get(m: RunMetrics) -> Figure:
            usage = next((row for row in m.run_usage if row.name == name), None)
            if usage is None:
                return Figure(missing=f"{name} not sampled")
            value = getattr(usage, field)
            return Figure(value=value, n=usage.samples) if value is not None else Figure(missing="no reading")
        return get

    rows = [_row(runs, labels, f"{name} {label}", kind, unit, figure(name, field), no_interval=ONE_VALUE["resources"])
            for name in _names(runs, lambda m: (row.name for row in m.run_usage))
            for label, kind, unit, field in (("CPU mean", "pct", "% of one core", "cpu_mean"),
                                             ("RSS mean", "mb", "MB", "rss_mean_mb"),
                                             ("RSS peak", "mb", "MB", "rss_peak_mb"))]
    return Section(title="CPU and memory", rows=rows,
                   note="Per service and the deployment (its services summed at each instant) while jobs ran "
                        "(single and concurrent stages); n: samples.")


def _integrity(runs: list[RunMetrics], labels: list[str]) -> Section:
    row = _row(runs, labels, "downloaded videos passing every check", "rate", "%",
               lambda m: rate_figure(m.videos_passed, "video", "no video was downloaded"),
               lambda a, b: rate_difference(a.videos_passed, b.videos_passed))
    return Section(title="Video integrity", rows=[row],
                   note="Decodable H.264 and audio, the expected resolution, durations consistent.")


def _conformance(runs: list[RunMetrics], labels: list[str]) -> Section:
    def holding(m: RunMetrics) -> Figure:
        checked = [rule for rule in m.conformance if rule.checked]
        if not checked:
            return Figure(missing="no contract rule checked")
        held = sum(rule.holds for rule in checked)
        return Figure(value=held, n=len(checked), detail=f"{held} of {plural(len(checked), 'checked rule')}")

    return Section(title="Contract conformance", note="Contract rules that hold, of those the run could check.",
                   rows=[_row(runs, labels, "rules holding", "int", "rules", holding,
                              no_interval=ONE_VALUE["conformance"])])


def rule_changes(runs: list[RunMetrics], labels: list[str]) -> list[str]:
    """"cancelling a finished job answers 409: holds in A, VIOLATED in B": each rule whose result differs."""
    def result(m: RunMetrics, rule: str) -> str:
        found = next((r for r in m.conformance if r.rule == rule), None)
        return "not checked" if found is None or not found.checked else "holds" if found.holds else "VIOLATED"

    lines = []
    for rule in _names(runs, lambda m: (r.rule for r in m.conformance)):
        results = [result(m, rule) for m in runs]
        if len(set(results)) > 1:
            lines.append(f"{rule}: " + ", ".join(f"{r} in {label}" for r, label in zip(results, labels, strict=True)))
    return lines


def _faults(runs: list[RunMetrics], labels: list[str]) -> Section:
    def name_of(fault) -> str:
        return f"{fault.service} {fault.fault.replace('_', ' ')}"

    def figure(name: str, field: str, never: str) -> Getter:
        def get(m: RunMetrics) -> Figure:
            # the last result: a faults stage a crash cut and a resume ran again counts its re-run
            fault = next((f for f in reversed(m.faults) if name_of(f) == name), None)
            if fault is None:
                return Figure(missing="not run" + (f": {m.faults_skipped}" if m.faults_skipped else ""))
            if fault.state != "measured":
                why = fault.detail or "no detail recorded"
                return Figure(missing=f"could not be run: {why}" if fault.state == "not_run" else
                              f"injected, interrupted before recovery was measured: {why}")
            value = getattr(fault, field)
            return Figure(value=value, n=1) if value is not None else Figure(missing=never)
        return get

    rows = [_row(runs, labels, f"{name}: {label}", "s", "s", figure(name, field, never),
                 no_interval=ONE_VALUE["faults"])
            for name in _names(runs, lambda m: (name_of(f) for f in m.faults))
            for label, field, never in (("restore → healthy", "recovery_s", "never reported healthy again"),
                                        ("restore → first verified video", "first_success_s",
                                         "no new job succeeded"))]
    return Section(title="Fault recovery", rows=rows,
                   note="Seconds from the end of each injected fault until health said healthy again, and until a "
                        "new job delivered a verified video.")


# ---- the comparison ------------------------------------------------------------------------------

def labels_for(count: int) -> list[str]:
    """"A", "B", … "Z", then "R27", "R28" …."""
    return [chr(ord("A") + i) if i < 26 else f"R{i + 1}" for i in range(count)]


def mocked_vs_real(sides: list[RunSide]) -> str | None:
    """The seed's "comparison between mocked and real", where the runs measured both kinds of target."""
    stack = [side for side in sides if side.bundled]
    real = [side for side in sides if not side.bundled]
    if not stack or not real:
        return None

    def who(group: list[RunSide]) -> str:
        return " and ".join(f"{side.label} (profile {side.profile_name or 'unknown'})" for side in group)

    return (f"Bundled stack against a real deployment: run {who(stack)} measured {stack[0].target}, which is a "
            "stand-in, not a mock: real Redis, HTTP services, eSpeak NG speech and H.264/AAC encoding serve every "
            "request, and only the LLM is an extractive planner instead of a language model. Run "
            f"{who(real)} measured {real[0].target}. This is the seed's comparison between the mocked and the real "
            f"system: each change below is a run minus {sides[0].label} "
            f"({'the stand-in' if sides[0].bundled else 'the real deployment'}).")


def same_name_other_settings(runs: list[RunMetrics], sides: list[RunSide],
                             profiles: list[dict | None] | None) -> list[str]:
    """A note per profile name whose runs did not use the same settings (their profile_sha256 differ; where a run
    recorded no hash, their settings do): a shared name must not pass for a shared plan."""
    notes = []
    for name in dict.fromkeys(side.profile_name for side in sides if side.profile_name):
        group = [i for i, side in enumerate(sides) if side.profile_name == name]
        hashes = [runs[i].environment.profile_sha256 for i in group]
        differing = setting_differences([profiles[i] for i in group], [sides[i].label for i in group]) \
            if profiles is not None else []
        if len(group) < 2 or (len(set(hashes)) == 1 if None not in hashes else not differing):
            continue
        digests = ", ".join(f"{(digest or 'not recorded')[:12]} in {sides[i].label}"
                            for i, digest in zip(group, hashes, strict=True))
        where = "the settings that differ are listed under *Settings that differ*" if differing else \
            "the manifests do not record the settings, so which ones differ is not known"
        notes.append(f"Runs {' and '.join(sides[i].label for i in group)} both used profile {name}, but not with the "
                     f"same settings (profile sha256 {digests}): {where}. A change may come from the settings rather "
                     "than the target.")
    return notes


def _notes(runs: list[RunMetrics], sides: list[RunSide], stored_profiles: list[dict | None] | None) -> list[str]:
    notes = []
    profiles = list(dict.fromkeys(side.profile_name or "unknown" for side in sides))
    if len(profiles) > 1:
        notes.append(f"The runs used different profiles ({', '.join(profiles)}): their workloads and thresholds may "
                     "differ, so a change may come from the profile rather than the target.")
    notes += same_name_other_settings(runs, sides, stored_profiles)
    machines = list(dict.fromkeys(m.environment.cpu_model or m.machine.hostname or "unknown" for m in runs))
    if len(machines) > 1:
        notes.append(f"The runs were made on different machines ({', '.join(machines)}).")
    rounds = [m.rounds.count for m in runs]
    if len(set(rounds)) > 1:
        notes.append("The runs have different numbers of rounds (" + ", ".join(
            f"{side.label}: {count}" for side, count in zip(sides, rounds, strict=True)) + "): each figure pools "
            "every round of its run, so a run of more rounds gives a narrower interval, and a drift within a soak "
            "shows in its own report's trends, not here.")
    notes += [f"Run {side.label} was interrupted before its end: its figures cover what it measured until then."
              for side in sides if side.interrupted]
    return notes


def compare(runs: list[RunMetrics], profiles: list[dict | None] | None = None) -> Comparison:
    """The comparison of two or more runs, the first one the baseline; `profiles` the runs' settings as their
    manifests store them (`profile`), to name the settings that differ."""
    if len(runs) < 2:
        raise ValueError(f"a comparison needs at least two runs, got {len(runs)}")
    labels = labels_for(len(runs))
    sides = [RunSide(label=label, run_id=m.run_id, profile_name=m.profile_name, started_at=m.started_at,
                     outcome=m.outcome, interrupted=m.interrupted, verdict=m.verdict, bundled=bundled(m),
                     target=target_text(m))
             for label, m in zip(labels, runs, strict=True)]
    sections = [build(runs, labels) for build in (_success, _job_seconds, _throughput, _latency, _resources,
                                                  _integrity, _conformance, _faults)]
    settings = setting_differences(profiles, labels) if profiles is not None else []
    return Comparison(runs=sides, sections=[section for section in sections if section.rows],
                      statement=mocked_vs_real(sides), notes=_notes(runs, sides, profiles),
                      rule_changes=rule_changes(runs, labels), setting_changes=settings)
