"""HiRISE scenes (``landmark_images``) with classified landmarks: result pages, counts, detail.

A scene matches a class when it holds at least the asked number of landmarks of that class at the
catalog's count confidence (``landmark_counts``, posterior >= 0.9 by default); several classes must
all hold. Pages are ordered by source image id, keyset on (source_image, id).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass

from deepmars.web.atlas.filters import Cursor, Filters, Page
from deepmars.web.atlas.vocabulary import ParsedText

RESULT_COLUMNS = "s.id, s.model_id, s.path, s.source_image, s.landmarks, s.working_width, s.working_height"


@dataclass(frozen=True)
class SceneQuery:
    filters: Filters
    min_counts: tuple[tuple[str, int], ...]  # class -> at least n (ticked classes and text classes: 1)
    fts: str | None
    count_confidence: float


def scene_query(filters: Filters, text: ParsedText, count_confidence: float) -> SceneQuery:
    wanted = dict.fromkeys(filters.classes + text.classes, 1)
    for name, n in filters.min_counts:
        wanted[name] = max(n, wanted.get(name, 0))
    return SceneQuery(filters, tuple((c, n) for c, n in wanted.items() if n > 0), text.fts_query, count_confidence)


def _conditions(q: SceneQuery) -> tuple[list[str], list]:
    f = q.filters
    conds, params = [], []
    if f.models:
        conds.append(f"s.model_id IN ({', '.join('?' * len(f.models))})")
        params.extend(f.models)
    if f.source_image:
        conds.append("s.source_image = ?")
        params.append(f.source_image)
    for name, n in q.min_counts:
        # an uncorrelated IN: the scenes holding enough of the class are read once from
        # landmark_counts_by_class, not looked up scene by scene (2x faster at 16,000 scenes)
        conds.append("(s.model_id, s.sha256) IN (SELECT model_id, sha256 FROM landmark_counts "
                     "WHERE class = ? AND count_confidence = ? AND n >= ?)")
        params.extend([name, q.count_confidence, n])
    if q.fts:
        conds.append("s.id IN (SELECT rowid FROM scene_text WHERE scene_text MATCH ?)")
        params.append(q.fts)
    return conds, params


def _where(conds: list[str]) -> str:
    return " WHERE " + " AND ".join(conds) if conds else ""


def page(conn: sqlite3.Connection, q: SceneQuery, after: Cursor | None, limit: int) -> Page:
    conds, params = _conditions(q)
    if after is not None:
        conds.append("(s.source_image, s.id) > (?, ?)")
        params.extend([after.key, after.id])
    rows = conn.execute(f"SELECT {RESULT_COLUMNS} FROM landmark_images s{_where(conds)} "
                        "ORDER BY s.source_image, s.id LIMIT ?", params + [limit + 1]).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, Cursor(rows[-1][3], rows[-1][0]).encode() if more else None)


def counts(conn: sqlite3.Connection, q: SceneQuery, facet: str | None) -> Counter:
    """Scenes per model, per class (holding at least one at count confidence), or in all (None)."""
    if facet == "class":
        conds, params = _conditions(q)
        sql = ("SELECT c.class, count(*) FROM landmark_images s JOIN landmark_counts c ON c.model_id = s.model_id "
               f"AND c.sha256 = s.sha256 AND c.count_confidence = ? AND c.n >= 1{_where(conds)} GROUP BY 1")
        return Counter(dict(conn.execute(sql, [q.count_confidence] + params).fetchall()))
    if facet == "model":
        q = SceneQuery(q.filters.without("model"), q.min_counts, q.fts, q.count_confidence)
    conds, params = _conditions(q)
    group = {"model": "s.model_id", None: "NULL"}[facet]
    return Counter(dict(conn.execute(f"SELECT {group}, count(*) FROM landmark_images s{_where(conds)} GROUP BY 1",
                                     params).fetchall()))


def landmark_counts_of(conn: sqlite3.Connection, ids: list[int], count_confidence: float) -> dict[int, dict[str, int]]:
    """Landmarks per class at count confidence of the scenes ``ids`` (a page), zero counts left out."""
    if not ids:
        return {}
    out: dict[int, dict[str, int]] = {i: {} for i in ids}
    rows = conn.execute(
        f"SELECT s.id, c.class, c.n FROM landmark_images s JOIN landmark_counts c ON c.model_id = s.model_id "
        f"AND c.sha256 = s.sha256 WHERE s.id IN ({', '.join('?' * len(ids))}) AND c.count_confidence = ? "
        "AND c.n > 0 ORDER BY c.n DESC", [*ids, count_confidence])
    for scene_id, name, n in rows:
        out[scene_id][name] = n
    return out


def max_counts(conn: sqlite3.Connection, models: tuple[str, ...], count_confidence: float) -> dict[str, int]:
    """The largest count of each class in one scene: the top of its minimum-count slider."""
    where, params = "", [count_confidence]
    if models:
        where = f" AND model_id IN ({', '.join('?' * len(models))})"
        params.extend(models)
    return dict(conn.execute("SELECT class, max(n) FROM landmark_counts WHERE count_confidence = ?"
                             f"{where} GROUP BY class", params).fetchall())


def detail(conn: sqlite3.Connection, scene_id: int) -> dict | None:
    cur = conn.execute("SELECT * FROM landmark_images WHERE id = ?", (scene_id,))
    row = cur.fetchone()
    return None if row is None else dict(zip([c[0] for c in cur.description], row))


def landmarks(conn: sqlite3.Connection, model_id: str, sha256: str) -> list[dict]:
    cur = conn.execute("SELECT landmark_id, x, y, w, h, src_x, src_y, src_w, src_h, area, predicted_class, "
                       "confidence, top_k, abstained, crop_file FROM landmarks WHERE model_id = ? AND sha256 = ? "
                       "ORDER BY landmark_id", (model_id, sha256))
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r)) for r in cur]


def export_rows(conn: sqlite3.Connection, q: SceneQuery) -> sqlite3.Cursor:
    conds, params = _conditions(q)
    return conn.execute(f"SELECT {RESULT_COLUMNS}, s.sha256, s.source_width, s.source_height, s.notes "
                        f"FROM landmark_images s{_where(conds)} ORDER BY s.source_image, s.id", params)


def top_sources(conn: sqlite3.Connection, q: SceneQuery, n: int) -> Counter:
    """The matching scenes with the most landmarks (the source-image facet of scenes)."""
    conds, params = _conditions(q)
    rows = conn.execute(f"SELECT s.source_image, s.landmarks FROM landmark_images s{_where(conds)} "
                        "ORDER BY s.landmarks DESC, s.source_image LIMIT ?", params + [n])
    return Counter(dict(rows.fetchall()))
