"""Parsing the published label and class-name files, with errors that name file and line.

Formats (the MSL and HiRISE families on Zenodo):
- label lines ``<image path> <class id>``, the path relative to the data set's image folder;
- class files ``<id> <name>`` (whitespace, MSL v1) or ``id,name`` (CSV, later versions).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deepmars.errors import DataError

MAX_REPORTED = 10


@dataclass(frozen=True)
class LabelLine:
    name: str  # image path as written, relative to the image folder
    class_id: int
    file: Path
    line: int


def _problems_error(problems: list[tuple[Path, int, str]], what: str) -> DataError:
    """One error for all the bad lines found, so a user fixes a file in one pass."""
    path, line, msg = problems[0]
    more = "".join(f"\n  {p}:{n}: {m}" for p, n, m in problems[1:MAX_REPORTED])
    extra = len(problems) - MAX_REPORTED
    tail = f"\n  ... and {extra} more" if extra > 0 else ""
    count = f" ({len(problems)} problems in {what})" if len(problems) > 1 else ""
    return DataError(msg + count + more + tail, path, line)


def _text_lines(path: Path, problems: list[tuple[Path, int, str]]) -> list[tuple[int, str]]:
    """(line number, text) of every line; a line that is not UTF-8 is a problem, not a crash.

    A byte-order mark (files saved by spreadsheet programs) is dropped.
    """
    out: list[tuple[int, str]] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                out.append((lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8")))
            except UnicodeDecodeError as exc:
                problems.append((path, lineno, f"not UTF-8 text ({exc.reason} at byte {exc.start}): "
                                               "is this the right file?"))
    return out


Column = int | str  # a 0-based position, or a name from the header row
CSV_LAYOUT = "'<id>,<name>' (dataset.classes.header and dataset.classes.columns read other layouts)"


def read_class_file(path: Path, fmt: str = "indexed", *, header: bool = False,
                    columns: tuple[Column, Column] = (0, 1)) -> dict[int, str]:
    """Class id -> name. ``fmt`` is "indexed" (``<id> <name>``) or "csv".

    A CSV may start with a header row (``header``) and hold the id and name in any columns
    (``columns``: positions, or header names); by default it is ``id,name`` lines.
    """
    if not path.is_file():
        raise DataError("class-name file not found", path)
    classes: dict[int, str] = {}
    first_line: dict[str, int] = {}
    problems: list[tuple[Path, int, str]] = []
    rows = [(n, next(csv.reader([t]), []) if fmt == "csv" else t.strip().split(None, 1))
            for n, t in _text_lines(path, problems)]
    rows = [(n, row) for n, row in rows if row and "".join(row).strip()]
    plain = fmt != "csv" or (not header and tuple(columns) == (0, 1))
    if fmt == "csv" and header:
        if not rows:
            raise DataError("class-name file has no header row (dataset.classes.header is true)", path)
        (head_line, head), rows = rows[0], rows[1:]
        columns = _column_positions(path, head_line, [h.strip() for h in head], columns)
    id_col, name_col = columns
    for lineno, row in rows:
        if (plain and len(row) != 2) or len(row) <= max(id_col, name_col) or not row[name_col].strip():
            expected = "'<id> <name>'" if fmt != "csv" else CSV_LAYOUT if plain else \
                f"the class id in column {id_col} and its name in column {name_col}"
            problems.append((path, lineno, f"expected {expected}, got {row!r}"))
            continue
        try:
            cid = int(row[id_col])
        except ValueError:
            hint = " (a header row? set dataset.classes.header: true)" if fmt == "csv" and not header and \
                lineno == rows[0][0] else ""
            problems.append((path, lineno, f"class id {row[id_col]!r} is not an integer{hint}"))
            continue
        name = row[name_col].strip()
        if cid in classes:
            problems.append((path, lineno, f"class id {cid} listed twice"))
        elif name in first_line:
            # Names key the evaluation report and the saved model: two ids cannot share one.
            problems.append((path, lineno, f"class name {name!r} listed twice, first at line {first_line[name]}"))
        classes[cid] = name
        first_line.setdefault(name, lineno)
    if problems:
        raise _problems_error(problems, path.name)
    if not classes:
        raise DataError("class-name file lists no classes", path)
    return classes


def _column_positions(path: Path, line: int, head: list[str], columns: tuple[Column, Column]) -> tuple[int, int]:
    """``dataset.classes.columns`` as positions, header names looked up in the header row."""
    out = []
    for key, column in zip(("id", "name"), columns, strict=True):
        if isinstance(column, str):
            if column not in head:
                raise DataError(f"the header row has no column {column!r} (dataset.classes.columns.{key}); "
                                f"its columns: {', '.join(head)}", path, line)
            column = head.index(column)
        out.append(column)
    return out[0], out[1]


def _check_relative(name: str) -> str | None:
    """Why ``name`` may not be used as an image path inside the data set, or None if fine."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"absolute path {name!r} refused: label paths must be inside the data set"
    if ".." in p.parts:
        return f"path {name!r} leaves the data set folder ('..'): refused"
    return None


