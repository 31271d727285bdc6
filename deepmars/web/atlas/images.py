"""Whole-image predictions: result pages, totals and facet counts.

Result pages are best first (confidence, then row id, both descending) and continue from a keyset
cursor, one query per (model, class) on the index that serves it (``predictions_by_class`` or
``predictions_by_confidence``), merged in Python: page 10,000 costs what page 1 does.

Counts come from the facet tables the catalog keeps (``prediction_facets``, and
``prediction_sol_facets`` per SOL_BIN sols), a few thousand rows whatever the catalog's size. A sol
range reads whole bins there and the sols at its ends from ``predictions_by_sol``; free text or a
source image count the matching rows themselves.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections import Counter
from dataclasses import dataclass

from deepmars.catalog.schema import CONFIDENCE_STEPS, SOL_BIN
from deepmars.web.atlas.filters import Cursor, Filters, Page
from deepmars.web.atlas.vocabulary import ParsedText

RESULT_COLUMNS = "id, model_id, path, predicted_class, confidence, sol, instrument, source_image, abstained"
# Facet -> the column it groups by, in the rows table and in the facet tables (fixed allow-list).
ROW_GROUPS = {"model": "model_id", "class": "predicted_class", "instrument": "IFNULL(instrument, '')",
              "sol": f"sol / {SOL_BIN}", "source_image": "source_image", None: "NULL"}
FACET_GROUPS = {"model": "model_id", "class": "predicted_class", "instrument": "instrument", "sol": "sol_bin",
                None: "NULL"}


NO_CLASS = "\x00"  # a class no row has: ticked classes and the text's classes that exclude each other


@dataclass(frozen=True)
class Query:
    """Filters with the free text resolved: the classes to keep and the FTS5 expression."""

    filters: Filters
    classes: tuple[str, ...]
    fts: str | None

    @classmethod
    def of(cls, filters: Filters, text: ParsedText) -> "Query":
        chosen, named = filters.classes, text.classes
        if chosen and named:  # the text narrows the ticked classes
            classes = tuple(c for c in chosen if c in named) or (NO_CLASS,)
        else:
            classes = chosen or named
        return cls(filters, classes, text.fts_query)

    def without(self, facet: str) -> "Query":
        if facet == "class":
            return Query(self.filters.without(facet), (), self.fts)
        return Query(self.filters.without(facet), self.classes, self.fts)


def _in(column: str, values: tuple, conds: list[str], params: list) -> None:
    if values:
        conds.append(f"{column} IN ({', '.join('?' * len(values))})")
        params.extend(values)


def _row_conditions(q: Query, with_model_class: bool = True) -> tuple[list[str], list]:
    f = q.filters
    conds, params = [], []
    if with_model_class:
        _in("model_id", f.models, conds, params)
        _in("predicted_class", q.classes, conds, params)
    _in("instrument", f.instruments, conds, params)
    if f.sol_min is not None:
        conds.append("sol >= ?")
        params.append(f.sol_min)
    if f.sol_max is not None:
        conds.append("sol <= ?")
        params.append(f.sol_max)
    if f.source_image:
        conds.append("source_image = ?")
        params.append(f.source_image)
    if f.confidence_step:
        conds.append(f"confidence >= ? / {CONFIDENCE_STEPS}.0")
        params.append(f.confidence_step)
    if not f.abstained:
        conds.append("abstained = 0")
    if q.fts:
        conds.append("id IN (SELECT rowid FROM prediction_text WHERE prediction_text MATCH ?)")
        params.append(q.fts)
    return conds, params


def _where(conds: list[str]) -> str:
    return " WHERE " + " AND ".join(conds) if conds else ""


def models_with_rows(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT model_id FROM prediction_facets ORDER BY 1")]


def page(conn: sqlite3.Connection, q: Query, after: Cursor | None, limit: int) -> Page:
    """One result page, best first, after ``after``."""
    models = q.filters.models or tuple(models_with_rows(conn))
    conds, params = _row_conditions(q, with_model_class=False)
    if after is not None:
        conds.append("(confidence, id) < (?, ?)")
        params.extend([after.key, after.id])
    streams = []
    for model in models:
        for name in q.classes or (None,):
            head = ["model_id = ?"] + (["predicted_class = ?"] if name is not None else [])
            sql = (f"SELECT {RESULT_COLUMNS} FROM predictions{_where(head + conds)} "
                   "ORDER BY confidence DESC, id DESC LIMIT ?")
            streams.append(conn.execute(sql, [model] + ([name] if name is not None else []) + params + [limit + 1]))
    rows = list(heapq.merge(*streams, key=lambda r: (-r[4], -r[0])))[:limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, Cursor(rows[-1][4], rows[-1][0]).encode() if more else None)


def counts(conn: sqlite3.Connection, q: Query, facet: str | None, edges: dict | None = None) -> Counter:
    """Rows per value of ``facet`` (None: the total under key None) matching ``q``.

    ``edges``: a dict kept across the facets of one request, so the rows at the ends of a sol range
    are read once (grouped by model, class and instrument) and filtered per facet in Python.
    """
    f = q.filters
    if q.fts or f.source_image or facet == "source_image":
        return _row_counts(conn, q, facet, None)
    if f.sol_min is None and f.sol_max is None:
        return _facet_counts(conn, q, facet, None)
    lo, hi = f.sol_min or 0, f.sol_max if f.sol_max is not None else 10**9
    first_bin, last_bin = -(-lo // SOL_BIN), (hi + 1) // SOL_BIN - 1  # the bins wholly inside [lo, hi]
    if first_bin > last_bin:
        return _row_counts(conn, q, facet, (lo, hi))
    total = _facet_counts(conn, q, facet, (first_bin, last_bin))
    ends = [(lo, first_bin * SOL_BIN - 1), ((last_bin + 1) * SOL_BIN, hi)]
    for sols in [(a, b) for a, b in ends if a <= b]:
        key = (sols, f.confidence_step, f.abstained)
        rows = None if edges is None else edges.get(key)
        if rows is None:
            rows = _edge_rows(conn, q, sols)
            if edges is not None:
                edges[key] = rows
        total.update(_filtered(rows, q, facet))
    return total


def _edge_rows(conn: sqlite3.Connection, q: Query, sols: tuple[int, int]) -> list[tuple]:
    """(model, class, instrument, rows) with sol in ``sols``, one index range per model."""
    f = q.filters
    extra = (f" AND confidence >= {f.confidence_step} / {CONFIDENCE_STEPS}.0" if f.confidence_step else "") + \
        ("" if f.abstained else " AND abstained = 0")
    out = []
    for model in models_with_rows(conn):
        out += [(model, *r) for r in conn.execute(
            "SELECT predicted_class, IFNULL(instrument, ''), count(*) FROM predictions WHERE model_id = ? "
            f"AND sol BETWEEN ? AND ?{extra} GROUP BY 1, 2", (model, *sols))]
    return out


def _filtered(rows: list[tuple], q: Query, facet: str | None) -> Counter:
    """Edge rows under q's model, class and instrument filters, per value of ``facet``."""
    f = q.filters
    out: Counter = Counter()
    at = {"model": 0, "class": 1, "instrument": 2}
    for row in rows:
        if (f.models and row[0] not in f.models) or (q.classes and row[1] not in q.classes) or \
                (f.instruments and row[2] not in f.instruments):
            continue
        out[row[at[facet]] if facet in at else None] += row[3]
    return out


