"""How many whole-image predictions a search matches, in all and per facet value: exact, and read from
the count tables (``deepmars.catalog.count_tables``) rather than the rows wherever they can answer.

One request reads, for its sol selection (every row, or whole 50-, 10- and 1-sol bins that tile its
range exactly), the rows per (model, class, instrument) at its confidence threshold: at most a few
thousand count rows, grouped to a few hundred. Every facet but the sol histogram, and the total,
follows from those in Python (each facet ignoring its own selection); the histogram is one range
of 50-sol bins. A threshold off the grid is the nearest grid value's column corrected by the rows
between the two, counted from the confidence index alone (an index range). Free text and a source image
narrow rows the count tables do not know of: those count the matching rows themselves (few, by
their indexes).
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass

from deepmars.catalog.count_tables import COUNT_COLUMNS, GRID_VALUES, SOL_BIN, SOL_LEVELS
from deepmars.web.atlas.images import Query, row_conditions, where

FACETS = ("model", "class", "instrument")  # the facets counted from the (model, class, instrument) tallies
NO_SOL_LIMIT = 10**9
# Facet -> the column rows are grouped by when counted from the rows themselves (fixed allow-list).
ROW_GROUPS = {"model": "model_id", "class": "predicted_class", "instrument": "IFNULL(instrument, '')",
              "sol": f"CASE WHEN sol >= 0 THEN sol / {SOL_BIN} END", "source_image": "source_image", None: "NULL"}


@dataclass(frozen=True)
class Threshold:
    """A confidence threshold as the count tables answer it: a grid column, plus or minus the rows
    between the threshold and that grid value when the threshold is off the grid."""

    column: str  # "n" (no threshold) or the count column of a grid value next to the threshold
    between: tuple[float, float] | None  # [low, high): rows counted from predictions, if any
    sign: int = 1  # +1: add them (the grid value is above the threshold), -1: take them away (below)

    @classmethod
    def of(cls, min_confidence: float) -> Threshold:
        if min_confidence <= 0:
            return cls("n", None)
        i = bisect_left(GRID_VALUES, min_confidence)
        above = GRID_VALUES[i]  # min_confidence <= 1.0, the grid's last value (the API's bound)
        if above == min_confidence:
            return cls(COUNT_COLUMNS[i], None)
        if i > 0 and min_confidence - GRID_VALUES[i - 1] < above - min_confidence:  # the nearer grid value
            return cls(COUNT_COLUMNS[i - 1], (GRID_VALUES[i - 1], min_confidence), -1)
        return cls(COUNT_COLUMNS[i], (min_confidence, above))


def sol_pieces(lo: int, hi: int, levels: tuple[int, ...] = SOL_LEVELS) -> list[tuple[int, int, int]]:
    """[lo, hi] (sols >= 0) tiled by whole bins, widest first: (sols per bin, first bin, last bin)."""
    if lo > hi:
        return []
    width, rest = levels[0], levels[1:]
    first, last = -(-lo // width), (hi + 1) // width - 1
    if first > last:
        return sol_pieces(lo, hi, rest)
    if not rest:
        return [(width, first, last)]
    return [*sol_pieces(lo, first * width - 1, rest), (width, first, last),
            *sol_pieces((last + 1) * width, hi, rest)]


def _sol_range(q: Query) -> tuple[int, int] | None:
    f = q.filters
    if f.sol_min is None and f.sol_max is None:
        return None
    return (-NO_SOL_LIMIT if f.sol_min is None else f.sol_min, NO_SOL_LIMIT if f.sol_max is None else f.sol_max)


def _selection(q: Query) -> list[tuple[int, int, int]]:
    sols = _sol_range(q)
    if sols is None:
        return [(0, 0, 0)]  # every row, with a sol or without
    lo, hi = sols
    negative = [(1, lo, min(hi, -1))] if lo < 0 else []  # negative sols are counted per sol only
    return negative + sol_pieces(max(lo, 0), hi)


def _keep(q: Query, key: tuple[str, str, str | None], ignore: str | None = None) -> bool:
    """Whether a (model, class, instrument) passes q's filters, but the one of facet ``ignore``."""
    f = q.filters
    model, name, instrument = key
    return ((ignore == "model" or not f.models or model in f.models)
            and (ignore == "class" or not q.classes or name in q.classes)
            and (ignore == "instrument" or not f.instruments or instrument in f.instruments))


def _instrument(value: str) -> str | None:
    return value or None  # the count tables hold '' for none: no instrument filter value matches it


