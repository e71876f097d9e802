"""One Jinja2 environment for every HTML page: the shared layout and macros plus each package's pages.

A package hands in its own template folder; its templates extend `base.html` from here. Autoescaping is
on for every template, so text from records or people is shown, never executed. Every template may be
written translatable (`{% trans %}`, `_()`): the words come out in the language of the request being
answered (`web.i18n`), English unless a page's render says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from locales import supported

from .i18n import content_locale, current_locale, install, lazy_gettext, using_locale
from .static import STATIC_PREFIX

SHARED_TEMPLATES = Path(__file__).resolve().parent / "templates"
PRODUCT_NAME = lazy_gettext("Patient portal")
# Pages that show personal data must never be kept by a shared browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


def make_environment(folders: Iterable[Path] = ()) -> Environment:
    """The environment over ``folders`` (searched first) and the shared layout and macros."""
    loaders = [FileSystemLoader(str(f)) for f in folders] + [FileSystemLoader(str(SHARED_TEMPLATES))]
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html", "xml"], default=True),
                      trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    install(env)
    env.globals.update(static=lambda name: f"{STATIC_PREFIX}/{name}", product_name=PRODUCT_NAME)
    return env


class PageRenderer:
    """Renders a template into an HTML response with the headers every page needs."""

    def __init__(self, env: Environment, defaults: Mapping[str, Any] | None = None) -> None:
        self.env = env
        self.defaults = dict(defaults or {})

    def text(self, template: str, **context: Any) -> str:
        """The page in the request's language (or `lang` when the context names one). Dates and numbers
        follow the template's own words: English while the template is not translated yet."""
        lang = supported(context.pop("lang", None)) or current_locale()
        content = content_locale(template, lang)
        with using_locale(lang, formats=content):
            return self.env.get_template(template).render(**{**self.defaults, **context, "lang": lang,
                                                             "content_lang": content})

    def page(self, template: str, status_code: int = 200, *, headers: Mapping[str, str] | None = None,
             **context: Any) -> HTMLResponse:
        return HTMLResponse(self.text(template, **context), status_code=status_code,
                            headers={**NO_STORE, **(headers or {})})