def read_label_file(path: Path, class_ids: set[int]) -> list[LabelLine]:
    """Parse ``<image> <class id>`` lines; every malformed line is reported with its number."""
    if not path.is_file():
        raise DataError("label file not found", path)
    out: list[LabelLine] = []
    problems: list[tuple[Path, int, str]] = []
    for lineno, raw in _text_lines(path, problems):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 2:
            problems.append((path, lineno,
                             f"expected '<image> <class id>' (2 fields), got {len(fields)}: {raw.strip()!r}"))
            continue
        name, cid_text = fields
        try:
            cid = int(cid_text)
        except ValueError:
            problems.append((path, lineno, f"class id {cid_text!r} is not an integer"))
            continue
        if cid not in class_ids:
            problems.append((path, lineno, f"class id {cid} is not in the class list {sorted(class_ids)}"))
            continue
        bad = _check_relative(name)
        if bad:
            problems.append((path, lineno, bad))
            continue
        out.append(LabelLine(name, cid, path, lineno))
    if problems:
        raise _problems_error(problems, path.name)
    if not out:
        raise DataError("label file lists no labeled images", path)
    return out


def check_duplicates(lines: list[LabelLine], image_dir_of: Mapping[Path, Path] | None = None) -> None:
    """The same image labeled twice (in one file or across files) is an error.

    ``image_dir_of`` maps a label file to the folder its names are relative to, when the files of
    a data set name images in different folders (a new batch referenced where it lies).
    """
    seen: dict[tuple, LabelLine] = {}
    problems = []
    for ln in lines:
        folder = os.path.normpath(image_dir_of[ln.file]) if image_dir_of else ""
        key = (folder, os.path.normpath(PurePosixPath(ln.name).as_posix()))
        first = seen.get(key)
        if first is not None:
            problems.append((ln.file, ln.line, f"duplicate entry {ln.name!r}, first at {first.file}:{first.line}"))
        else:
            seen[key] = ln
    if problems:
        raise _problems_error(problems, "the label files")


def check_images_exist(lines: list[LabelLine], image_dir: Path) -> None:
    """Every labeled image must exist; one directory listing per folder keeps this fast."""
    listings: dict[Path, set[str]] = {}
    problems = []
    for ln in lines:
        p = image_dir / ln.name
        folder = p.parent
        if folder not in listings:
            listings[folder] = set(_listdir(folder))
        if p.name not in listings[folder]:
            problems.append((ln.file, ln.line, f"image {ln.name!r} not found in {image_dir}"))
    if problems:
        raise _problems_error(problems, "the label files")


def _listdir(folder: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(folder) if e.is_file()]
    except OSError:
        return []
