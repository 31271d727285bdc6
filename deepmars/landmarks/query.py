"""``landmarks.py query``: source images by how many landmarks of a class they hold.

``python landmarks.py query class=crater min_count=5`` lists the images with at least 5 craters at
confidence >= ``count_confidence`` (0.9), most first, by running exactly ``IMAGES_SQL`` on the
catalog's ``landmark_counts`` table, so the CLI and a hand-written SQL query agree. Without
``class`` it prints, per class, how many images hold at least ``min_count`` of it.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TextIO

from deepmars.catalog import Catalog
from deepmars.catalog.choice import choose_model as choose
from deepmars.catalog.choice import precision_note
from deepmars.errors import ConfigError
from deepmars.landmarks.options import CountQueryOptions

# The documented query (README, docs): images with at least :min_count landmarks of :class.
IMAGES_SQL = """\
SELECT c.source_image, c.n, i.path
FROM landmark_counts AS c
JOIN landmark_images AS i ON i.model_id = c.model_id AND i.sha256 = c.sha256
WHERE c.model_id = :model AND c.class = :class AND c.count_confidence = :count_confidence
  AND c.n >= :min_count
ORDER BY c.n DESC, c.source_image"""

CLASSES_SQL = """\
SELECT class, sum(n >= :min_count) AS images, sum(n) AS landmarks
FROM landmark_counts
WHERE model_id = :model AND count_confidence = :count_confidence
GROUP BY class ORDER BY images DESC, landmarks DESC, class"""


def landmark_models(catalog: Catalog) -> list[str]:
    return [r[0] for r in catalog.conn.execute("SELECT DISTINCT model_id FROM landmark_images ORDER BY model_id")]


def choose_model(catalog: Catalog, opts: CountQueryOptions) -> str | None:
    """The model named, the only one with landmark rows, or that of the latest landmarks run."""
    return choose(catalog, landmark_models(catalog), opts.model, opts.tracking_uri, "landmarks", "landmark ")


def _check(catalog: Catalog, model_id: str, opts: CountQueryOptions) -> None:
    """An unknown class, or a threshold no run counted at, is a usage error that says what exists."""
    classes = catalog.class_names(model_id)
    if opts.class_name is not None and opts.class_name not in classes:
        raise ConfigError(f"class: {opts.class_name!r} is not a class of model {model_id}; classes: "
                          + ", ".join(classes))
    thresholds = [r[0] for r in catalog.conn.execute(
        "SELECT DISTINCT count_confidence FROM landmark_counts WHERE model_id = ? ORDER BY 1", (model_id,))]
    if opts.count_confidence not in thresholds:
        raise ConfigError(f"count_confidence: no counts at {opts.count_confidence:g} for model {model_id} (counted "
                          f"at: {', '.join(f'{t:g}' for t in thresholds) or 'none'}); re-run classify with "
                          f"count_confidence={opts.count_confidence:g} on the same input to add them (no image "
                          "is detected again)")


def run_query(opts: CountQueryOptions, out: TextIO | None = None) -> int:
    """Print (and with ``csv``, write) the matching images or the per-class table; returns its row count."""
    out = out or sys.stdout
    with Catalog.open(opts.catalog, create=False) as catalog:
        model_id = choose_model(catalog, opts)
        if model_id is None:
            print(f"catalog {opts.catalog} has no landmark rows yet (python landmarks.py classify ...)", file=out)
            return 0
        _check(catalog, model_id, opts)
        params = {"model": model_id, "class": opts.class_name, "count_confidence": opts.count_confidence,
                  "min_count": opts.min_count}
        print(f"model {model_id}  counts at confidence >= {opts.count_confidence:g}", file=out)
        precision = precision_note(catalog, model_id)
        if precision:
            print(f"note: {precision}", file=out)
        if opts.class_name is None:
            return _print_classes(catalog.conn.execute(CLASSES_SQL, params).fetchall(), opts.min_count, out)
        rows = catalog.conn.execute(IMAGES_SQL, params).fetchall()
    if opts.csv_path is not None:
        _write_csv(opts.csv_path, rows)
    _print_images(rows, opts, out)
    return len(rows)


def _print_images(rows: list[tuple], opts: CountQueryOptions, out: TextIO) -> None:
    print("source_image\tn\tpath", file=out)
    for source, n, path in rows[:opts.limit or None]:
        print(f"{source}\t{n}\t{path}", file=out)
    if opts.limit and len(rows) > opts.limit:
        print(f"... {len(rows) - opts.limit} more (limit=0 lists all, csv=FILE.csv writes all)", file=out)
    print(f"{len(rows)} images with at least {opts.min_count} {opts.class_name}", file=out)
    if opts.csv_path is not None:
        print(f"wrote {len(rows)} rows to {opts.csv_path}", file=out)


def _print_classes(rows: list[tuple], min_count: int, out: TextIO) -> int:
    header = f"images with >= {min_count}"
    width = max([12, *(len(r[0]) for r in rows)])
    print(f"  {'class':<{width}}  {header:>{len(header)}}  {'landmarks':>9}", file=out)
    for name, images, landmarks in rows:
        print(f"  {name:<{width}}  {images:>{len(header)}}  {landmarks:>9}", file=out)
    return len(rows)


def _write_csv(path: Path, rows: list[tuple]) -> None:
    """All matches (no limit), via a temporary file: a reader never sees half an export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["source_image", "n", "path"])
        writer.writerows(rows)
    tmp.replace(path)
