"""smart_auth's HTML pages render through the product's one template environment (`web`)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment

from web import make_environment

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def make_auth_templates() -> Environment:
    """The shared environment over smart_auth's own page folder (for tests and CLIs without the app)."""
    return make_environment([TEMPLATES_DIR])
