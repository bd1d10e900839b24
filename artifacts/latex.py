"""A run's main tables as LaTeX under `reports/latex/`, one booktabs `tabularx` per table, to `\\input` in a paper.

Each file is a bare table as wide as the text (`\\linewidth`; the paper chooses its float and caption; it
needs `\\usepackage{booktabs,tabularx}`), headed by comments saying what the numbers are, so that it fits the
text width of a standard `article`: set in `\\footnotesize` with narrow column gaps, text columns wrap (X
columns, a long name may break after `_` and a long word every few characters), headers of number columns
wrap over lines, and a number with a 95 % confidence interval carries it on a line below, `2.33` over
`[1.23, 3.28]`, in the reports' number format (artifacts.markdown.fmt); a missing one is `---`. Text is
escaped for LaTeX, and characters outside ASCII are written as LaTeX commands or their closest ASCII, so
pdflatex compiles it as well as lualatex.
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


ID_CHARS = 8  # a job id or hash in a paper's table: its prefix
HEADER_CHARS = 7  # a narrow column's header wraps into lines of about this many characters
NARROW_CHARS = 12  # a text column whose every cell is this short keeps its width; a longer one wraps (X)
WORD_CHARS = 16  # a longer run of letters and digits (a digest) may break after every this many
BREAK = "\x00"  # where a text cell may break, until escaped


def _stacked(lines: list[str], align: str, position: str) -> str:
    """Lines stacked in one cell (a nested tabular; `\\{}` so that a line starting with "[" is not an option)."""
    if len(lines) == 1:
        return lines[0]
    return f"\\begin{{tabular}}[{position}]{{@{{}}{align}@{{}}}}" + "\\\\{}".join(lines) + "\\end{tabular}"


def _breakable(text: str) -> str:
    """Text with break points after "_", "/", a "." within a name and inside long words, for a wrapping column."""
    text = re.sub(r"[_/]|\.(?=\w)", lambda match: match.group() + BREAK, text)
    return re.sub(rf"[A-Za-z0-9]{{{WORD_CHARS + 1},}}",
                  lambda match: BREAK.join(match.group()[i:i + WORD_CHARS]
                                           for i in range(0, len(match.group()), WORD_CHARS)), text)


def numeric(column: Column) -> bool:
    return column.kind in NUMERIC


def cell(row: dict, column: Column) -> str:
    """One cell: the value in the reports' format, with its confidence interval on a line below where it has one."""
    value = row.get(column.name)
    if column.kind in ("id", "hash"):
        return escape(value[:ID_CHARS] if value else MISSING)
    shown = fmt(value, column.kind)
    ci = interval_of(row, column)
    if ci is not None and value is not None:
        show = "pct" if column.kind == "rate" else column.kind
        rate = column.kind == "rate"
        bounds = f"[{fmt(ci.low * 100 if rate else ci.low, show)}, {fmt(ci.high * 100 if rate else ci.high, show)}]"
        return _stacked([escape(shown), escape(bounds)], "r", "t")
    return escape(shown) if numeric(column) else escape(_breakable(shown)).replace(BREAK, "\\allowbreak{}")


def header(column: Column, wraps: bool) -> str:
    """A wrapping column's header wraps with it; a narrow column's is set in lines of about HEADER_CHARS."""
    if wraps:
        return escape(column.header)
    lines: list[str] = []
    for word in column.header.split():
        if lines and len(lines[-1]) + 1 + len(word) <= HEADER_CHARS:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return _stacked([escape(line) for line in lines], "r" if numeric(column) else "l", "b")


def _wraps(table: PaperTable, columns: list[Column]) -> list[bool]:
    """Which columns wrap (tabularx X, sharing the width the others leave): text columns with a cell longer than
    NARROW_CHARS; tabularx needs one at least, else the first column."""
    wide = [not numeric(column) and any(len(fmt(row.get(column.name), column.kind)) > NARROW_CHARS
                                        for row in table.rows) for column in columns]
    return wide if any(wide) else [i == 0 for i in range(len(columns))]


def tabular(table: PaperTable, run_id: str | None) -> str:
    columns = table.columns_of(LATEX)
    wraps = _wraps(table, columns)
    align = "".join("X" if wrap else "r" if numeric(column) else "l"
                    for column, wrap in zip(columns, wraps, strict=True))
    lines = [
        f"% {comment(table.title)} (run {comment(run_id or 'unknown')}); needs \\usepackage{{booktabs,tabularx}}",
        *(f"% {line}" for line in _wrapped(comment(table.note))),
        "% A value with [low, high] below it carries its 95 % confidence interval; --- is not measured or not "
        "supported by n." if any(column.ci for column in columns) else "% --- is not recorded or does not apply.",
        "{\\footnotesize\\setlength{\\tabcolsep}{2.5pt}%",
        f"\\noindent\\begin{{tabularx}}{{\\linewidth}}{{{_spec(align)}}}",
        "\\toprule",
        " & ".join(header(column, wrap) for column, wrap in zip(columns, wraps, strict=True)) + " \\\\",
        "\\midrule",
        *(" & ".join(cell(row, column) for column in columns) + " \\\\" for row in table.rows),
        "\\bottomrule",
        "\\end{tabularx}}",
    ]
    return "\n".join(lines) + "\n"


def _spec(align: str) -> str:
    """The column spec: a wrapping column ragged right (justified narrow columns leave gaps), numbers right."""
    return "".join(">{\\raggedright\\arraybackslash}X" if kind == "X" else kind for kind in align)


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
