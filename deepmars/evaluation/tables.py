"""Writing results as CSV files and Markdown tables, with one rule for missing values.

Every evaluation CSV and report table goes through here so an undefined number (an empty split,
a class absent from a split, a threshold that keeps no image) looks the same everywhere: an empty
CSV cell and "n/a" in Markdown, never a crash and never a misleading 0.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

Cell = str | int | float | None


def is_defined(value: float | None) -> bool:
    """True for a finite number; False for None, NaN and infinities."""
    return value is not None and math.isfinite(value)


def csv_cell(value: Cell) -> str:
    """A CSV cell: floats to 6 significant digits, undefined numbers as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    return str(value)


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Path:
    """Write `rows` under `header` to `path` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])
    return path


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage for a report ("72.8%"), or "n/a" when undefined."""
    return f"{100.0 * value:.{digits}f}%" if is_defined(value) else "n/a"


def num(value: float | None, digits: int = 3) -> str:
    """A number for a report with fixed decimals, or "n/a" when undefined."""
    return f"{value:.{digits}f}" if is_defined(value) else "n/a"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_cell(value: Cell) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return csv_cell(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A GitHub-flavoured Markdown table; cells are formatted by the caller (strings pass through)."""
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_md_escape(_md_cell(v)) for v in row) + " |")
    return "\n".join(lines)


def slug(text: str) -> str:
    """A name safe in file names and MLflow metric keys: lower case, [a-z0-9_] only."""
    out = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    return out or "unnamed"
