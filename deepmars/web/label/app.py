"""The labeling app: the shared web stack (``deepmars.web.app``) with the labeling routers and page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from deepmars.labeling.options import LabelOptions
from deepmars.labeling.users import Users
from deepmars.web.app import create_app
from deepmars.web.label.context import LabelContext
from deepmars.web.label.routers import api, pages
from deepmars.web.settings import WebSettings

HERE = Path(__file__).resolve().parent


def web_settings(opts: LabelOptions) -> WebSettings:
    """The shared web settings of a label.py config (no catalog: the page reads its queue)."""
    return WebSettings(catalog=None, host=opts.host, port=opts.port, cache_dir=opts.cache_dir,
                       display_size=opts.display_size)


def create_label_app(opts: LabelOptions, users: Users) -> FastAPI:
    ctx = LabelContext(queue=opts.queue, users=users, order=opts.order, lease_s=opts.lease_s,
                       show_suggestion=opts.show_suggestion)
    return create_app(web_settings(opts), "deepmars labeling", [api.router, api.files, pages.router],
                      templates=[HERE / "templates"], static={"/static/label": HERE / "static"},
                      state={"labeling": ctx}, files_anchor=opts.queue)
