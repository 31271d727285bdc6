"""What the Atlas's routes share beyond the web stack: its options, one snapshot of the catalog per
request, and the catalog-wide facts of that snapshot (cached per connection and catalog version).

Each request reads one snapshot (a read transaction: its page, totals and counts agree even while
predict.py commits). Facts every request needs (models and their classes, which models have rows,
the count threshold of scenes) are read once per catalog version: SQLite's ``data_version`` of a
connection changes whenever another connection commits, so a cached fact is never older than the
snapshot it is used with.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Request

from deepmars.web.atlas.options import AtlasOptions
from deepmars.web.atlas.vocabulary import Vocabulary
from deepmars.web.database import read_db


@dataclass(frozen=True)
class CatalogFacts:
    """Catalog-wide facts of one catalog version."""

    models: tuple[tuple[str, str | None, tuple[str, ...]], ...]  # (model id, data set, classes), by id
    image_rows: dict[str, int]  # model -> prediction rows (models with none left out)
    has_sources: bool  # some prediction names a source image (HiRISE crops)
    scene_rows: dict[str, int]  # model -> landmark images
    count_confidences: tuple[float, ...]  # the thresholds landmarks were counted at
    count_confidence: float  # the one scenes are filtered by
    max_counts: dict[str, int]  # class -> the most landmarks of it in one scene, at count_confidence

    @property
    def image_models(self) -> tuple[str, ...]:
        return tuple(self.image_rows)

    @property
    def scene_models(self) -> tuple[str, ...]:
        return tuple(self.scene_rows)


# The distinct thresholds of scene_counts, one index seek each (its index leads with count_confidence).
_COUNT_CONFIDENCES = """
WITH RECURSIVE t(x) AS (SELECT min(count_confidence) FROM scene_counts
                        UNION ALL SELECT (SELECT min(count_confidence) FROM scene_counts WHERE count_confidence > x)
                        FROM t WHERE x IS NOT NULL)
SELECT x FROM t WHERE x IS NOT NULL"""


def _read_facts(conn: sqlite3.Connection, wanted_count_confidence: float) -> CatalogFacts:
    models = tuple((m, d, tuple(json.loads(c))) for m, d, c in
                   conn.execute("SELECT model_id, dataset, class_names FROM models ORDER BY model_id"))
    image_rows = dict(conn.execute("SELECT model_id, sum(n) FROM prediction_counts WHERE sols = 0 AND sol_bin = 0 "
                                   "GROUP BY 1 ORDER BY 1").fetchall())
    has_sources = conn.execute("SELECT 1 FROM predictions WHERE source_image IS NOT NULL LIMIT 1").fetchone()
    scene_rows = dict(conn.execute("SELECT model_id, count(*) FROM landmark_images GROUP BY 1 ORDER BY 1").fetchall())
    thresholds = tuple(r[0] for r in conn.execute(_COUNT_CONFIDENCES))
    # the configured threshold, or the one the catalog counted at when it has no other
    threshold = wanted_count_confidence if wanted_count_confidence in thresholds or not thresholds else thresholds[-1]
    max_counts = dict(conn.execute("SELECT class, max(n) FROM scene_class_pairs WHERE count_confidence = ? "
                                   "AND with_class = class GROUP BY 1", (threshold,)).fetchall())
    return CatalogFacts(models, image_rows, has_sources is not None, scene_rows, thresholds, threshold, max_counts)


class AtlasContext:
    """Options, the free-text vocabulary and the catalog facts, each rebuilt when the catalog changes."""

    def __init__(self, options: AtlasOptions):
        self.options = options
        self._vocabulary: tuple[tuple[str, ...], Vocabulary] | None = None
        self._facts: dict[int, tuple[int, CatalogFacts]] = {}  # id(connection) -> (data_version, facts)
        self._lock = threading.Lock()

    def facts(self, conn: sqlite3.Connection) -> CatalogFacts:
        """The facts of the catalog as ``conn`` sees it now (inside a request: its snapshot)."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        cached = self._facts.get(id(conn))
        if cached is None or cached[0] != version:
            cached = (version, _read_facts(conn, self.options.count_confidence))
            self._facts[id(conn)] = cached  # one entry per pooled connection: memory stays flat
        return cached[1]

    def models(self, conn: sqlite3.Connection) -> list[tuple[str, str | None, list[str]]]:
        return [(m, d, list(c)) for m, d, c in self.facts(conn).models]

    def vocabulary(self, conn: sqlite3.Connection) -> Vocabulary:
        classes = tuple(sorted({c for _, _, names in self.facts(conn).models for c in names}))
        with self._lock:
            if self._vocabulary is None or self._vocabulary[0] != classes:
                self._vocabulary = (classes, Vocabulary(classes, self.options.synonyms or {}))
            return self._vocabulary[1]

    def count_confidence(self, conn: sqlite3.Connection) -> float:
        """The configured count threshold, or the one the catalog counted at when it has no other."""
        return self.facts(conn).count_confidence


def atlas(request: Request) -> AtlasContext:
    """FastAPI dependency: the Atlas's context."""
    return request.app.state.atlas


def snapshot(conn: sqlite3.Connection = Depends(read_db)) -> Iterator[sqlite3.Connection]:
    """FastAPI dependency: the request's read-only connection inside one read transaction."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.rollback()
