"""What the labeling routes share: the queue's settings, the users, and per-request dependencies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, HTTPException, Request

from deepmars.catalog.labels import LabelStore
from deepmars.labeling.users import Users


@dataclass(frozen=True)
class LabelContext:
    queue: Path
    users: Users
    order: str
    lease_s: float
    show_suggestion: bool


def labeling(request: Request) -> LabelContext:
    """FastAPI dependency: the labeling app's context."""
    return request.app.state.labeling


def label_store(ctx: LabelContext = Depends(labeling)) -> Iterator[LabelStore]:
    """FastAPI dependency: the queue, opened for one request (SQLite's lock keeps writers apart)."""
    store = LabelStore.open(ctx.queue, create=False, lease_s=ctx.lease_s)
    try:
        yield store
    finally:
        store.close(checkpoint=False)


def current_user(request: Request, ctx: LabelContext = Depends(labeling)) -> str:
    """FastAPI dependency: the user whose token the request carries; 401 without a valid one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = ctx.users.user_for(token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        raise HTTPException(401, "a valid user token is needed (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    return user
