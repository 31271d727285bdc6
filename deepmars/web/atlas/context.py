"""What the Atlas's routes share beyond the web stack: its options and the catalog's vocabulary."""

from __future__ import annotations

import json
import sqlite3
import threading

from fastapi import Request

from deepmars.web.atlas.options import AtlasOptions
from deepmars.web.atlas.vocabulary import Vocabulary


class AtlasContext:
    """Options plus the free-text vocabulary, rebuilt when the catalog's models change."""

    def __init__(self, options: AtlasOptions):
        self.options = options
        self._vocabulary: tuple[str, Vocabulary] | None = None
        self._lock = threading.Lock()

    def models(self, conn: sqlite3.Connection) -> list[tuple[str, str | None, list[str]]]:
        return [(m, d, json.loads(c)) for m, d, c in
                conn.execute("SELECT model_id, dataset, class_names FROM models ORDER BY model_id")]

    def vocabulary(self, conn: sqlite3.Connection) -> Vocabulary:
        classes = sorted({c for _, _, names in self.models(conn) for c in names})
        key = json.dumps(classes)
        with self._lock:
            if self._vocabulary is None or self._vocabulary[0] != key:
                self._vocabulary = (key, Vocabulary(classes, self.options.synonyms or {}))
            return self._vocabulary[1]

    def count_confidence(self, conn: sqlite3.Connection) -> float:
        """The configured count threshold, or the one the catalog counted at when it has no other."""
        wanted = self.options.count_confidence
        # stops at the first row counted at ``wanted`` (nearly always the first row): no scan of the table
        if conn.execute("SELECT 1 FROM landmark_counts WHERE count_confidence = ? LIMIT 1", (wanted,)).fetchone():
            return wanted
        other = conn.execute("SELECT max(count_confidence) FROM landmark_counts").fetchone()[0]
        return wanted if other is None else other


def atlas(request: Request) -> AtlasContext:
    """FastAPI dependency: the Atlas's context."""
    return request.app.state.atlas
