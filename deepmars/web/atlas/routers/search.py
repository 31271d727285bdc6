"""GET /api/search (a result page) and GET /api/facets (counts of every facet under the others)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import PurePath

from fastapi import APIRouter, Depends, HTTPException, Query

from deepmars.catalog.count_tables import SOL_BIN
from deepmars.web.atlas import images, scenes
from deepmars.web.atlas.context import AtlasContext, CatalogFacts, atlas, snapshot
from deepmars.web.atlas.filters import Cursor, Filters, search_filters
from deepmars.web.atlas.image_counts import ImageCounts
from deepmars.web.atlas.schemas import Facets, FacetValue, ImageResult, SceneResult, SearchPage, SolBin, TextMatch
from deepmars.web.atlas.vocabulary import ParsedText

router = APIRouter(tags=["search"])
SOURCE_IMAGE_FACET_SIZE = 30


def file_name(path: str) -> str:
    return PurePath(path).name


def image_result(row: tuple) -> ImageResult:
    image_id, model, path, name, confidence, sol, instrument, source, abstained = row
    return ImageResult(id=image_id, model_id=model, file_name=file_name(path), predicted_class=name,
                       confidence=confidence, sol=sol, instrument=instrument, source_image=source,
                       abstained=bool(abstained), thumbnail=f"/files/images/{image_id}/thumbnail",
                       page=f"/images/{image_id}")


def scene_result(row: tuple, counts: dict[str, int]) -> SceneResult:
    scene_id, model, path, source, landmarks, _, _ = row
    return SceneResult(id=scene_id, model_id=model, file_name=file_name(path), source_image=source,
                       landmarks=landmarks, counts=counts, thumbnail=f"/files/scenes/{scene_id}/thumbnail",
                       page=f"/scenes/{scene_id}")


def _text(parsed: ParsedText) -> TextMatch:
    return TextMatch(classes=list(parsed.classes), words=list(parsed.words), suggestions=list(parsed.suggestions))


def _fts_guard(fn, *args):
    """An FTS5 expression SQLite still rejects is the user's text, not a server fault."""
    try:
        return fn(*args)
    except sqlite3.OperationalError as exc:
        if "fts5" in str(exc) or "MATCH" in str(exc):
            raise HTTPException(422, f"q: the text cannot be searched ({exc})") from None
        raise


def _scene_query(filters: Filters, parsed: ParsedText, facts: CatalogFacts) -> scenes.SceneQuery:
    return scenes.scene_query(filters, parsed, facts.count_confidence, facts.scene_models)


@router.get("/api/search", response_model=SearchPage, summary="One page of results, best first")
def search(filters: Filters = Depends(search_filters),
           after: str | None = Query(None, max_length=400, description="the previous page's `next`"),
           limit: int | None = Query(None, ge=1, le=500), conn: sqlite3.Connection = Depends(snapshot),
           ctx: AtlasContext = Depends(atlas)) -> SearchPage:
    facts = ctx.facts(conn)
    parsed = ctx.vocabulary(conn).parse(filters.text)
    limit = limit or ctx.options.page_size
    if filters.kind == "images":
        q = images.Query.of(filters, parsed)
        page = _fts_guard(images.page, conn, q, facts.image_models, Cursor.decode(after, (int, float)), limit)
        total = _fts_guard(ImageCounts(conn, q, facts.image_models).total)
        results = [image_result(r) for r in page.rows]
    else:
        sq = _scene_query(filters, parsed, facts)
        page, total = _fts_guard(scenes.page_and_total, conn, sq, Cursor.decode(after, str), limit, facts.scene_rows)
        per_scene = scenes.landmark_counts_of(conn, [r[0] for r in page.rows], sq.count_confidence)
        results = [scene_result(r, per_scene.get(r[0], {})) for r in page.rows]
    return SearchPage(kind=filters.kind, total=total, min_confidence=filters.min_confidence, results=results,
                      next=page.next, text=_text(parsed))


def _values(counts: Counter, chosen: tuple[str, ...], labels: dict[str, str] | None = None) -> list[FacetValue]:
    for value in chosen:
        counts.setdefault(value, 0)
    items = sorted(((str(v), n) for v, n in counts.items() if v is not None and (n or v in chosen)),
                   key=lambda item: (-item[1], item[0]))
    return [FacetValue(value=v, label=(labels or {}).get(v, v or "none"), count=n) for v, n in items]


def _model_labels(facts: CatalogFacts) -> dict[str, str]:
    return {m: f"{d} ({m})" if d else m for m, d, _ in facts.models}


@router.get("/api/facets", response_model=Facets, summary="Counts of each facet under the other facets' filters")
def facets(filters: Filters = Depends(search_filters), conn: sqlite3.Connection = Depends(snapshot),
           ctx: AtlasContext = Depends(atlas)) -> Facets:
    facts = ctx.facts(conn)
    parsed = ctx.vocabulary(conn).parse(filters.text)
    labels = _model_labels(facts)
    if filters.kind == "scenes":
        return _fts_guard(_scene_facets, conn, filters, parsed, facts, labels)
    q = images.Query.of(filters, parsed)
    counts = ImageCounts(conn, q, facts.image_models)
    bins = _fts_guard(counts.facet, "sol")
    sources = _fts_guard(counts.facet, "source_image") if facts.has_sources else Counter()
    top_sources = Counter(dict(sources.most_common(SOURCE_IMAGE_FACET_SIZE)))
    return Facets(kind="images", total=_fts_guard(counts.total),
                  model=_values(_fts_guard(counts.facet, "model"), filters.models, labels),
                  class_=_values(_fts_guard(counts.facet, "class"),
                                 tuple(c for c in q.classes if c != images.NO_CLASS)),
                  instrument=[v for v in _values(_fts_guard(counts.facet, "instrument"), filters.instruments)
                              if v.value],
                  sol=[SolBin(start=b * SOL_BIN, end=b * SOL_BIN + SOL_BIN - 1, count=n)
                       for b, n in sorted(bins.items()) if b is not None and n],
                  source_image=_values(top_sources, (filters.source_image,) if filters.source_image else ()))


def _scene_facets(conn, filters: Filters, parsed: ParsedText, facts: CatalogFacts, labels: dict) -> Facets:
    sq = _scene_query(filters, parsed, facts)
    per_model, total, per_class, top_sources = scenes.facets(conn, sq, facts.scene_rows, SOURCE_IMAGE_FACET_SIZE)
    return Facets(kind="scenes", total=total, model=_values(per_model, filters.models, labels),
                  class_=_values(per_class, tuple(c for c, _ in sq.min_counts)),
                  instrument=[], sol=[], source_image=_values(top_sources, ()))
