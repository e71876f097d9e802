"""One Jinja2 environment for every HTML page: the shared layout and macros plus each package's pages.

A package hands in its own template folder; its templates extend `base.html` from here. Autoescaping is
on for every template, so text from records or people is shown, never executed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from .static import STATIC_PREFIX

SHARED_TEMPLATES = Path(__file__).resolve().parent / "templates"
PRODUCT_NAME = "Patient portal"
# Pages that show personal data must never be kept by a shared browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


def make_environment(folders: Iterable[Path] = ()) -> Environment:
    """The environment over ``folders`` (searched first) and the shared layout and macros."""
    loaders = [FileSystemLoader(str(f)) for f in folders] + [FileSystemLoader(str(SHARED_TEMPLATES))]
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html", "xml"], default=True),
                      trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    # Every page is written translatable (`{% trans %}`, `_()`); English until a page's render context
    # hands in the reader's own `gettext`/`ngettext`.
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(static=lambda name: f"{STATIC_PREFIX}/{name}", product_name=PRODUCT_NAME)
    return env


class PageRenderer:
    """Renders a template into an HTML response with the headers every page needs."""

    def __init__(self, env: Environment, defaults: Mapping[str, Any] | None = None) -> None:
        self.env = env
        self.defaults = dict(defaults or {})

    def text(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**{**self.defaults, **context})

    def page(self, template: str, status_code: int = 200, *, headers: Mapping[str, str] | None = None,
             **context: Any) -> HTMLResponse:
        return HTMLResponse(self.text(template, **context), status_code=status_code,
                            headers={**NO_STORE, **(headers or {})})
