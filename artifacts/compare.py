"""A comparison of stored runs as a report: `python -m artifacts compare RUN_A RUN_B [RUN_C ...]`.

Every figure comes from each run's folder through analysis.metrics.metrics_of, and every change and interval
from analysis.comparison; this module only words and writes them. The report (Markdown and HTML) goes to the
LAST run's reports/ folder as comparison_<A>_<B>….md (a run compared with earlier ones keeps the comparison
beside its own reports; rendering that run again leaves it there), or to the folder `out` names.

`compare_with_previous(run_dir)` compares a run with the previous run of its profile and plan in the same
results_dir (analysis.plans: the same workload and rounds or soak duration; the deployment option
`compare_with_previous`; artifacts.publish publishes it as a Prefect artifact). The report names every setting the
runs differ in.
"""

from __future__ import annotations

from pathlib import Path

from analysis.comparison import METHODS, TOO_FEW, Change, Comparison, Figure, Row, Section, compare
from analysis.metrics import metrics_of
from analysis.plans import same_plan
from analysis.trends import decimals_for
from analysis.trends import number as decimal_text
from artifacts.html import to_html
from artifacts.markdown import DECIMALS, TEMPLATES, Column
from tasks.retention import stored_runs
from tasks.store import LEDGER, MANIFEST, read_json

TEMPLATE = "comparison_report.md.j2"
TITLE = "Comparison of runs"
FINISHED = "measured"  # the manifest outcome of a run that reached its end (not stopped early, not interrupted)


class NotARun(ValueError):
    """A folder given as a run holds no stored run (no tables, no manifest)."""


# ---- words -----------------------------------------------------------------------------------------

def places(kind: str) -> int:
    """The decimals a value of `kind` is shown with (artifacts.markdown's; a rate in percent, a count whole)."""
    return 0 if kind == "int" else DECIMALS["pct" if kind == "rate" else kind]


def scaled(value: float, kind: str) -> float:
    return value * 100 if kind == "rate" else value


def number(value: float, kind: str, decimals: int | None = None) -> str:
    """A value of `kind` with `places(kind)` decimals (or `decimals`), worded by analysis.trends.number: a minus
    sign, never "-0.0"."""
    return decimal_text(scaled(value, kind), places(kind) if decimals is None else decimals)


def signed(value: float, kind: str, decimals: int | None = None) -> str:
    """"+1.20", "−0.35", "0.00": a change shows its sign, and one that rounds to 0 shows none."""
    shown = number(value, kind, decimals)
    return f"+{shown}" if value > 0 and shown.strip("0.") else shown


def value_cell(figure: Figure, kind: str) -> str:
    """"1.05 (n=5)", "100.0 (14 of 14 jobs)", "— (no level 5)"."""
    if figure.value is None:
        return f"— ({figure.missing or 'not measured'})"
    beside = figure.detail or (f"n={figure.n}" if figure.n is not None else None)
    return number(figure.value, kind) + (f" ({beside})" if beside else "")


def change_cell(change: Change, row: Row) -> str:
    """"+0.52 s (+17.1 %)", a rate's in percentage points "-20.0 pp", or "not comparable (B: no level 5)"."""
    if change.absolute is None:
        return change.not_comparable or "not comparable"
    if row.kind == "rate":
        return f"{signed(change.absolute, 'rate')} pp"
    relative = f" ({signed(change.relative, 'rate')} %)" if change.relative is not None else ""
    return f"{signed(change.absolute, row.kind)} {row.unit}{relative}"


def interval_cell(change: Change, kind: str) -> str:
    """"-0.80 to +0.12"; "— (too few values)" where n does not support one; "—" where the figure has one value
    per run (the section says why once)."""
    if change.ci is not None:  # with the decimals that keep a bound near 0 from reading 0 (analysis.trends)
        shown = decimals_for([scaled(change.ci.low, kind), scaled(change.ci.high, kind)], places(kind))
        return f"{signed(change.ci.low, kind, shown)} to {signed(change.ci.high, kind, shown)}"
    if change.absolute is None:
        return ""
    return "— (too few values)" if change.no_interval == TOO_FEW else "—"


def significance_cell(change: Change) -> str:
    return "" if change.significant is None else "**yes**" if change.significant else "no"


def columns(c: Comparison) -> list[Column]:
    first = c.runs[0].label
    cells = [Column("figure", "figure"), Column("unit", "unit"), *(Column(f"v{i}", side.label)
                                                                   for i, side in enumerate(c.runs))]
    for i, side in enumerate(c.runs[1:], start=1):
        cells += [Column(f"c{i}", f"change {side.label}−{first}"), Column(f"ci{i}", f"{side.label}: 95 % CI"),
                  Column(f"s{i}", f"{side.label}: significant")]
    return cells


def rows(section: Section) -> list[dict]:
    shown = []
    for row in section.rows:
        cells = {"figure": row.figure, "unit": row.unit}
        cells |= {f"v{i}": value_cell(figure, row.kind) for i, figure in enumerate(row.values)}
        for i, change in enumerate(row.changes, start=1):
            cells |= {f"c{i}": change_cell(change, row), f"ci{i}": interval_cell(change, row.kind),
                      f"s{i}": significance_cell(change)}
        shown.append(cells)
    return shown


