"""The shared stylesheet, scripts and images, served at /static/."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"


def mount_static(app: Starlette) -> None:
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
