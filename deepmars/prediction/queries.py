"""What users ask of a catalog: images of a class above a confidence, counts per class, and exports.

``query`` prints matching images (path, class, confidence, best first) and the counts per class
under the same filters, so a user sees both the list and how the threshold splits the archive.
``export`` writes the same selection (or the errors or runs table) to CSV, or to Parquet when
pyarrow is installed, streaming rows so an archive-sized catalog needs no memory.
"""

from __future__ import annotations

import csv
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from deepmars.catalog import Catalog
from deepmars.catalog.choice import choose_model as choose
from deepmars.catalog.choice import precision_note
from deepmars.errors import ConfigError
from deepmars.prediction.options import ExportOptions, QueryOptions

EXPORT_BATCH = 50_000


@dataclass(frozen=True)
class Selection:
    """A WHERE clause over ``predictions`` and its parameters, with a readable description."""

    where: str
    params: tuple
    description: str


def choose_model(catalog: Catalog, opts: QueryOptions) -> str | None:
    """The model id whose rows to read: the one named, the only one, or that of the latest predict run."""
    # Landmark runs (landmarks.py classify) share the runs table; their models have no predictions.
    return choose(catalog, [m.model_id for m in catalog.models()], opts.model, opts.tracking_uri, "predict")


def selection(catalog: Catalog, model_id: str | None, opts: QueryOptions, with_class: bool = True) -> Selection:
    """Filters as SQL; an unknown class is a ConfigError listing the classes that exist."""
    conds, params, said = ["confidence >= ?"], [opts.min_confidence], [f"confidence >= {opts.min_confidence:g}"]
    if model_id is not None:
        conds.append("model_id = ?")
        params.append(model_id)
    if with_class and opts.class_name is not None:
        _check_class(catalog, model_id, opts.class_name)
        conds.append("predicted_class = ?")
        params.append(opts.class_name)
        said.insert(0, f"class={opts.class_name}")
    if opts.instrument is not None:
        conds.append("instrument = ?")
        params.append(opts.instrument)
        said.append(f"instrument={opts.instrument}")
    if opts.sol is not None:
        conds.append("sol BETWEEN ? AND ?")
        params.extend(opts.sol)
        said.append(f"sol {opts.sol[0]}" + (f"-{opts.sol[1]}" if opts.sol[1] != opts.sol[0] else ""))
    return Selection(" AND ".join(conds), tuple(params), ", ".join(said))


def _check_class(catalog: Catalog, model_id: str | None, name: str) -> None:
    names = sorted({c for m in catalog.models() if model_id in (None, m.model_id) for c in m.class_names})
    if name not in names:
        raise ConfigError(f"class: {name!r} is not a class of this catalog's model; classes: {', '.join(names)}")


def run_query(opts: QueryOptions, out: TextIO | None = None) -> int:
    """Print matching images and counts per class; returns how many images matched."""
    out = out or sys.stdout
    with Catalog.open(opts.catalog, create=False) as catalog:
        model_id = choose_model(catalog, opts)
        if model_id is None:
            print(f"catalog {opts.catalog} has no predictions yet", file=out)
            return 0
        sel = selection(catalog, model_id, opts)
        n_models = len(catalog.models())
        note = (f" (latest run's of {n_models} models; model=... picks another)"
                if n_models > 1 and not opts.model else "")
        print(f"model {model_id}{note}  filters: {sel.description}", file=out)
        precision = precision_note(catalog, model_id)
        if precision:
            print(f"note: {precision}", file=out)
        matched = _print_matches(catalog, sel, opts.limit, out)
        _print_counts(catalog, selection(catalog, model_id, opts, with_class=False), opts.class_name, out)
    return matched


