"""The Atlas app: the shared web stack (``deepmars.web.app``) with the Atlas's routers and pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from deepmars.web.app import create_app
from deepmars.web.atlas.context import AtlasContext
from deepmars.web.atlas.options import AtlasOptions
from deepmars.web.atlas.routers import catalog, export, images, pages, scenes, search

HERE = Path(__file__).resolve().parent


def create_atlas_app(options: AtlasOptions) -> FastAPI:
    return create_app(options.web, "deepmars Atlas",
                      [catalog.router, search.router, images.router, scenes.router, export.router, pages.router],
                      templates=[HERE / "templates"], static={"/static/atlas": HERE / "static"},
                      state={"atlas": AtlasContext(options)})
