"""GET /api/catalog: what the catalog holds (models, classes, kinds of rows, count thresholds)."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Depends, Request

from deepmars.catalog.schema import CONFIDENCE_STEPS, SOL_BIN
from deepmars.web.atlas import scenes
from deepmars.web.atlas.context import AtlasContext, atlas
from deepmars.web.atlas.schemas import CatalogSummary, ModelSummary
from deepmars.web.database import read_db

router = APIRouter(tags=["catalog"])


@router.get("/api/catalog", response_model=CatalogSummary, summary="Models, classes and row counts")
def catalog_summary(request: Request, conn: sqlite3.Connection = Depends(read_db),
                    ctx: AtlasContext = Depends(atlas)) -> CatalogSummary:
    image_rows = dict(conn.execute("SELECT model_id, sum(n) FROM prediction_facets GROUP BY 1").fetchall())
    scene_rows = dict(conn.execute("SELECT model_id, count(*) FROM landmark_images GROUP BY 1").fetchall())
    threshold = ctx.count_confidence(conn)
    return CatalogSummary(
        catalog=request.app.state.settings.catalog.name,
        models=[ModelSummary(model_id=m, dataset=d, classes=c, images=image_rows.get(m, 0), scenes=scene_rows.get(m, 0))
                for m, d, c in ctx.models(conn)],
        count_confidence=threshold,
        count_confidences=[r[0] for r in conn.execute("SELECT DISTINCT count_confidence FROM landmark_counts ORDER BY 1")],
        confidence_step=1 / CONFIDENCE_STEPS, sol_bin=SOL_BIN, max_counts=scenes.max_counts(conn, (), threshold))
