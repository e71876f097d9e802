"""The languages pages are offered in, and their word catalogues (gettext, read with Babel).

English is the source language: a message id is the English text itself, so English needs no catalogue.
Every other language has `<code>/LC_MESSAGES/messages.po` here, made from `messages.pot` (see the README,
"Languages", for the pybabel commands). The `.po` files are compiled in memory the first time a language
is asked for, so a fresh clone needs no build step and no `.mo` file is kept in git.

Everything here is pure (no request, no clock): the caller says which language. The web layer keeps the
language of the request being answered (`web.i18n`); `mappers` pass it in as `locale`.
"""

from __future__ import annotations

import gettext as _gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

HERE = Path(__file__).resolve().parent
DOMAIN = "messages"
TEMPLATE = HERE / f"{DOMAIN}.pot"
ENGLISH = "en"
SPANISH = "es"
LOCALES: tuple[str, ...] = (ENGLISH, SPANISH)
# The marks extraction looks for besides gettext's own (`_`, `gettext`, `ngettext`, `N_`): pybabel's `-k`.
# `pgettext_in`/`NP_`: a message with a context, for an English word that needs two words in another language
# ("Current" as a heading over medicines and as a status).
EXTRACT_KEYWORDS: tuple[str, ...] = ("_l", "lazy_gettext", "gettext_in:2", "ngettext_in:2,3", "pgettext_in:2c,3",
                                     "NP_:1c,2")
# Each language named in itself, so a reader finds their own (the switch shows these; never translated).
NATIVE_NAMES: dict[str, str] = {ENGLISH: "English", SPANISH: "Español"}


def catalogue_path(locale: str) -> Path:
    return HERE / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def supported(code: object) -> str | None:
    """One of LOCALES for a language tag (`es`, `es-MX`, `ES_us`, `en-US`), else None."""
    if not isinstance(code, str):
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LOCALES else None


def from_accept_language(header: str | None) -> str | None:
    """The first supported language a browser asks for (`Accept-Language`, by q-value), else None."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        code = supported(tag)
        if code and quality > 0:
            ranked.append((-quality, index, code))
    return min(ranked)[2] if ranked else None


def choose_locale(chosen: str | None, record: str | None, browser: str | None = None) -> str:
    """The language a signed-in person's pages are in: what they chose with the switch; else the preferred
    language in their health record (Spanish for `es`/`es-*`, English for any other); else, when the record
    names none, the language they were already reading in this browser; else English."""
    if supported(chosen):
        return str(supported(chosen))
    if record:
        return SPANISH if supported(record) == SPANISH else ENGLISH
    return supported(browser) or ENGLISH


def compile_catalogue(path: Path, locale: str) -> Translations:
    """A `.po` file compiled in memory (what `pybabel compile` would write as `.mo`). Fuzzy entries are left
    out: a translation a translator has not confirmed shows the English instead."""
    with path.open("rb") as po:
        catalogue = read_po(po, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalogue, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    """The catalogue of a language, compiled once per process (English and unknown codes: the words as
    written)."""
    code = supported(locale)
    path = catalogue_path(code) if code and code != ENGLISH else None
    if path is None or not path.is_file():
        return _gettext.NullTranslations()
    return compile_catalogue(path, code)  # type: ignore[arg-type]


def N_(message: str) -> str:
    """Marks `message` for the catalogue where it is defined; it is translated where it is shown."""
    return message


def NP_(context: str, message: str) -> tuple[str, str]:
    """Marks `message`, meant in `context`, for the catalogue where it is defined; shown with `pgettext_in`."""
    return context, message


def pgettext_in(locale: str, context: str, message: str) -> str:
    """`message` as meant in `context`, in `locale` (English: the message as written)."""
    return translations(locale).pgettext(context, message)


def gettext_in(locale: str, message: str) -> str:
    """`message` (its English text) in `locale`."""
    return translations(locale).gettext(message)


def ngettext_in(locale: str, singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in `locale` (Spanish has the same two forms as English)."""
    return translations(locale).ngettext(singular, plural, n)
