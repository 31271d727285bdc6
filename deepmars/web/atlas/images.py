"""Whole-image predictions: the query a search asks, its result pages, one image, the export.

Result pages are best first (confidence, then row id, both descending) and continue from a keyset
cursor, one query per (model, class) on the index that serves it (``predictions_by_class`` or
``predictions_by_confidence``), merged in Python: page 10,000 costs what page 1 does. Counts are
``image_counts``'s.
"""

from __future__ import annotations

import heapq
import sqlite3
from dataclasses import dataclass

from deepmars.web.atlas.filters import Cursor, Filters, Page
from deepmars.web.atlas.vocabulary import ParsedText

RESULT_COLUMNS = "id, model_id, path, predicted_class, confidence, sol, instrument, source_image, abstained"


NO_CLASS = "\x00"  # a class no row has: ticked classes and the text's classes that exclude each other


@dataclass(frozen=True)
class Query:
    """Filters with the free text resolved: the classes to keep and the FTS5 expression."""

    filters: Filters
    classes: tuple[str, ...]
    fts: str | None

    @classmethod
    def of(cls, filters: Filters, text: ParsedText) -> Query:
        chosen, named = filters.classes, text.classes
        if chosen and named:  # the text narrows the ticked classes
            classes = tuple(c for c in chosen if c in named) or (NO_CLASS,)
        else:
            classes = chosen or named
        return cls(filters, classes, text.fts_query)

    def without(self, facet: str) -> Query:
        if facet == "class":
            return Query(self.filters.without(facet), (), self.fts)
        return Query(self.filters.without(facet), self.classes, self.fts)


def _in(column: str, values: tuple, conds: list[str], params: list) -> None:
    if values:
        conds.append(f"{column} IN ({', '.join('?' * len(values))})")
        params.extend(values)


def row_conditions(q: Query, with_model_class: bool = True) -> tuple[list[str], list]:
    """WHERE terms and parameters of the rows ``q`` matches."""
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
    if f.min_confidence:
        conds.append("confidence >= ?")
        params.append(f.min_confidence)
    if not f.abstained:
        conds.append("abstained = 0")
    if q.fts:
        conds.append("id IN (SELECT rowid FROM prediction_text WHERE prediction_text MATCH ?)")
        params.append(q.fts)
    return conds, params


def where(conds: list[str]) -> str:
    return " WHERE " + " AND ".join(conds) if conds else ""


def page(conn: sqlite3.Connection, q: Query, models: tuple[str, ...], after: Cursor | None, limit: int) -> Page:
    """One result page, best first, after ``after``; ``models``: those with rows (when q names none)."""
    models = q.filters.models or models
    conds, params = row_conditions(q, with_model_class=False)
    if after is not None:
        conds.append("(confidence, id) < (?, ?)")
        params.extend([after.key, after.id])
    streams = []
    for model in models:
        for name in q.classes or (None,):
            head = ["model_id = ?"] + (["predicted_class = ?"] if name is not None else [])
            sql = (f"SELECT {RESULT_COLUMNS} FROM predictions{where(head + conds)} "
                   "ORDER BY confidence DESC, id DESC LIMIT ?")
            streams.append(conn.execute(sql, [model] + ([name] if name is not None else []) + params + [limit + 1]))
    rows = list(heapq.merge(*streams, key=lambda r: (-r[4], -r[0])))[:limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, Cursor(rows[-1][4], rows[-1][0]).encode() if more else None)


def detail(conn: sqlite3.Connection, image_id: int) -> dict | None:
    cur = conn.execute("SELECT * FROM predictions WHERE id = ?", (image_id,))
    row = cur.fetchone()
    return None if row is None else dict(zip([c[0] for c in cur.description], row, strict=True))


def export_rows(conn: sqlite3.Connection, q: Query) -> sqlite3.Cursor:
    """Every matching row, best first, streamed by the caller (no LIMIT, no list in memory)."""
    conds, params = row_conditions(q)
    return conn.execute(f"SELECT {RESULT_COLUMNS}, sha256, width, height, metadata FROM predictions"
                        f"{where(conds)} ORDER BY confidence DESC, id DESC", params)
