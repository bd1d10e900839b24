"""A run's main tables as CSV files under `reports/csv/`, one per table, for a paper's own plots and statistics.

Numbers are written unformatted at full precision (Python's shortest exact repr), an interval as two
columns of its own (`<name>_ci95_low`, `<name>_ci95_high`, empty where n does not support one), units in the
column names, a missing value as an empty cell, booleans as true/false. Rows and columns come from
artifacts.paper_tables, the definition the LaTeX tables share.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from analysis.metrics import RunMetrics
from artifacts.paper_tables import CSV, PaperTable, interval_of, write_tables

FOLDER = "csv"  # under reports/


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def header(table: PaperTable) -> list[str]:
    names = []
    for column in table.columns_of(CSV):
        names.append(column.name)
        if column.ci:
            names += [f"{column.name}_ci95_low", f"{column.name}_ci95_high"]
    return names


def records(table: PaperTable) -> list[list[object]]:
    rows = []
    for row in table.rows:
        cells = []
        for column in table.columns_of(CSV):
            cells.append(_cell(row.get(column.name)))
            if column.ci:
                ci = interval_of(row, column)
                cells += [ci.low, ci.high] if ci else ["", ""]
        rows.append(cells)
    return rows


def csv_text(table: PaperTable) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header(table))
    writer.writerows(records(table))
    return text.getvalue()


def write_csv_tables(metrics: RunMetrics, reports_dir: Path) -> list[str]:
    """Every main table with rows as `reports_dir/csv/<table>.csv`; returns their paths relative to reports_dir."""
    return write_tables(metrics, reports_dir, FOLDER, "csv", csv_text)
