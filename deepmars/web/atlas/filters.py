"""What a search asks for, and the keyset cursor that continues a result page.

Every value arrives as a query parameter and is checked by FastAPI (types, ranges, lengths);
names (classes, models, instruments, source images) are only ever SQL parameters, and the only
identifiers put into SQL come from fixed allow-lists in ``images`` and ``scenes``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from fastapi import HTTPException, Query

KINDS = ("images", "scenes")
MAX_VALUES = 50  # values of one facet in one query


@dataclass(frozen=True)
class Filters:
    """One search: facet selections, the confidence slider, minimum landmark counts and free text."""

    kind: str = "images"
    models: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    sol_min: int | None = None
    sol_max: int | None = None
    source_image: str | None = None
    min_confidence: float = 0.0  # rows with confidence >= this, exactly (0: no threshold)
    abstained: bool = False  # include rows flagged abstained
    min_counts: tuple[tuple[str, int], ...] = ()  # scenes: (class, at least n landmarks at count confidence)
    text: str = ""

    def without(self, facet: str) -> Filters:
        """The same search without one facet's selection (its own counts ignore it)."""
        cleared = {"model": {"models": ()}, "class": {"classes": ()}, "instrument": {"instruments": ()},
                   "sol": {"sol_min": None, "sol_max": None}, "source_image": {"source_image": None}}[facet]
        return Filters(**{**self.__dict__, **cleared})


def _min_counts(values: list[str]) -> tuple[tuple[str, int], ...]:
    out = {}
    for value in values:
        name, sep, n = value.rpartition(":")
        if not sep or not name or not n.isdigit() or int(n) > 1_000_000:
            raise HTTPException(422, f"min_count: expected class:n (e.g. crater:3), got {value[:80]!r}")
        out[name] = int(n)
    return tuple(sorted(out.items()))


def search_filters(
        kind: str = Query("images", pattern="^(images|scenes)$", description="images (whole-image "
                          "predictions) or scenes (HiRISE images with classified landmarks)"),
        model: list[str] = Query([], max_length=MAX_VALUES, description="model ids (any of them)"),
        class_: list[str] = Query([], alias="class", max_length=MAX_VALUES,
                                  description="images: any of these classes; scenes: holding each of them"),
        instrument: list[str] = Query([], max_length=MAX_VALUES, description="any of these (an empty value: none)"),
        sol_min: int | None = Query(None, ge=0, le=1_000_000),
        sol_max: int | None = Query(None, ge=0, le=1_000_000),
        source_image: str | None = Query(None, max_length=200),
        min_confidence: float = Query(0.0, ge=0.0, le=1.0, description=(
            "images: rows with confidence >= this value, exactly, whatever the value (results, totals and "
            "facet counts alike). Values on the count tables' grid (multiples of 0.05; of 0.01 above 0.9; of "
            "0.001 above 0.99; of 0.0001 above 0.999) are counted from them alone; any other value also counts "
            "the rows between it and the nearest grid value, which takes longer")),
        abstained: bool = Query(False, description="include rows flagged abstained"),
        min_count: list[str] = Query([], max_length=MAX_VALUES,
                                     description="scenes: class:n, at least n landmarks of the class"),
        q: str = Query("", max_length=300, description="free text: class names, synonyms, file names, metadata"),
) -> Filters:
    """FastAPI dependency: the query string as Filters."""
    return Filters(kind=kind, models=tuple(dict.fromkeys(model)), classes=tuple(dict.fromkeys(class_)),
                   instruments=tuple(dict.fromkeys(v for v in instrument if v)), sol_min=sol_min, sol_max=sol_max,
                   source_image=source_image or None, min_confidence=min_confidence, abstained=abstained,
                   min_counts=_min_counts(min_count), text=q.strip())


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's sort key and row id (keyset paging: no OFFSET)."""

    key: float | str
    id: int

    def encode(self) -> str:
        return base64.urlsafe_b64encode(json.dumps([self.key, self.id]).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str | None, key_type: type) -> Cursor | None:
        if not text:
            return None
        try:
            key, row_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if not isinstance(row_id, int) or isinstance(key, bool) or not isinstance(key, key_type):
                raise ValueError
            return cls(key, row_id)
        except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(422, "after: not a cursor this server gave out") from None


@dataclass
class Page:
    rows: list = field(default_factory=list)
    next: str | None = None
