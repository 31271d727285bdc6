"""The labeling API: every write is one transaction of the label queue, made as the token's user.

A client names images by item id only; the path comes from the queue and is served only under
the web stack's file rule (``ServedFiles``). An image that cannot be decoded is marked
unlabelable with the reason (415), and the page moves on to the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from PIL import Image

from deepmars.catalog.label_schema import ItemRow
from deepmars.catalog.labels import LabelStore
from deepmars.errors import ConfigError
from deepmars.web.files import open_image
from deepmars.web.label.context import LabelContext, current_user, label_store, labeling
from deepmars.web.label.schemas import (
    ClassButton,
    DisagreementOut,
    EventOut,
    ItemOut,
    LabelIn,
    NextOut,
    ProgressOut,
    QueueOut,
    Suggestion,
)

router = APIRouter(prefix="/api", tags=["labeling"])
files = APIRouter(tags=["images"])
MAX_ID = 2**63 - 1
UNDECODABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def progress(store: LabelStore, user: str) -> ProgressOut:
    p = store.progress()
    return ProgressOut(total=p.total, labeled=p.labeled, skipped=p.skipped, left=p.left, unlabelable=p.unlabelable,
                       disagreements=p.disagreements, mine=p.by_user.get(user, 0))


def item_out(item: ItemRow | None) -> ItemOut | None:
    if item is None:
        return None
    try:
        top_k = [Suggestion(class_=str(e["class"]), p=float(e["p"])) for e in json.loads(item.top_k or "[]")]
    except (ValueError, TypeError, KeyError):
        top_k = []
    return ItemOut(id=item.item_id, name=item.name, image=f"/files/items/{item.item_id}", model_id=item.model_id,
                   suggestion=item.suggestion, confidence=item.confidence, top_k=top_k)


def _item(store: LabelStore, item_id: int) -> ItemRow:
    item = store.item(item_id) if 0 <= item_id <= MAX_ID else None
    if item is None:
        raise HTTPException(404, f"no item {item_id} in this queue")
    return item


@router.get("/queue", response_model=QueueOut, summary="The queue's classes, settings and progress")
def queue(user: str = Depends(current_user), store: LabelStore = Depends(label_store),
          ctx: LabelContext = Depends(labeling)) -> QueueOut:
    return QueueOut(queue=ctx.queue.name, user=user,
                    classes=[ClassButton(id=i, name=n) for i, n in store.classes.entries],
                    labels_per_item=store.labels_per_item, order=ctx.order, show_suggestion=ctx.show_suggestion,
                    progress=progress(store, user))


@router.post("/next", response_model=NextOut, summary="Lease the next image to this user (the same one on a reload)")
def next_item(user: str = Depends(current_user), store: LabelStore = Depends(label_store),
              ctx: LabelContext = Depends(labeling)) -> NextOut:
    return NextOut(item=item_out(store.next_item(user, ctx.order)), progress=progress(store, user))


@router.post("/items/{item_id}/label", response_model=EventOut, summary="Label an image")
def label(item_id: int, body: LabelIn, user: str = Depends(current_user),
          store: LabelStore = Depends(label_store)) -> EventOut:
    _item(store, item_id)
    try:
        event = store.label(item_id, user, body.class_id, source="web")
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
    return EventOut(event_id=event, item_id=item_id, progress=progress(store, user))


@router.post("/items/{item_id}/later", response_model=EventOut, summary="Put an image off (it comes back at the end)")
def later(item_id: int, user: str = Depends(current_user), store: LabelStore = Depends(label_store)) -> EventOut:
    _item(store, item_id)
    return EventOut(event_id=store.later(item_id, user, source="web"), item_id=item_id, progress=progress(store, user))


@router.post("/undo", response_model=NextOut, summary="Take back this user's latest answer; its image comes back")
def undo(user: str = Depends(current_user), store: LabelStore = Depends(label_store)) -> NextOut:
    return NextOut(item=item_out(store.undo(user)), progress=progress(store, user))


@router.post("/release", summary="Give back this user's leased image (the page is closed)")
def release(user: str = Depends(current_user), store: LabelStore = Depends(label_store)) -> dict:
    store.release(user)
    return {"released": True}


@router.get("/progress", response_model=ProgressOut, summary="Labeled, skipped, left")
def get_progress(user: str = Depends(current_user), store: LabelStore = Depends(label_store)) -> ProgressOut:
    return progress(store, user)


@router.get("/disagreements", response_model=list[DisagreementOut], summary="Double-labeled images whose labels differ")
def disagreements(user: str = Depends(current_user), store: LabelStore = Depends(label_store)) -> list[DisagreementOut]:
    return [DisagreementOut(item_id=d.item_id, name=Path(d.path).name, labels=d.labels) for d in store.disagreements()]


@files.get("/files/items/{item_id}", response_class=FileResponse, summary="The image to label (a display-size JPEG)")
def item_image(item_id: int, request: Request, user: str = Depends(current_user),
               store: LabelStore = Depends(label_store)) -> FileResponse:
    item = _item(store, item_id)
    if item.unlabelable:
        raise HTTPException(415, f"cannot show {item.name}: {item.unlabelable}")
    served, size = request.app.state.files, request.app.state.settings.display_size
    source = served.check(item.path)
    try:
        cached = served.rendition(_rendition_name(source, size), lambda: open_image(source, size))
    except UNDECODABLE as exc:
        reason = f"cannot be decoded ({type(exc).__name__}: {exc})"
        store.mark_unlabelable(item_id, reason)
        raise HTTPException(415, f"cannot show {item.name}: {reason}; it is marked unlabelable") from None
    return FileResponse(cached, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _rendition_name(source: Path, size: int) -> str:
    """A cache name that changes when the file does (the queue keeps no content hash)."""
    st = os.stat(source)
    key = f"{source}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape")
    return f"label-{hashlib.sha256(key).hexdigest()[:32]}-{size}.jpg"
