"""The JSON the Atlas API returns (Pydantic models: they are the OpenAPI description at /docs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelSummary(BaseModel):
    model_id: str
    dataset: str | None
    classes: list[str]
    images: int  # whole-image prediction rows
    scenes: int  # landmark images


class CatalogSummary(BaseModel):
    catalog: str
    models: list[ModelSummary]
    count_confidence: float
    count_confidences: list[float]
    confidence_step: float
    sol_bin: int
    max_counts: dict[str, int]  # scenes: the most landmarks of a class in one scene


class TextMatch(BaseModel):
    classes: list[str]  # classes the free text names
    words: list[str]  # words searched in file names and metadata
    suggestions: list[str]


class ImageResult(BaseModel):
    id: int
    model_id: str
    file_name: str
    predicted_class: str
    confidence: float
    sol: int | None
    instrument: str | None
    source_image: str | None
    abstained: bool
    thumbnail: str
    page: str


class SceneResult(BaseModel):
    id: int
    model_id: str
    file_name: str
    source_image: str
    landmarks: int
    counts: dict[str, int]  # landmarks per class at count confidence
    thumbnail: str
    page: str


class SearchPage(BaseModel):
    kind: str
    total: int
    min_confidence: float
    results: list[ImageResult] | list[SceneResult]
    next: str | None  # cursor of the next page (keyset), None on the last
    text: TextMatch


class FacetValue(BaseModel):
    value: str
    label: str
    count: int


class SolBin(BaseModel):
    start: int
    end: int
    count: int


class Facets(BaseModel):
    kind: str
    total: int
    model: list[FacetValue]
    class_: list[FacetValue] = Field(alias="class")
    instrument: list[FacetValue]
    sol: list[SolBin]
    source_image: list[FacetValue]

    model_config = ConfigDict(populate_by_name=True)


class Posterior(BaseModel):
    class_: str = Field(alias="class")
    p: float

    model_config = ConfigDict(populate_by_name=True)


class ImageDetail(BaseModel):
    id: int
    model_id: str
    dataset: str | None
    path: str
    file_name: str
    predicted_class: str
    confidence: float
    abstained: bool
    top_k: list[Posterior]
    sol: int | None
    instrument: str | None
    source_image: str | None
    width: int
    height: int
    metadata: dict
    classified_at: str
    image: str
    scene: str | None  # the page of the scene this crop's source image is, when the catalog has it


class Landmark(BaseModel):
    landmark_id: int
    x: int
    y: int
    w: int
    h: int
    predicted_class: str
    confidence: float
    counted: bool  # confidence >= count confidence
    top_k: list[Posterior]
    crop: str


class SceneDetail(BaseModel):
    id: int
    model_id: str
    source_image: str
    path: str
    file_name: str
    source_width: int
    source_height: int
    working_width: int
    working_height: int
    notes: str
    count_confidence: float
    counts: dict[str, int]
    classes: list[str]
    landmarks: list[Landmark]
    image: str
    classified_at: str
