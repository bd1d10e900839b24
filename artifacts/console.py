"""The text printed at the end of a run: its headline figures, failed thresholds, the report to open."""

from __future__ import annotations

from pathlib import Path

from analysis.metrics import RunMetrics
from artifacts.markdown import conformance_summary, faults_summary, fmt, headline, rounds_console, success_text

FIRST_REPORT = "integration_performance_report.md"
STOPPED_REPORT = "integration_reliability_report.md"  # stages, failures and what went wrong with the services


def first_report(metrics: RunMetrics, run_dir: Path | str) -> Path:
    """The report to open first: performance when jobs ran, else the one that says why none did."""
    ran = bool(metrics.jobs or metrics.latency)
    return Path(run_dir) / "reports" / (FIRST_REPORT if ran else STOPPED_REPORT)


def console_summary(metrics: RunMetrics, run_dir: Path | str) -> str:
    """Headline figures, each with its n: single request, success and job time per level, API latency per
    endpoint, contract conformance and fault recovery in one line each, over several rounds the success per round and
    the significant trends (downtime whatever the count), the verdict (which names failed services
    and stages), failed thresholds as measured value vs threshold, the report to open first."""
    lines = [f"figures of run {metrics.run_id or Path(run_dir).name} ({metrics.profile_name or 'no profile'}):"]
    single = metrics.jobs_of("single")
    if len(single) > 1 and metrics.single is not None:  # several rounds: their requests pooled, never round 1's alone
        group = metrics.single
        seconds = f"; median {fmt(group.seconds.median, 's')} s (n={group.seconds.n})" if group.seconds.n else ""
        rounds = len({job.round for job in single})
        lines.append(f"  single request:   {success_text(group)}{seconds}, pooling {rounds} rounds")
    elif single:
        job = single[0]
        what = (f"{fmt(job.total_seconds, 's')} s, verified video" if job.succeeded else
                f"{job.outcome}" + (f" (last seen {job.server_status})" if job.outcome == "interrupted"
                                    and job.server_status else "") + (f": {job.failure}" if job.failure else ""))
        lines.append(f"  single request:   {what}")
    for group in metrics.levels:
        seconds = f"; job time {headline(group.seconds)}" if group.seconds.n else ""
        lines.append(f"  concurrency {group.level}:{' ' * max(1, 5 - len(str(group.level)))}"
                     f"{success_text(group)}{seconds}")
    if metrics.sequential is not None:
        lines.append(f"  sequential:       {success_text(metrics.sequential)}")
    for endpoint in metrics.latency:
        if not endpoint.answered.n:
            lines.append(f"  API {endpoint.endpoint}: {endpoint.unanswered}")
            continue
        errors = (f", {endpoint.error_count} of {endpoint.probes} probes without the expected answer "
                  f"({endpoint.error_kinds})" if endpoint.errors else "")
        lines.append(f"  API {endpoint.endpoint}: {headline(endpoint.answered)}{errors}")
    if any(rule.checked for rule in metrics.conformance):
        lines.append(f"  contract:         {conformance_summary(metrics)}")
    if metrics.faults or metrics.faults_skipped:
        lines.append(f"  faults:           {faults_summary(metrics)}")
    lines += [f"  {label + ':':<18}{text}" for label, text in rounds_console(metrics)]
    if not metrics.jobs and not metrics.latency:
        lines.append("  nothing was measured")
    lines.append(f"verdict: {metrics.verdict}")
    failed = metrics.failures_in_words()  # none for a run that was not validated: the verdict says why
    if failed:
        lines.append("failed:")
        lines += [f"  {words}" for words in failed]
    if metrics.incidents:
        lines.append("what went wrong:")
        lines += [f"  {incident.sentence}" for incident in metrics.incidents]
    lines.append(f"open first: {first_report(metrics, run_dir)}")
    return "\n".join(lines)
