"""The HTML pages: search (/), an image (/images/{id}) and a scene (/scenes/{id}).

Pages carry no data beyond ids: their scripts fetch the JSON API, as any other client would.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["pages"], include_in_schema=False)


def _page(request: Request, template: str, **context) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, template, {"catalog": request.app.state.settings.catalog.name, **context})


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request) -> HTMLResponse:
    return _page(request, "search.html")


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(request: Request, image_id: int) -> HTMLResponse:
    return _page(request, "image.html", item_id=image_id)


@router.get("/scenes/{scene_id}", response_class=HTMLResponse)
def scene_page(request: Request, scene_id: int) -> HTMLResponse:
    return _page(request, "scene.html", item_id=scene_id)
