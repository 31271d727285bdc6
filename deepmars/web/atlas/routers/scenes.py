"""GET /api/scenes/{id} (a scene and its landmarks) and its pixels: the working image the boxes
are drawn in, a thumbnail, and each landmark's crop."""

from __future__ import annotations

import json
import sqlite3
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from PIL import Image

from deepmars.errors import ImageError
from deepmars.web.atlas import scenes
from deepmars.web.atlas.context import AtlasContext, atlas, snapshot
from deepmars.web.atlas.routers.images import MAX_ID, posteriors
from deepmars.web.atlas.routers.search import file_name
from deepmars.web.atlas.schemas import Landmark, SceneDetail
from deepmars.web.database import read_db

router = APIRouter(tags=["scenes"])
CROP_MARGIN = 30  # working pixels of context around a landmark's box, as the crops the model saw


def _row(conn: sqlite3.Connection, scene_id: int) -> dict:
    row = scenes.detail(conn, scene_id) if 0 <= scene_id <= MAX_ID else None
    if row is None:
        raise HTTPException(404, f"no scene {scene_id} in this catalog")
    return row


@router.get("/api/scenes/{scene_id}", response_model=SceneDetail, summary="A scene with its classified landmarks")
def scene_detail(scene_id: int, conn: sqlite3.Connection = Depends(snapshot),
                 ctx: AtlasContext = Depends(atlas)) -> SceneDetail:
    row = _row(conn, scene_id)
    threshold = ctx.count_confidence(conn)
    marks = scenes.landmarks(conn, row["model_id"], row["sha256"])
    counts = scenes.landmark_counts_of(conn, [scene_id], threshold)[scene_id]
    classes = next((c for m, _, c in ctx.models(conn) if m == row["model_id"]), [])
    return SceneDetail(
        id=scene_id, model_id=row["model_id"], source_image=row["source_image"], path=row["path"],
        file_name=file_name(row["path"]), source_width=row["source_width"], source_height=row["source_height"],
        working_width=row["working_width"], working_height=row["working_height"], notes=row["notes"],
        count_confidence=threshold, counts=counts, classes=classes, classified_at=row["classified_at"],
        image=f"/files/scenes/{scene_id}/display",
        landmarks=[Landmark(landmark_id=m["landmark_id"], x=m["x"], y=m["y"], w=m["w"], h=m["h"],
                            predicted_class=m["predicted_class"], confidence=m["confidence"],
                            counted=m["confidence"] >= threshold, top_k=posteriors(m["top_k"]),
                            crop=f"/files/scenes/{scene_id}/landmarks/{m['landmark_id']}") for m in marks])


def _working_image(request: Request, row: dict) -> Image.Image:
    """The scene as landmarks.py saw it (working scale, grey): the frame the boxes are in."""
    from deepmars.landmarks.config import ReadSettings
    from deepmars.landmarks.reader import read_working_image

    source = request.app.state.files.check(row["path"])
    try:
        read = ReadSettings(**json.loads(row["detector"]).get("read", {}))
    except (ValueError, TypeError):
        read = ReadSettings()
    try:
        pixels = read_working_image(source, read).pixels
    except ImageError as exc:
        raise HTTPException(415, f"cannot show {file_name(row['path'])}: {exc.reason}") from None
    image = Image.fromarray(pixels)
    size = (row["working_width"], row["working_height"])
    return image if image.size == size else image.resize(size, Image.BOX)


def _display(request: Request, row: dict):
    """The cached display JPEG of the working image (made once; thumbnails and crops are cut from it)."""
    return request.app.state.files.rendition(f"{row['sha256']}-working-{row['working_width']}.jpg",
                                             lambda: _working_image(request, row))


def _cached(request: Request, name: str, make) -> FileResponse:
    path = request.app.state.files.rendition(name, make)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.get("/files/scenes/{scene_id}/{rendition}", response_class=FileResponse,
            summary="The scene's working image (display) or a thumbnail, JPEG, cached")
def scene_file(scene_id: int, rendition: Literal["thumbnail", "display"], request: Request,
               conn: sqlite3.Connection = Depends(read_db)) -> FileResponse:
    row = _row(conn, scene_id)
    request.app.state.files.check(row["path"])  # refused or missing before any cache is read
    size = request.app.state.settings.thumbnail_size
    if rendition == "display":
        return FileResponse(_display(request, row), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    def thumbnail() -> Image.Image:
        with Image.open(_display(request, row)) as image:
            image.thumbnail((size, size))
            return image.copy()

    return _cached(request, f"{row['sha256']}-working-{size}.jpg", thumbnail)


@router.get("/files/scenes/{scene_id}/landmarks/{landmark_id}", response_class=FileResponse,
            summary="One landmark's crop (its box and a margin, from the working image), JPEG, cached")
def landmark_crop(scene_id: int, landmark_id: int, request: Request,
                  conn: sqlite3.Connection = Depends(read_db)) -> FileResponse:
    row = _row(conn, scene_id)
    box = conn.execute("SELECT x, y, w, h FROM landmarks WHERE model_id = ? AND sha256 = ? AND landmark_id = ?",
                       (row["model_id"], row["sha256"], landmark_id)).fetchone() if 0 <= landmark_id <= MAX_ID else None
    if box is None:
        raise HTTPException(404, f"no landmark {landmark_id} in scene {scene_id}")
    request.app.state.files.check(row["path"])
    x, y, w, h = box

    def crop() -> Image.Image:
        with Image.open(_display(request, row)) as image:
            piece = image.crop((x - CROP_MARGIN, y - CROP_MARGIN, x + w + CROP_MARGIN, y + h + CROP_MARGIN))
        piece.thumbnail((160, 160))
        return piece

    return _cached(request, f"{row['sha256']}-{row['working_width']}-landmark-{landmark_id}.jpg", crop)