def _facet_counts(conn: sqlite3.Connection, q: Query, facet: str | None, bins: tuple[int, int] | None) -> Counter:
    f = q.filters
    table = "prediction_sol_facets" if bins is not None or facet == "sol" else "prediction_facets"
    conds, params = [], []
    _in("model_id", f.models, conds, params)
    _in("predicted_class", q.classes, conds, params)
    _in("instrument", f.instruments, conds, params)
    if bins is not None:
        conds.append("sol_bin BETWEEN ? AND ?")
        params.extend(bins)
    if f.confidence_step:
        conds.append("confidence_step >= ?")
        params.append(f.confidence_step)
    if not f.abstained:
        conds.append("abstained = 0")
    group = FACET_GROUPS[facet]
    sql = f"SELECT {group}, sum(n) FROM {table}{_where(conds)} GROUP BY 1"
    return Counter(dict(conn.execute(sql, params).fetchall()))


def _row_counts(conn: sqlite3.Connection, q: Query, facet: str | None, sols: tuple[int, int] | None) -> Counter:
    conds, params = _row_conditions(q)
    if sols is not None:  # the ends of a sol range, replacing the range itself
        conds = [c for c in conds if not c.startswith("sol ")]
        params = _without_sol_params(q, params)
        conds.append("sol BETWEEN ? AND ?")
        params.extend(sols)
    group = ROW_GROUPS[facet]
    extra = " AND source_image IS NOT NULL" if facet == "source_image" else ""
    where = _where(conds) + (extra if conds else extra.replace(" AND", " WHERE", 1))
    sql = f"SELECT {group}, count(*) FROM predictions{where} GROUP BY 1"
    return Counter(dict(conn.execute(sql, params).fetchall()))


def _without_sol_params(q: Query, params: list) -> list:
    """The parameters of _row_conditions without the sol bounds (they follow model, class, instrument)."""
    f = q.filters
    start = len(f.models) + len(q.classes) + len(f.instruments)
    n_sol = (f.sol_min is not None) + (f.sol_max is not None)
    return params[:start] + params[start + n_sol:]


def detail(conn: sqlite3.Connection, image_id: int) -> dict | None:
    cur = conn.execute("SELECT * FROM predictions WHERE id = ?", (image_id,))
    row = cur.fetchone()
    return None if row is None else dict(zip([c[0] for c in cur.description], row))


def export_rows(conn: sqlite3.Connection, q: Query) -> sqlite3.Cursor:
    """Every matching row, best first, streamed by the caller (no LIMIT, no list in memory)."""
    conds, params = _row_conditions(q)
    return conn.execute(f"SELECT {RESULT_COLUMNS}, sha256, width, height, metadata FROM predictions"
                        f"{_where(conds)} ORDER BY confidence DESC, id DESC", params)
