"""The language of the request being answered, and the words in it.

One template environment serves every request at once, so the language is not installed into it per
request: its `_`/`gettext`/`ngettext` read the language from a context variable, which each request sets
for itself (an area's route guard, from the person's session or their browser) and each render narrows to
the page (`PageRenderer`). Text defined at import time (menus, error words) is marked with `lazy_gettext`
and turns into words only when shown, in the language of the page it is shown on.

Two languages are kept apart on purpose: the *page* language (`current_locale`: navigation, headings, every
`_()`), and the *formatting* language of dates and numbers (`formatting_locale`), which is the page's only
while a translated template renders. A page whose template is not translated yet keeps its English words
and English dates inside the translated layout (marked `lang="en"`), never an English sentence with a
Spanish date in it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from babel.support import LazyProxy
from jinja2 import Environment
from markupsafe import Markup, escape

from locales import (
    ENGLISH,
    LOCALES,
    NATIVE_NAMES,
    from_accept_language,
    gettext_in,
    ngettext_in,
    pgettext_in,
    supported,
    translations,
)
from locales.pending import NOT_YET_TRANSLATED

LANG_COOKIE = "portal_lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600

_page: ContextVar[str] = ContextVar("page_locale", default=ENGLISH)
_formats: ContextVar[str] = ContextVar("formatting_locale", default=ENGLISH)


def current_locale() -> str:
    """The language this request's pages and messages are in."""
    return _page.get()


def formatting_locale() -> str:
    """The language dates and numbers are written in right now (English outside a translated page)."""
    return _formats.get()


def set_locale(code: str | None) -> Token[str]:
    """Answer the rest of this request in `code` (an unsupported code: English); `reset_locale` undoes it."""
    return _page.set(supported(code) or ENGLISH)


def reset_locale(token: Token[str]) -> None:
    _page.reset(token)


@contextmanager
def using_locale(code: str | None, *, formats: str | None = None) -> Iterator[str]:
    """Words in `code`, dates and numbers in `formats` (default English), for the duration of the block."""
    page = _page.set(supported(code) or ENGLISH)
    fmt = _formats.set(supported(formats) or ENGLISH)
    try:
        yield _page.get()
    finally:
        _formats.reset(fmt)
        _page.reset(page)


def gettext(message: str) -> str:
    """`message` in this request's language."""
    return gettext_in(_page.get(), message)


def pgettext(context: str, message: str) -> str:
    """`message`, meant in `context`, in this request's language."""
    return pgettext_in(_page.get(), context, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return ngettext_in(_page.get(), singular, plural, n)


def lazy_gettext(message: str) -> Any:
    """`message`, translated each time it is shown (for words defined at import time)."""
    return LazyProxy(gettext, message, enable_cache=False)


_l = lazy_gettext


def content_locale(template: str, locale: str) -> str:
    """The language a template's own words are in: the page's, unless it is not translated yet."""
    return ENGLISH if template in NOT_YET_TRANSLATED else locale


def install(env: Environment) -> None:
    """`_`, `gettext` and `ngettext` in every template, reading the request's language when called;
    `{% trans %}` blocks collapse their whitespace so a message id does not depend on indentation."""
    for code in LOCALES:
        translations(code)  # compiled now, at start-up: a broken catalogue stops the app, not a page
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(gettext, ngettext, newstyle=True, pgettext=pgettext)  # type: ignore[attr-defined]
    env.globals.update(other_locales=other_locales, untranslated_lang=untranslated_lang)
    env.filters["untranslated"] = untranslated


def untranslated_lang() -> Markup:
    """` lang="en"` for an element whose words are still English only, on a page in another language (where a
    wrapping `untranslated` span would not do, e.g. inside a visually hidden one)."""
    return Markup("") if _page.get() == ENGLISH else Markup(' lang="en"')


def untranslated(value: Any) -> Markup:
    """Words a translated page shows that are still English only (from code not translated yet), marked as
    English on a page in another language so a screen reader reads them as English."""
    text = escape(value if value is not None else "")
    if not text or _page.get() == ENGLISH:
        return text
    return Markup('<span lang="en">') + text + Markup("</span>")


def browser_locale(cookies: Mapping[str, str], accept_language: str | None) -> str | None:
    """The language this browser was last switched to (the switch's cookie), else the first the browser
    asks for that we have; None when neither says."""
    return supported(cookies.get(LANG_COOKIE)) or from_accept_language(accept_language)


def remember_locale(response: Any, code: str, *, secure: bool) -> None:
    """Keep the language on this browser for the pages before sign-in and after sign-out."""
    response.set_cookie(LANG_COOKIE, supported(code) or ENGLISH, max_age=LANG_COOKIE_SECONDS, path="/",
                        httponly=True, samesite="lax", secure=secure)


def other_locales(code: str) -> list[tuple[str, str]]:
    """What the language switch offers on a page in `code`: each other language, named in itself."""
    return [(other, NATIVE_NAMES[other]) for other in LOCALES if other != code]
