"""``create_app``: one FastAPI app from settings, routers, templates and static folders.

Everything a request needs hangs off ``app.state`` (settings, the read-only catalog, served files,
templates) and reaches routes through dependencies, so two apps (or two tests) can run side by
side. Templates extend the shared ``base.html``; Jinja2 autoescapes every value, and the shared
``static/dom.js`` builds result elements with ``textContent`` only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from deepmars.web.database import CatalogReader, CatalogUnavailable
from deepmars.web.files import FileMissing, FileRefused, ServedFiles
from deepmars.web.settings import WebSettings

WEB_DIR = Path(__file__).resolve().parent


def templates_for(folders: Iterable[Path]) -> Jinja2Templates:
    """The app's template folders first, then the shared ones (base.html); autoescape always on."""
    env = Environment(loader=ChoiceLoader([FileSystemLoader(str(f)) for f in [*folders, WEB_DIR / "templates"]]),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    return Jinja2Templates(env=env)


def create_app(settings: WebSettings, title: str, routers: Sequence[APIRouter], templates: Sequence[Path] = (),
               static: dict[str, Path] | None = None, state: dict | None = None,
               files_anchor: Path | None = None) -> FastAPI:
    """An app serving ``settings.catalog`` read-only (none when it is None); ``static`` maps URL
    prefixes to folders (the shared folder is at ``/static``); ``state`` adds app-specific objects
    to ``app.state``; ``files_anchor`` is the file whose folder relative stored paths start from
    (default: the catalog)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if app.state.catalog is not None:
            app.state.catalog.close()

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.settings = settings
    app.state.catalog = (None if settings.catalog is None
                         else CatalogReader(settings.catalog, settings.connections, settings.lock_timeout_s))
    anchor = files_anchor or settings.catalog
    if anchor is None:
        raise ValueError("create_app: an app without a catalog names its files_anchor")
    app.state.files = ServedFiles(anchor, settings.cache_dir, settings.image_roots)
    app.state.templates = templates_for(templates)
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    for prefix, folder in (static or {}).items():  # before /static, which would claim /static/<app>/...
        app.mount(prefix, StaticFiles(directory=folder), name=prefix.strip("/").replace("/", "-"))
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    for router in routers:
        app.include_router(router)
    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    async def missing(request: Request, exc: FileMissing) -> JSONResponse:
        return JSONResponse({"detail": f"image file not found: {Path(exc.path or '').name}"}, status_code=404)

    async def refused(request: Request, exc: FileRefused) -> JSONResponse:
        return JSONResponse({"detail": f"not served: {exc.reason}"}, status_code=403)

    async def unavailable(request: Request, exc: CatalogUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    app.add_exception_handler(FileMissing, missing)
    app.add_exception_handler(FileRefused, refused)
    app.add_exception_handler(CatalogUnavailable, unavailable)
