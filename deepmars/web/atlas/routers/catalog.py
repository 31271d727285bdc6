"""GET /api/catalog: what the catalog holds (models, classes, kinds of rows, count thresholds)."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Depends, Request

from deepmars.catalog.count_tables import SOL_BIN
from deepmars.web.atlas.context import AtlasContext, atlas, snapshot
from deepmars.web.atlas.schemas import CatalogSummary, ModelSummary

router = APIRouter(tags=["catalog"])
SLIDER_STEP = 0.05  # the confidence slider's step in the browser (the API takes any value)


@router.get("/api/catalog", response_model=CatalogSummary, summary="Models, classes and row counts")
def catalog_summary(request: Request, conn: sqlite3.Connection = Depends(snapshot),
                    ctx: AtlasContext = Depends(atlas)) -> CatalogSummary:
    facts = ctx.facts(conn)
    return CatalogSummary(
        catalog=request.app.state.settings.catalog.name,
        models=[ModelSummary(model_id=m, dataset=d, classes=list(c), images=facts.image_rows.get(m, 0),
                             scenes=facts.scene_rows.get(m, 0)) for m, d, c in facts.models],
        count_confidence=facts.count_confidence, count_confidences=list(facts.count_confidences),
        confidence_step=SLIDER_STEP, sol_bin=SOL_BIN, max_counts=facts.max_counts)