class ImageCounts:
    """The counts of one search (one request), each read once."""

    def __init__(self, conn: sqlite3.Connection, q: Query, models: tuple[str, ...]):
        self.conn, self.q, self.models = conn, q, models
        self.threshold = Threshold.of(q.filters.min_confidence)
        self.from_rows = bool(q.fts or q.filters.source_image)
        self._tallies: Counter | None = None

    # ----------------------------------------------------------------------------- answers
    def total(self) -> int:
        if self.from_rows:
            return sum(self._row_counts(self.q, None).values())
        return sum(n for key, n in self.tallies().items() if _keep(self.q, key))

    def facet(self, facet: str) -> Counter:
        """Rows per value of ``facet`` (model, class, instrument, sol bin, source image) under the
        other facets' selections."""
        if self.from_rows or facet == "source_image":
            return self._row_counts(self.q.without(facet), facet)
        if facet == "sol":
            return self._sol_bins()
        at = FACETS.index(facet)
        out: Counter = Counter()
        for key, n in self.tallies().items():
            if _keep(self.q, key, ignore=facet):
                out[key[at] or ""] += n
        return out

    # ------------------------------------------------------------------------- count tables
    def tallies(self) -> Counter:
        """(model, class, instrument) -> rows in the sol selection at the threshold (abstained as asked)."""
        if self._tallies is None:
            tallies: Counter = Counter()
            abstained = "" if self.q.filters.abstained else " AND abstained = 0"
            for sols, first, last in _selection(self.q):
                rows = self.conn.execute(
                    f"SELECT model_id, predicted_class, instrument, sum({self.threshold.column}) "
                    f"FROM prediction_counts WHERE sols = ? AND sol_bin BETWEEN ? AND ?{abstained} GROUP BY 1, 2, 3",
                    (sols, first, last))
                for model, name, instrument, n in rows:
                    tallies[(model, name, _instrument(instrument))] += n
            if self.threshold.between is not None:
                for key, n in self._tallies_between().items():
                    tallies[key] += self.threshold.sign * n
            self._tallies = tallies
        return self._tallies

    def _sol_bins(self) -> Counter:
        """Rows per 50-sol bin under every selection but the sol range's."""
        q, f = self.q, self.q.filters
        conds, params = [], []
        for column, values in (("model_id", f.models), ("predicted_class", q.classes), ("instrument", f.instruments)):
            if values:
                conds.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        abstained = [] if f.abstained else ["abstained = 0"]
        # '+': the key columns as filters on the one range of 50-sol rows, not a skip-scan by class
        # (a seek per sol bin) that an archive's statistics would have the planner choose
        bins = Counter(dict(self.conn.execute(
            f"SELECT sol_bin, sum({self.threshold.column}) FROM prediction_counts"
            f"{where(['sols = ?', *('+' + c for c in conds), *abstained])} GROUP BY 1", [SOL_BIN, *params]).fetchall()))
        for sol_bin, n in self._rows_between(f"sol / {SOL_BIN}", ["sol >= 0", *conds], params):
            bins[sol_bin] += self.threshold.sign * n
        return bins

    def _tallies_between(self) -> Counter:
        """(model, class, instrument) -> rows of the slice between an off-grid threshold and its grid
        value in the sol range. Per model, one range of ``predictions_by_class`` per class the model
        has rows of (from its count rows), read in class order: grouped by class as they come, with
        no sort of the slice, and a count per instrument but the last, which is the rest."""
        sols = _sol_range(self.q)
        conds, params = ([], []) if sols is None else (["sol BETWEEN ? AND ?"], list(sols))
        out: Counter = Counter()
        for model in self.models:
            kinds = self.conn.execute("SELECT predicted_class, instrument FROM prediction_counts "
                                      "WHERE sols = 0 AND sol_bin = 0 AND model_id = ?", (model,)).fetchall()
            if not kinds:
                continue
            classes = sorted({name for name, _ in kinds})
            *counted, rest = sorted({instrument for _, instrument in kinds})
            columns = "predicted_class" + ", count(*) FILTER (WHERE IFNULL(instrument, '') = ?)" * len(counted)
            rows = self._rows_between(columns, [f"predicted_class IN ({', '.join('?' * len(classes))})", *conds],
                                      [*classes, *params], "predicted_class", counted, [model], "predictions_by_class")
            for name, *per_instrument, n in rows:
                for instrument, k in zip([*counted, rest], [*per_instrument, n - sum(per_instrument)], strict=True):
                    out[(model, name, _instrument(instrument))] += k
        return out

    def _rows_between(self, columns: str, conds: list[str], params: list, group: str | None = None,
                      column_params: list | None = None, models: list[str] | None = None,
                      index: str = "predictions_by_confidence") -> list[tuple]:
        """Rows of ``models`` (default: all) with a confidence between an off-grid threshold and its grid
        value that meet ``conds``: ``columns`` and their count per ``group`` (default: the columns),
        from ``index`` alone; none for a threshold on the grid."""
        if self.threshold.between is None:
            return []
        models = models or list(self.models)
        conds = [f"model_id IN ({', '.join('?' * len(models))})", "confidence >= ?", "confidence < ?", *conds]
        if not self.q.filters.abstained:
            conds.append("abstained = 0")
        # named: without statistics, the planner would rather walk a whole index in the GROUP BY's
        # order than read the slice's ranges
        return self.conn.execute(f"SELECT {columns}, count(*) FROM predictions INDEXED BY {index}"
                                 f"{where(conds)} GROUP BY {group or columns}",
                                 [*(column_params or []), *models, *self.threshold.between, *params]).fetchall()

    # -------------------------------------------------------------------------------- rows
    def _row_counts(self, q: Query, facet: str | None) -> Counter:
        conds, params = row_conditions(q)
        if facet == "source_image":
            conds.append("source_image IS NOT NULL")
        rows = self.conn.execute(f"SELECT {ROW_GROUPS[facet]}, count(*) FROM predictions{where(conds)} GROUP BY 1",
                                 params)
        return Counter({k: n for k, n in rows if k is not None or facet is None})