def _print_matches(catalog: Catalog, sel: Selection, limit: int, out: TextIO) -> int:
    total = catalog.conn.execute(f"SELECT count(*) FROM predictions WHERE {sel.where}", sel.params).fetchone()[0]
    sql = f"SELECT path, predicted_class, confidence FROM predictions WHERE {sel.where} ORDER BY confidence DESC, path"
    rows = catalog.conn.execute(sql + (" LIMIT ?" if limit else ""), sel.params + ((limit,) if limit else ()))
    print("path\tclass\tconfidence", file=out)
    for path, name, confidence in rows:
        print(f"{path}\t{name}\t{confidence:.4f}", file=out)
    if limit and total > limit:
        print(f"... {total - limit} more ({total} match; limit=0 lists all, or export output=FILE.csv)", file=out)
    print(f"{total} images match", file=out)
    return total


def _print_counts(catalog: Catalog, sel: Selection, chosen: str | None, out: TextIO) -> None:
    rows = catalog.conn.execute(
        f"SELECT predicted_class, count(*) FROM predictions WHERE {sel.where} "
        "GROUP BY predicted_class ORDER BY count(*) DESC, predicted_class", sel.params).fetchall()
    print(f"images per class ({sel.description}):" + ("" if rows else " none"), file=out)
    width = max([12] + [len(name) for name, _ in rows])
    for name, n in rows:
        print(f"  {name:<{width}}  {n:>8}" + ("  <- class" if name == chosen else ""), file=out)


def run_export(opts: ExportOptions, out: TextIO | None = None) -> int:
    """Write the selected rows to ``opts.output`` (.csv or .parquet); returns the row count."""
    out = out or sys.stdout
    with Catalog.open(opts.query.catalog, create=False) as catalog:
        columns, rows, description = _export_rows(catalog, opts)
        opts.output.parent.mkdir(parents=True, exist_ok=True)
        if opts.output.suffix.lower() == ".parquet":
            n = _write_parquet(opts.output, columns, rows)
        else:
            n = _write_csv(opts.output, columns, rows)
    print(f"exported {n} rows of {opts.table} ({description}) to {opts.output}", file=out)
    return n


def _export_rows(catalog: Catalog, opts: ExportOptions) -> tuple[list[tuple[str, str]], sqlite3.Cursor, str]:
    columns = catalog.column_types(opts.table)
    model_id = choose_model(catalog, opts.query) if opts.query.model else None  # default: every model
    if opts.table == "predictions":
        sel = selection(catalog, model_id, opts.query)
        note = sel.description + ("" if opts.query.min_confidence == 0 else "; min_confidence=0 exports all")
        return columns, catalog.conn.execute(
            f"SELECT * FROM predictions WHERE {sel.where} ORDER BY model_id, path", sel.params), note
    where, params = ("WHERE model_id = ?", (model_id,)) if model_id else ("", ())
    order = "model_id, path" if opts.table == "errors" else "started_at"
    return columns, catalog.conn.execute(f"SELECT * FROM {opts.table} {where} ORDER BY {order}", params), \
        "all rows" if not model_id else f"model {model_id}"


def _write_csv(path: Path, columns: list[tuple[str, str]], rows: sqlite3.Cursor) -> int:
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([name for name, _ in columns])
        for row in rows:
            writer.writerow(row)
            n += 1
    tmp.replace(path)  # a reader never sees half an export
    return n


def _write_parquet(path: Path, columns: list[tuple[str, str]], rows: sqlite3.Cursor) -> int:
    """Typed from the SQLite column types, so an all-NULL batch cannot change a column's type."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("output: Parquet export needs pyarrow (pip install pyarrow); "
                          "or export to CSV with output=FILE.csv") from None
    types = {"INTEGER": pa.int64(), "REAL": pa.float64()}
    schema = pa.schema([(name, types.get(decl.upper(), pa.string())) for name, decl in columns])
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        while batch := rows.fetchmany(EXPORT_BATCH):
            writer.write_table(pa.Table.from_arrays(
                [pa.array(col, type=schema.field(i).type) for i, col in enumerate(zip(*batch, strict=True))],
                schema=schema))
            n += len(batch)
    tmp.replace(path)
    return n
