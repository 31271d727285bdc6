"""HiRISE scenes (``landmark_images``) with classified landmarks: result pages, counts, detail.

A scene matches a class when it holds at least the asked number of landmarks of that class at the
catalog's count confidence (posterior >= 0.9 by default); several classes must all hold. Pages are
ordered by source image id, keyset on (source_image, id).

A search with classes reads ``scene_counts`` (the counts by scene row id, with each scene's source
image and landmark total): the scenes with >= n of one class are one index range, each other class
one more range, read once into a look-up table the first range is checked against (an
uncorrelated IN), all inside SQLite. Totals and the class facet of a search with one class and no
other narrowing come from ``scene_class_pairs`` alone (a few dozen rows); a search without classes
walks ``landmark_images`` by its indexes.
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
    models: tuple[str, ...] = ()  # the models with scenes (what "no model filter" means)

    @property
    def wanted_models(self) -> tuple[str, ...]:
        return self.filters.models or self.models

    @property
    def one_class(self) -> bool:
        """One minimum count and nothing else narrows: the pairs table answers its counts."""
        return len(self.min_counts) == 1 and not self.fts and not self.filters.source_image


def scene_query(filters: Filters, text: ParsedText, count_confidence: float,
                models: tuple[str, ...] = ()) -> SceneQuery:
    wanted = dict.fromkeys(filters.classes + text.classes, 1)
    for name, n in filters.min_counts:
        wanted[name] = max(n, wanted.get(name, 0))
    return SceneQuery(filters, tuple((c, n) for c, n in wanted.items() if n > 0), text.fts_query, count_confidence,
                      models)


def _marks(values: tuple) -> str:
    return ", ".join("?" * len(values))


@dataclass(frozen=True)
class Matching:
    """The scenes a query matches, as a FROM and WHERE over alias ``a`` with id/source/landmarks/model."""

    table: str
    id: str
    conds: tuple[str, ...]
    params: tuple

    def sql(self, columns: str, extra: list[str] | None = None, tail: str = "") -> str:
        conds = [*self.conds, *(extra or [])]
        return f"SELECT {columns} FROM {self.table}{' WHERE ' + ' AND '.join(conds) if conds else ''}{tail}"


def _holding(alias: str, models: tuple[str, ...]) -> str:
    """scene_counts rows of the scenes with >= n of a class, one range of scene_counts_by_class;
    parameters: count confidence, the models, class, n."""
    return (f"{alias}count_confidence = ? AND {alias}model_id IN ({_marks(models)}) AND {alias}class = ? "
            f"AND {alias}n >= ?")


def matching(q: SceneQuery, models: tuple[str, ...] | None = None) -> Matching:
    """``q``'s scenes among ``models`` (default: its model filter, else every model with scenes)."""
    models = q.wanted_models if models is None else models
    conds, params = [], []
    if q.min_counts:  # driven by the class with the largest minimum (the fewest scenes, most often)
        (first, n), *others = sorted(q.min_counts, key=lambda item: -item[1])
        table, scene_id = "scene_counts a", "a.scene_id"
        conds.append(_holding("a.", models))
        params += [q.count_confidence, *models, first, n]
        for name, m in others:
            # each other class's range, read once into a look-up table, not a key look-up per scene
            # (nor a set built in Python: row by row, with several requests at once, the GIL is what
            # they wait for). '+': the ranges drive, not the primary key sought per id of the list
            conds.append(f"+a.scene_id IN (SELECT scene_id FROM scene_counts WHERE {_holding('', models)})")
            params += [q.count_confidence, *models, name, m]
    else:
        table, scene_id = "landmark_images a", "a.id"
        if q.filters.models or models != q.models:
            conds.append(f"a.model_id IN ({_marks(models)})")
            params += models
    if q.filters.source_image:
        conds.append("a.source_image = ?")
        params.append(q.filters.source_image)
    if q.fts:
        conds.append(f"{scene_id} IN (SELECT rowid FROM scene_text WHERE scene_text MATCH ?)")
        params.append(q.fts)
    return Matching(table, scene_id, tuple(conds), tuple(params))


def _keyset(after: Cursor | None, source: str, scene_id: str) -> tuple[list[str], list]:
    return ([], []) if after is None else ([f"({source}, {scene_id}) > (?, ?)"], [after.key, after.id])


def page(conn: sqlite3.Connection, q: SceneQuery, after: Cursor | None, limit: int) -> Page:
    m = matching(q)
    extra, params = _keyset(after, "a.source_image", m.id)
    ids = [r[0] for r in conn.execute(m.sql(m.id, extra, f" ORDER BY a.source_image, {m.id} LIMIT ?"),
                                      [*m.params, *params, limit + 1])]
    return _page_of(conn, ids, limit)


