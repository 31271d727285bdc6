"""GET /api/images/{id} (one prediction) and /files/images/{id}/{thumbnail|display} (its pixels)."""

from __future__ import annotations

import json
import sqlite3
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse

from deepmars.web.atlas import images
from deepmars.web.atlas.context import AtlasContext, atlas, snapshot
from deepmars.web.atlas.routers.search import file_name
from deepmars.web.atlas.schemas import ImageDetail, Posterior
from deepmars.web.database import read_db
from deepmars.web.files import open_image

router = APIRouter(tags=["images"])
MAX_ID = 2**63 - 1


def posteriors(top_k: str) -> list[Posterior]:
    try:
        return [Posterior(class_=str(p["class"]), p=float(p["p"])) for p in json.loads(top_k)]
    except (ValueError, TypeError, KeyError):
        return []


def _row(conn: sqlite3.Connection, image_id: int) -> dict:
    row = images.detail(conn, image_id) if 0 <= image_id <= MAX_ID else None
    if row is None:
        raise HTTPException(404, f"no image {image_id} in this catalog")
    return row


@router.get("/api/images/{image_id}", response_model=ImageDetail, summary="One image's prediction and metadata")
def image_detail(image_id: int, conn: sqlite3.Connection = Depends(snapshot),
                 ctx: AtlasContext = Depends(atlas)) -> ImageDetail:
    row = _row(conn, image_id)
    dataset = next((d for m, d, _ in ctx.models(conn) if m == row["model_id"]), None)
    scene = None
    if row["source_image"]:
        hit = conn.execute("SELECT id FROM landmark_images WHERE source_image = ? ORDER BY classified_at DESC LIMIT 1",
                           (row["source_image"],)).fetchone()
        scene = f"/scenes/{hit[0]}" if hit else None
    try:
        metadata = json.loads(row["metadata"])
    except ValueError:
        metadata = {"metadata": row["metadata"]}
    return ImageDetail(id=row["id"], model_id=row["model_id"], dataset=dataset, path=row["path"],
                       file_name=file_name(row["path"]), predicted_class=row["predicted_class"],
                       confidence=row["confidence"], abstained=bool(row["abstained"]),
                       top_k=posteriors(row["top_k"]), sol=row["sol"], instrument=row["instrument"],
                       source_image=row["source_image"], width=row["width"], height=row["height"],
                       metadata=metadata if isinstance(metadata, dict) else {"metadata": metadata},
                       classified_at=row["classified_at"], image=f"/files/images/{image_id}/display", scene=scene)


@router.get("/files/images/{image_id}/{rendition}", response_class=FileResponse,
            summary="A JPEG of the image (thumbnail or display size), made on demand and cached")
def image_file(image_id: int, rendition: Literal["thumbnail", "display"], request: Request,
               conn: sqlite3.Connection = Depends(read_db)) -> FileResponse:
    row = _row(conn, image_id)
    settings, files = request.app.state.settings, request.app.state.files
    source = files.check(row["path"])
    size = settings.thumbnail_size if rendition == "thumbnail" else settings.display_size
    try:
        cached = files.rendition(f"{row['sha256']}-{size}.jpg", lambda: open_image(source, size))
    except (OSError, ValueError) as exc:  # PIL: corrupt, truncated, or a decompression bomb
        raise HTTPException(415, f"cannot show {file_name(row['path'])}: {exc}") from None
    return FileResponse(cached, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