def no_interval_notes(section: Section) -> list[str]:
    """Why a section's changes have no interval, once per reason (too few values is said in the cell)."""
    reasons = dict.fromkeys(change.no_interval for row in section.rows for change in row.changes
                            if change.no_interval and change.no_interval != TOO_FEW)
    return [reason[:1].upper() + reason[1:] + "." for reason in reasons]


def significant_lines(c: Comparison) -> list[str]:
    """"B: Job seconds, median, 5 concurrent jobs: +1.20 s (+39.5 %), 95 % CI +0.80 to +1.60"."""
    return [f"{side.label}: {section.title}, {row.figure}: {change_cell(change, row)}, 95 % CI "
            f"{interval_cell(change, row.kind)}" for section, row, side, change in c.significant()]


def side_line(side) -> str:
    started = f", started {side.started_at}" if side.started_at else ""
    return (f"run `{side.run_id or 'unknown'}` (profile {side.profile_name or 'unknown'}{started}) measured "
            f"{side.target}; {side.verdict}")


def render_comparison(c: Comparison, pruned: dict[str, str] | None = None) -> str:
    """The comparison as Markdown; `pruned` the runs (by label) whose videos retention deleted, in words."""
    return TEMPLATES.get_template(TEMPLATE).render(
        c=c, title=TITLE, methods=METHODS, pruned=pruned or {}, comparison_columns=columns(c),
        comparison_rows=rows, no_interval_notes=no_interval_notes, significant_lines=significant_lines,
        side_line=side_line,
    )


# ---- files -----------------------------------------------------------------------------------------

def check_run(run_dir: Path) -> None:
    """NotARun, in words, for a folder that holds no stored run (or one whose tables were never written)."""
    if not run_dir.is_dir():
        raise NotARun(f"{run_dir} is not a folder")
    if not list(run_dir.glob("*.parquet")):
        why = (f"it has a ledger but no tables yet (still running, or cut short: python -m artifacts {run_dir} "
               "renders it and writes them)" if (run_dir / LEDGER).is_file() else
               f"no {MANIFEST}, no tables")
        raise NotARun(f"{run_dir} is not a stored run: {why}")


def report_path(run_dirs: list[Path], out: Path | None = None) -> Path:
    """comparison_<A>_<B>….md in `out`, else in the last run's reports/ folder."""
    folder = out if out is not None else run_dirs[-1] / "reports"
    return folder / ("comparison_" + "_".join(run_dir.resolve().name for run_dir in run_dirs) + ".md")


def write_comparison(run_dirs: list[Path], out: Path | None = None) -> Path:
    """Compare the runs (the first the baseline), write the report as Markdown and HTML; returns the Markdown's
    path. NotARun for a folder that is not a stored run; ValueError for fewer than two runs."""
    for run_dir in run_dirs:
        check_run(run_dir)
    runs = [metrics_of(run_dir) for run_dir in run_dirs]
    comparison = compare(runs, [stored_settings(run_dir) for run_dir in run_dirs])
    pruned = {side.label: metrics.videos_pruned for side, metrics in zip(comparison.runs, runs, strict=True)
              if metrics.videos_pruned}
    markdown = render_comparison(comparison, pruned)
    path = report_path(run_dirs, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    path.with_suffix(".html").write_text(to_html(markdown, TITLE), encoding="utf-8")
    return path


def stored_settings(run_dir: Path) -> dict | None:
    """The profile a run's manifest stores (secrets masked), to name the settings runs differ in."""
    manifest = read_json(run_dir / MANIFEST, {})
    return manifest.get("profile") if isinstance(manifest, dict) and isinstance(manifest.get("profile"), dict) \
        else None


def previous_run(run_dir: Path) -> Path | None:
    """The run in the same results_dir that started last before this one, reached its end (manifest outcome
    "measured") and has this run's plan (analysis.plans: profile, workload, rounds or soak duration); None when
    there is none. Its other settings may differ: the comparison names them."""
    here = run_dir.resolve()
    runs = stored_runs(here.parent)
    this = next((run for run in runs if run.path.resolve() == here), None)
    if this is None:
        return None
    return next((run.path for run in runs  # newest first
                 if run.path.resolve() != here and run.started < this.started
                 and same_plan(run.manifest, this.manifest)
                 and run.finished and run.manifest.get("outcome") == FINISHED), None)


def no_previous_text(run_dir: Path) -> str:
    profile = stored_profile(run_dir)
    return (f"no earlier run of profile {profile} with the same plan (workload, rounds or soak duration) that "
            f"reached its end in {run_dir.resolve().parent}: nothing to compare run {run_dir.name} with")


def stored_profile(run_dir: Path) -> str:
    here = run_dir.resolve()
    run = next((run for run in stored_runs(here.parent) if run.path.resolve() == here), None)
    return (run.manifest.get("profile_name") if run else None) or "unknown"


def compare_with_previous(run_dir: Path) -> Path | None:
    """Compare the run with the previous finished run of its profile and plan (that one the baseline) and write the
    report into the run's reports/; None when there is no previous run (no_previous_text says so)."""
    previous = previous_run(Path(run_dir))
    return write_comparison([previous, Path(run_dir)]) if previous is not None else None
