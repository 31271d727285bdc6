"""The HTML pages: labeling (/) and the review list (/review). They carry no data: their scripts
ask the JSON API with the user's token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["pages"], include_in_schema=False)


def _page(request: Request, template: str) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, template, {"catalog": request.app.state.labeling.queue.name, "source_kind": "label queue"})


@router.get("/", response_class=HTMLResponse)
def label_page(request: Request) -> HTMLResponse:
    return _page(request, "label.html")


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request) -> HTMLResponse:
    return _page(request, "review.html")