def _counted_from_rows(q: SceneQuery) -> bool:
    """Whether q's total counts the matching scenes themselves (not the pairs table or the facts)."""
    return not q.one_class and bool(q.min_counts or q.fts or q.filters.source_image)


def page_and_total(conn: sqlite3.Connection, q: SceneQuery, after: Cursor | None, limit: int,
                   scene_rows: dict[str, int]) -> tuple[Page, int]:
    """A result page and the total (``scene_rows``: scenes per model, the catalog's facts); when the
    total counts the matching scenes, both from one pass over them (several minimum counts: the
    class ranges are read once, not once for the page and again for the total)."""
    if not _counted_from_rows(q):
        return page(conn, q, after, limit), total(conn, q, scene_rows)
    m = matching(q)
    extra, params = _keyset(after, "source_image", "id")
    rows = conn.execute(f"WITH m AS MATERIALIZED ({m.sql(f'a.source_image, {m.id} AS id')}) "
                        f"SELECT id, (SELECT count(*) FROM m) FROM m{' WHERE ' + extra[0] if extra else ''} "
                        "ORDER BY source_image, id LIMIT ?", [*m.params, *params, limit + 1]).fetchall()
    count = rows[0][1] if rows else total(conn, q, scene_rows)  # past the last page: no row to carry it
    return _page_of(conn, [r[0] for r in rows], limit), count


def _page_of(conn: sqlite3.Connection, ids: list[int], limit: int) -> Page:
    """The page of scene ``ids`` (in order; one more than ``limit`` when another page follows)."""
    more = len(ids) > limit
    ids = ids[:limit]
    found = {r[0]: r for r in conn.execute(f"SELECT {RESULT_COLUMNS} FROM landmark_images s WHERE s.id IN "
                                           f"({_marks(tuple(ids))})", ids)} if ids else {}
    rows = [found[i] for i in ids]
    return Page(rows, Cursor(rows[-1][3], rows[-1][0]).encode() if more else None)


def _pairs(conn: sqlite3.Connection, q: SceneQuery, group: str, models: tuple[str, ...],
           name: str | None = None, n: int = 1) -> Counter:
    """Scenes from scene_class_pairs, per ``group`` (model_id, class or with_class): with ``name``,
    those with >= n of it (per with_class: and >= 1 of that class); without, those with >= n of each class."""
    conds = ["count_confidence = ?", f"model_id IN ({_marks(models)})", "n >= ?"]
    params: list = [q.count_confidence, *models, n]
    if name is not None:
        conds.append("class = ?")
        params.append(name)
    if group != "with_class":
        conds.append("with_class = class")  # the pairs of a class with itself: its scenes
    rows = conn.execute(f"SELECT {group}, sum(scenes) FROM scene_class_pairs WHERE {' AND '.join(conds)} GROUP BY 1",
                        params)
    return Counter(dict(rows.fetchall()))


def total(conn: sqlite3.Connection, q: SceneQuery, scene_rows: dict[str, int]) -> int:
    """Matching scenes; ``scene_rows``: scenes per model (the catalog's facts)."""
    if q.one_class:
        name, n = q.min_counts[0]
        return sum(_pairs(conn, q, "model_id", q.wanted_models, name, n).values())
    if not q.min_counts and not q.fts and not q.filters.source_image:
        return sum(scene_rows.get(m, 0) for m in q.wanted_models)
    m = matching(q)
    return conn.execute(m.sql("count(*)"), m.params).fetchone()[0]


def model_counts(conn: sqlite3.Connection, q: SceneQuery, scene_rows: dict[str, int]) -> Counter:
    """Matching scenes per model, whatever models are ticked."""
    if q.one_class:
        name, n = q.min_counts[0]
        return _pairs(conn, q, "model_id", q.models, name, n)
    if not q.min_counts and not q.fts and not q.filters.source_image:
        return Counter(scene_rows)
    m = matching(q, q.models)
    return Counter(dict(conn.execute(m.sql("a.model_id, count(*)", tail=" GROUP BY 1"), m.params).fetchall()))


def model_counts_and_total(conn: sqlite3.Connection, q: SceneQuery,
                           scene_rows: dict[str, int]) -> tuple[Counter, int]:
    """Matching scenes per model (whatever models are ticked) and in all (among the ticked ones):
    the total is the ticked models' counts, so the matching scenes are found once for both."""
    per_model = model_counts(conn, q, scene_rows)
    return per_model, sum(per_model[m] for m in q.wanted_models)


