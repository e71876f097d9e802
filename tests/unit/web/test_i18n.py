"""Which language a person's pages are in, and how dates and numbers are written in it: the record's preferred
language, the switch that wins over it, the browser before sign-in, English for anything else; two requests in
two languages at once never mix."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jinja2 import DictLoader

from locales import choose_locale, compile_catalogue, from_accept_language, gettext_in, supported
from mappers.dates import date_time_words, day_words, long_date, month_year, short_date, since_words
from mappers.languages import preferred_language
from mappers.quantities import number_text
from portal.clock import Clock
from smart_auth.accounts.preferences import DisplayPreferences
from web import PageRenderer, make_environment
from web.i18n import (
    browser_locale,
    current_locale,
    formatting_locale,
    lazy_gettext,
    reset_locale,
    set_locale,
    untranslated,
    using_locale,
)

BCP47 = "urn:ietf:bcp:47"


def _speaks(*codes: str, preferred: int | None = 0) -> dict:
    return {"resourceType": "Patient", "communication": [
        {"language": {"coding": [{"system": BCP47, "code": c}]}, **({"preferred": True} if i == preferred else {})}
        for i, c in enumerate(codes)]}


@pytest.mark.parametrize(("chosen", "record", "browser", "expected"), [
    ("", "es", None, "es"),  # the record's preferred language
    (None, "es-MX", "en", "es"),  # any Spanish, and the record wins over the browser
    ("", "en-US", "es", "en"),
    ("en", "es", None, "en"),  # the switch wins over the record
    ("es", "en-US", None, "es"),
    ("", "zh", "es", "en"),  # a language we do not offer: English, not a guess
    ("", None, "es", "es"),  # nothing in the record: the language already in use in this browser
    ("", None, None, "en"),
    ("fr", None, None, "en"),  # a choice we do not offer is no choice
])
def test_the_language_of_a_signed_in_persons_pages(chosen: str | None, record: str | None, browser: str | None,
                                                    expected: str) -> None:
    assert choose_locale(chosen, record, browser) == expected


def test_the_preferred_language_read_from_the_record() -> None:
    assert preferred_language(_speaks("en-US", "es", preferred=1)) == "es"
    assert preferred_language(_speaks("es-MX", "en-US", preferred=None)) == "es-mx"  # none marked: the first
    assert preferred_language({"communication": [{"language": {"coding": [
        {"system": "http://example.org/local", "code": "SPA"}, {"system": BCP47, "code": "es"}]}}]}) == "es"
    assert preferred_language({"resourceType": "Patient"}) is None
    assert preferred_language({"communication": [{"language": {"text": "Spanish"}}]}) is None
    assert preferred_language({"communication": "es"}) is None and preferred_language(None) is None


@pytest.mark.parametrize(("header", "expected"), [
    ("es-MX,es;q=0.9,en;q=0.5", "es"),
    ("en-US,en;q=0.9,es;q=0.8", "en"),
    ("fr, es;q=0.4, en;q=0.3", "es"),  # the first one we have, by weight
    ("en;q=0.2, es;q=0.9", "es"),
    ("es;q=0, fr", None),  # q=0: not wanted
    ("de, *", None),
    ("", None),
    (None, None),
    ("es;q=abc", None),
])
def test_what_a_browser_asks_for(header: str | None, expected: str | None) -> None:
    assert from_accept_language(header) == expected


def test_the_switch_cookie_wins_over_the_browser_before_sign_in() -> None:
    assert browser_locale({"portal_lang": "es"}, "en-US") == "es"
    assert browser_locale({"portal_lang": "klingon"}, "es") == "es"
    assert browser_locale({}, "fr") is None
    assert supported("ES_us") == "es" and supported(None) is None and supported("e") is None


def test_the_language_is_kept_with_the_display_settings() -> None:
    chosen = DisplayPreferences(text_size="large", language="es")
    assert DisplayPreferences.from_fields(chosen.as_fields()) == chosen
    assert DisplayPreferences.from_fields({"language": "xx"}).language == ""
    # Never chosen: not written, so saving text size and contrast never clears a choice made elsewhere.
    assert "language" not in DisplayPreferences(contrast="high").as_fields()


def test_a_date_and_a_number_in_spanish_and_in_english() -> None:
    tuesday, today = date(2026, 3, 3), date(2026, 3, 10)
    assert long_date(tuesday) == "Tuesday 3 March 2026"
    assert long_date(tuesday, "es") == "martes, 3 de marzo de 2026"
    assert short_date(tuesday, "es_US") == "3 de marzo de 2026" and month_year(tuesday, "es") == "marzo de 2026"
    assert day_words("2026-03-11", today, locale="es") == "mañana"
    assert day_words("2026-03-07", today, locale="es") == "hace 3 días"
    assert day_words("2026-03-13", today, locale="es") == "dentro de 3 días"
    assert day_words("garbage", today, locale="es") == "una fecha desconocida"
    visit = "2026-03-11T14:30:00-05:00"
    assert date_time_words(visit, today) == "tomorrow at 2:30 pm"
    assert date_time_words(visit, today, locale="es_US") == "mañana, 2:30\u202fp.m."  # US Spanish: 12-hour clock
    assert date_time_words(visit, today, locale="es_ES") == "mañana, 14:30"
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert since_words("2026-03-10T14:05:00Z", now, "es") == "hace 55 minutos"
    assert since_words(now, now, "es") == "ahora mismo"
    assert number_text(1250.5) == "1,250.5" and number_text(1250.5, "es_ES") == "1.250,5"
    assert number_text(4.0, "es_ES") == "4,0"  # the decimals the record wrote are kept
    assert number_text(5.1, "es_US") == "5.1"  # Spanish in the US writes a decimal point


def test_the_clinics_clock_writes_in_the_page_language_only_on_a_translated_page() -> None:
    clock = Clock(ZoneInfo("America/Chicago"), lambda: datetime(2026, 3, 10, 18, tzinfo=UTC).timestamp())
    assert clock.day("2026-03-11") == "tomorrow"
    with using_locale("es", formats="es"):
        assert clock.day("2026-03-11") == "mañana" and clock.number(1250) == "1,250"
        assert clock.when("2026-03-12T09:05:00-05:00") == "dentro de 2 días, 9:05\u202fa.m."
    with using_locale("es"):  # Spanish words, but the page's own text is English: dates stay English
        assert clock.day("2026-03-11") == "tomorrow"
        assert clock.day("2026-03-11", "es") == "mañana"  # a page's code may say so itself
    spain = Clock(ZoneInfo("Europe/Madrid"), clock.now_fn, "ES")
    assert spain.number(1250.5, "es") == "1.250,5" and spain.when("2026-03-11T14:30:00+01:00", "es") == "mañana, 14:30"


def test_a_catalogue_entry_not_confirmed_shows_the_english(tmp_path: Path) -> None:
    po = tmp_path / "messages.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  'msgid "Home"\nmsgstr "Inicio"\n\n#, fuzzy\nmsgid "Help"\nmsgstr "Socorro"\n', encoding="utf-8")
    compiled = compile_catalogue(po, "es")
    assert compiled.gettext("Home") == "Inicio" and compiled.gettext("Help") == "Help"
    assert gettext_in("es", "Home") == "Inicio" and gettext_in("en", "Home") == "Home"
    assert gettext_in("xx", "Home") == "Home"


def test_words_defined_at_import_time_turn_into_the_language_of_each_page() -> None:
    home = lazy_gettext("Home")
    assert str(home) == "Home"
    token = set_locale("es")
    try:
        assert str(home) == "Inicio" and current_locale() == "es" and formatting_locale() == "en"
    finally:
        reset_locale(token)
    assert str(home) == "Home" and current_locale() == "en"
    token = set_locale("xx")
    assert current_locale() == "en"  # a language we do not offer: English
    reset_locale(token)


def test_english_left_on_a_translated_page_is_marked_as_english() -> None:
    assert untranslated("Refill due") == "Refill due"
    with using_locale("es"):
        assert untranslated("Fill <in>") == '<span lang="en">Fill &lt;in&gt;</span>'
        assert untranslated("") == "" and untranslated(None) == ""


async def test_two_requests_in_two_languages_at_once_never_mix() -> None:
    env = make_environment()
    env.loader = DictLoader({"page.html": '<html lang="{{ lang }}">{{ _("Home") }} · {{ name }}'
                                          ' · {{ ngettext("%(num)s minute", "%(num)s minutes", 2) }}'})
    renderer = PageRenderer(env)

    async def request(code: str) -> list[str]:
        token = set_locale(code)  # what an area's route guard does for each request
        try:
            pages = []
            for _ in range(20):
                await asyncio.sleep(0)  # the other request runs here
                pages.append(renderer.text("page.html", name=lazy_gettext("Help")))
            return pages
        finally:
            reset_locale(token)

    spanish, english = await asyncio.gather(request("es"), request("en"))
    assert set(spanish) == {'<html lang="es">Inicio · Ayuda · 2 minutos'}
    assert set(english) == {'<html lang="en">Home · Help · 2 minutes'}
    assert renderer.text("page.html", lang="es", name="x").startswith('<html lang="es">Inicio')
