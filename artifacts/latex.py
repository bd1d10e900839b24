"""A run's main tables as LaTeX under `reports/latex/`, one booktabs `tabular` per table, to `\\input` in a paper.

Each file is a bare `tabular` (the paper chooses its float, caption and size; it needs
`\\usepackage{booktabs}`), headed by comments saying what the numbers are. A number with a 95 %
confidence interval is printed with it, `2.33 [1.23, 3.28]`, in the reports' number format
(artifacts.markdown.fmt); a missing one as `---`. Text is escaped for LaTeX, and characters outside
ASCII are written as LaTeX commands or their closest ASCII, so pdflatex compiles it as well as lualatex.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from analysis.metrics import RunMetrics
from artifacts.markdown import MISSING, NUMERIC, fmt
from artifacts.paper_tables import LATEX, Column, PaperTable, interval_of, write_tables

FOLDER = "latex"  # under reports/
SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}",
    # what the project's own texts use beyond ASCII
    MISSING: "---", "–": "--", "…": r"\ldots{}", "≤": r"$\leq$", "≥": r"$\geq$", "×": r"$\times$", "→": r"$\to$",
    "≈": r"$\approx$", "±": r"$\pm$", "µ": r"$\mu$", "°": r"$^\circ$", "“": "``", "”": "''", "‘": "`", "’": "'",
}
_SPECIAL = re.compile("|".join(re.escape(char) for char in sorted(SPECIAL, key=len, reverse=True)))


COMMENT_ASCII = {"≥": ">=", "≤": "<=", "–": "-", MISSING: "-", "×": "x", "…": "...", "→": "->"}


def comment(text: str) -> str:
    """Text for a `%` comment line: ASCII only (what a comment holds is never typeset, but an engine reads it)."""
    return "".join(COMMENT_ASCII.get(char) or (char if ord(char) < 128 else _ascii(char)) for char in text)


def _ascii(char: str) -> str:
    """The closest ASCII of a character LaTeX's default fonts may not have ("é" → "e"), else "?"."""
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or "?"


def escape(text: str) -> str:
    """Text as LaTeX prints it literally: special characters escaped, non-ASCII made safe, no line breaks."""
    escaped = _SPECIAL.sub(lambda match: SPECIAL[match.group()], " ".join(str(text).split()))
    return "".join(char if ord(char) < 128 else _ascii(char) for char in escaped)


def cell(row: dict, column: Column) -> str:
    """One cell: the value in the reports' format, with its confidence interval where it has one."""
    value = row.get(column.name)
    shown = fmt(value, "hash" if column.kind == "id" else column.kind)  # a paper's table has room for an id's prefix
    ci = interval_of(row, column)
    if ci is not None and value is not None:
        show = "pct" if column.kind == "rate" else column.kind
        rate = column.kind == "rate"
        shown += f" [{fmt(ci.low * 100 if rate else ci.low, show)}, {fmt(ci.high * 100 if rate else ci.high, show)}]"
    return escape(shown)


def tabular(table: PaperTable, run_id: str | None) -> str:
    columns = table.columns_of(LATEX)
    align = "".join("r" if column.kind in NUMERIC else "l" for column in columns)
    lines = [
        f"% {comment(table.title)} (run {comment(run_id or 'unknown')}); needs \\usepackage{{booktabs}}",
        *(f"% {line}" for line in _wrapped(comment(table.note))),
        *(["% A value with [low, high] carries its 95 % confidence interval; --- is not measured or not supported "
           "by n."] if any(column.ci for column in columns) else ["% --- is not recorded or does not apply."]),
        f"\\begin{{tabular}}{{{align}}}",
        "\\toprule",
        " & ".join(escape(column.header) for column in columns) + " \\\\",
        "\\midrule",
        *(" & ".join(cell(row, column) for column in columns) + " \\\\" for row in table.rows),
        "\\bottomrule",
        "\\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


def _wrapped(text: str, width: int = 110) -> list[str]:
    """A comment's text in lines of about `width` characters (a comment ends at its line's end)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def write_latex_tables(metrics: RunMetrics, reports_dir: Path) -> list[str]:
    """Every main table with rows as `reports_dir/latex/<table>.tex`; returns their paths relative to reports_dir."""
    return write_tables(metrics, reports_dir, FOLDER, "tex", lambda table: tabular(table, metrics.run_id))