def class_counts(conn: sqlite3.Connection, q: SceneQuery) -> Counter:
    """Matching scenes holding at least one landmark of each class (at count confidence)."""
    if q.one_class:
        name, n = q.min_counts[0]
        return _pairs(conn, q, "with_class", q.wanted_models, name, n)
    if not q.min_counts and not q.fts and not q.filters.source_image:
        return _pairs(conn, q, "class", q.wanted_models)
    m = matching(q)
    joined = Matching(f"{m.table} JOIN scene_counts c ON c.scene_id = {m.id} AND c.count_confidence = ? AND c.n >= 1",
                      m.id, m.conds, (q.count_confidence, *m.params))
    return Counter(dict(conn.execute(joined.sql("c.class, count(*)", tail=" GROUP BY 1"), joined.params).fetchall()))


def facets(conn: sqlite3.Connection, q: SceneQuery, scene_rows: dict[str, int],
           sources: int) -> tuple[Counter, int, Counter, Counter]:
    """All the facets of a search: matching scenes per model (whatever models are ticked), in all, per
    class they hold (at count confidence), and the ``sources`` scenes with the most landmarks.

    Scenes matched row by row (several minimum counts, text, a source image) are found once for all
    of them, in one statement over the matched scenes, instead of once per facet."""
    if not _counted_from_rows(q) or q.wanted_models != q.models:
        per_model, total = model_counts_and_total(conn, q, scene_rows)
        return per_model, total, class_counts(conn, q), top_sources(conn, q, sources)
    m = matching(q)
    found = f"{m.id} AS scene_id, a.model_id AS model_id, a.source_image AS source_image, a.landmarks AS landmarks"
    rows = conn.execute(
        f"WITH m AS MATERIALIZED ({m.sql(found)}) "
        # CROSS JOIN: the matched scenes drive, each looked up in scene_counts by its key
        "SELECT 0, c.class, count(*) FROM m CROSS JOIN scene_counts c ON c.scene_id = m.scene_id "
        "AND c.count_confidence = ? AND c.n >= 1 GROUP BY 2 "
        "UNION ALL SELECT 1, model_id, count(*) FROM m GROUP BY 2 "
        "UNION ALL SELECT * FROM (SELECT 2, source_image, landmarks FROM m "
        "ORDER BY landmarks DESC, source_image LIMIT ?)",
        [*m.params, q.count_confidence, sources]).fetchall()
    per_class, per_model = (Counter({value: n for kind, value, n in rows if kind == k}) for k in (0, 1))
    top = sorted(((value, n) for kind, value, n in rows if kind == 2), key=lambda item: (-item[1], item[0]))
    return per_model, sum(per_model.values()), per_class, Counter(dict(top))


def top_sources(conn: sqlite3.Connection, q: SceneQuery, n: int) -> Counter:
    """The matching scenes with the most landmarks (the source-image facet of scenes)."""
    m = matching(q)
    rows = conn.execute(m.sql("a.source_image, a.landmarks", tail=" ORDER BY a.landmarks DESC, a.source_image LIMIT ?"),
                        [*m.params, n])
    return Counter(dict(rows.fetchall()))


def landmark_counts_of(conn: sqlite3.Connection, ids: list[int], count_confidence: float) -> dict[int, dict[str, int]]:
    """Landmarks per class at count confidence of the scenes ``ids`` (a page), zero counts left out."""
    if not ids:
        return {}
    out: dict[int, dict[str, int]] = {i: {} for i in ids}
    rows = conn.execute(
        f"SELECT scene_id, class, n FROM scene_counts WHERE scene_id IN ({_marks(tuple(ids))}) "
        "AND count_confidence = ? AND n > 0 ORDER BY n DESC, class", [*ids, count_confidence])
    for scene_id, name, n in rows:
        out[scene_id][name] = n
    return out


def detail(conn: sqlite3.Connection, scene_id: int) -> dict | None:
    cur = conn.execute("SELECT * FROM landmark_images WHERE id = ?", (scene_id,))
    row = cur.fetchone()
    return None if row is None else dict(zip([c[0] for c in cur.description], row, strict=True))


def landmarks(conn: sqlite3.Connection, model_id: str, sha256: str) -> list[dict]:
    cur = conn.execute("SELECT landmark_id, x, y, w, h, src_x, src_y, src_w, src_h, area, predicted_class, "
                       "confidence, top_k, abstained, crop_file FROM landmarks WHERE model_id = ? AND sha256 = ? "
                       "ORDER BY landmark_id", (model_id, sha256))
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]


def export_rows(conn: sqlite3.Connection, q: SceneQuery) -> sqlite3.Cursor:
    m = matching(q)
    return conn.execute(f"SELECT {RESULT_COLUMNS}, s.sha256, s.source_width, s.source_height, s.notes "
                        f"FROM landmark_images s WHERE s.id IN ({m.sql(m.id)}) ORDER BY s.source_image, s.id",
                        m.params)
