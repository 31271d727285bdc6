"""The labeling API's JSON bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ClassButton(BaseModel):
    id: int
    name: str


class ProgressOut(BaseModel):
    total: int
    labeled: int
    skipped: int
    left: int
    unlabelable: int
    disagreements: int
    mine: int = Field(description="the requesting user's current labels")


class Suggestion(BaseModel):
    class_: str = Field(alias="class")
    p: float

    model_config = {"populate_by_name": True}


class ItemOut(BaseModel):
    id: int
    name: str
    image: str = Field(description="URL of the image (a display-size JPEG)")
    model_id: str | None
    suggestion: str | None
    confidence: float | None
    top_k: list[Suggestion]


class QueueOut(BaseModel):
    queue: str
    user: str
    classes: list[ClassButton]
    labels_per_item: int
    order: str
    show_suggestion: bool
    progress: ProgressOut


class NextOut(BaseModel):
    item: ItemOut | None
    progress: ProgressOut


class LabelIn(BaseModel):
    class_id: int


class EventOut(BaseModel):
    event_id: int
    item_id: int
    progress: ProgressOut


class DisagreementOut(BaseModel):
    item_id: int
    name: str
    labels: dict[str, str]
