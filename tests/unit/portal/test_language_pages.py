"""The portal in Spanish as a patient reads it: home, the layout around every page, the pages that fail and
the sign-in page, with `<html lang>` saying so; a page not translated yet marked English inside the Spanish
layout; and the switch that keeps the choice with the account."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from jinja2 import FileSystemLoader
from starlette.requests import Request
from starlette.responses import Response

from locales.pending import NOT_YET_TRANSLATED
from portal.core import Visit
from portal.fhir import RecordUnavailable
from portal.pages.dashboard import show_dashboard
from portal.pages.language import add_language_routes
from smart_auth.accounts.preferences import DisplayPreferences
from smart_auth.pages import make_auth_templates
from tests.plain_language import MAX_GRADE, grade_page
from tests.unit.mappers.conftest import TODAY
from web import PageRenderer, i18n

from .pages_harness import demo_visit
from .test_pages import text_of

NOON = datetime(TODAY.year, TODAY.month, TODAY.day)
PID = "pt-0005"  # a full record: visits, results, medicines and what is due
SPANISH_DATE = re.compile(r"\b\d{1,2} de (enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|"
                          r"noviembre|diciembre) de \d{4}\b")
ENGLISH_DATE = re.compile(r"\b\d{1,2} (January|February|March|April|May|June|July|August|September|October|"
                          r"November|December) \d{4}\b")


def _main(html: str) -> str:
    return html.split("<main", 1)[1].split("</main>", 1)[0]


async def test_home_in_spanish(tmp_path: Path, records: dict) -> None:
    since = datetime(2026, 3, 8, 15).timestamp()
    html = (await show_dashboard(demo_visit(tmp_path, records[PID], PID, NOON, lang="es",
                                            previous_sign_in=since))).body.decode()
    text = text_of(html)
    assert html.startswith('<!doctype html>\n<html lang="es">')
    assert "<title>Inicio \u2013 Portal del paciente</title>" in html
    for words in ("Ir al contenido principal", "Todas las páginas", "Cerrar sesión", "Su historial: Demo Patient",
                  "Hola de nuevo", "Su última entrada al portal: hace 2 días", "Sus próximas citas",
                  "Resultados nuevos", "Sus medicamentos", "Vacunas y chequeos que le tocan",
                  "En una emergencia, llame al 911", "Ayuda con esta página", "¿Sigue ahí?"):
        assert words in text, words
    for english in ("Sign out", "Your next visits", "Welcome back", "All pages", "In an emergency",
                    "Skip to main content", "See all your test results"):
        assert english not in text, english
    # The page is Spanish throughout: its own text is not marked English, dates are written in Spanish.
    assert 'lang="en"' not in html.split("<main", 1)[1].split(">", 1)[0]
    assert "solo está en inglés" not in text
    assert SPANISH_DATE.search(_main(html)) and not ENGLISH_DATE.search(re.sub(r'<span lang="en">.*?</span>', "",
                                                                                  _main(html)))
    # The to-do list and what is due speak Spanish too; a guideline's English title is marked as English.
    for words in ("Llene este formulario antes del martes, 31 de marzo de 2026.", "Le toca ahora: no está en su "
                  "historial", "Vacuna contra la gripe", "Último en su historial: lunes, 7 de octubre de 2024"):
        assert words in text, words
    for english in ("Fill in this form", "Due now", "Flu shot", "Ask your care team"):
        assert english not in text, english
    assert re.search(r'hreflang="en" [^>]*><span lang="en">CDC: [^<]+</span></a>', _main(html))
    # The switch offers English, named in English; the countdown of the idle warning counts in Spanish.
    switch = html.split('class="language-switch"', 1)[1].split("</div>", 1)[0]
    assert 'name="lang" value="en"' in switch and '<span lang="en">English</span>' in switch
    assert "Idioma:" in switch and 'name="csrf_token"' in switch
    assert 'data-minutes="%d minutos"' in html and 'data-second="%d segundo"' in html
    # Plain Spanish: the page's own words read at grade 7 or below (Crawford's formula for Spanish), the
    # English still left (marked lang="en") is not ours to grade here.
    spanish_only = re.sub(r'<span lang="en">.*?</span>', " ", html)
    grade = grade_page("home (es)", spanish_only, lang="es")
    assert grade.grade <= MAX_GRADE, grade.hardest()


async def test_home_in_english_offers_spanish(tmp_path: Path, records: dict) -> None:
    html = (await show_dashboard(demo_visit(tmp_path, records[PID], PID, NOON))).body.decode()
    assert '<html lang="en">' in html and "Your next visits" in text_of(html)
    switch = html.split('class="language-switch"', 1)[1].split("</div>", 1)[0]
    assert 'name="lang" value="es"' in switch and '<span lang="es">Español</span>' in switch
    assert "Language:" in switch and 'lang="es"' not in html.split("<main", 1)[0].split("language-switch")[0]
    assert 'data-minutes="%d minutes"' in html


async def test_a_page_not_translated_yet_is_marked_english_inside_the_spanish_layout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every portal page is translated now: a page of the test's own stands for one that is not yet.
    (tmp_path / "pages" / "portal").mkdir(parents=True)
    (tmp_path / "pages" / "portal" / "later.html").write_text(
        '{% extends "portal/layout.html" %}{% block content %}<h1>Bills</h1><p>Dated {{ day | date }}.</p>'
        "{% endblock %}")
    monkeypatch.setattr(i18n, "NOT_YET_TRANSLATED", NOT_YET_TRANSLATED | {"portal/later.html"})
    visit = demo_visit(tmp_path, [], PID, NOON, lang="es")
    visit.portal.renderer.env.loader.loaders.insert(0, FileSystemLoader(str(tmp_path / "pages")))
    html = visit.render("portal/later.html", day="2026-03-04").body.decode()
    assert '<html lang="es">' in html and re.search(r'<main id="main"[^>]* lang="en">', html)
    main = _main(html)
    assert '<p class="info" lang="es">Por ahora, esta página solo está en inglés.</p>' in main
    assert "Bills" in text_of(main) and "Cerrar sesión" in text_of(html)
    # Its dates are English like its words, never "Dated 4 de marzo".
    assert ENGLISH_DATE.search(main) and not SPANISH_DATE.search(main)


@pytest.mark.parametrize(("headers", "cookies", "words", "lang"), [
    ({}, {}, "We can't show this right now", "en"),
    ({"Accept-Language": "es-US,es;q=0.9"}, {}, "Ahora no podemos mostrar esto", "es"),
    ({"Accept-Language": "es"}, {"portal_lang": "en"}, "We can't show this right now", "en"),  # the switch wins
    ({}, {"portal_lang": "es"}, "Su información está segura", "es"),
])
async def test_a_page_that_fails_says_why_in_the_browsers_language(tmp_path: Path, headers: dict, cookies: dict,
                                                                   words: str, lang: str) -> None:
    visit = demo_visit(tmp_path, [], "pt-0001", NOON)

    async def failing() -> Response:
        raise RecordUnavailable("Observation")

    router = APIRouter(route_class=visit.portal.route_class())
    router.get("/portal/x")(failing)
    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test",
                                 cookies=cookies) as client:
        answer = await client.get("/portal/x", headers=headers)
        assert answer.status_code == 503 and f'<html lang="{lang}">' in answer.text
        assert words in text_of(answer.text)
        # The next request, without that cookie or header, is not answered in the last one's language.
        client.cookies.clear()
        assert '<html lang="en">' in (await client.get("/portal/x")).text


class Preferences:
    """The account store's display settings for the one demo account (Redis for real)."""

    def __init__(self) -> None:
        self.saved: list[DisplayPreferences] = []

    async def save_display_preferences(self, account_id: str, preferences: DisplayPreferences) -> None:
        self.saved.append(preferences)


async def test_the_switch_keeps_the_choice_with_the_account_and_the_session(tmp_path: Path) -> None:
    visit = demo_visit(tmp_path, [], "pt-0001", NOON)
    portal, session = visit.portal, visit.session
    session.extra["display"] = {"text_size": "large", "contrast": "standard"}
    accounts, stored = Preferences(), []
    portal.deps.accounts = accounts

    async def signed_in(request: Request) -> Visit:
        return Visit(portal, request, session, visit.fhir)

    async def save(saved: Any) -> None:
        stored.append(dict(saved.extra))

    portal.visit = signed_in  # type: ignore[method-assign]
    portal.store.save = save  # type: ignore[method-assign]
    router = APIRouter(route_class=portal.route_class())
    add_language_routes(router, portal)
    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as client:
        answer = await client.post("/portal/language", data={"csrf_token": "c", "lang": "es",
                                                              "next": "/portal/results?month=2026-01"})
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/results?month=2026-01"
        assert answer.cookies.get("portal_lang") == "es"
        assert accounts.saved == [DisplayPreferences(text_size="large", language="es")]  # the rest kept as it was
        assert session.extra["lang"] == "es" and stored[-1]["display"]["language"] == "es"
        # Somewhere else than the portal, or a language we do not offer: home, and nothing changes.
        elsewhere = await client.post("/portal/language", data={"csrf_token": "c", "lang": "fr",
                                                                 "next": "https://evil.example/"})
        assert elsewhere.headers["location"] == "/portal/" and len(accounts.saved) == 1
        # Without the session's form token: the form has expired, nothing is saved.
        forged = await client.post("/portal/language", data={"csrf_token": "nope", "lang": "en", "next": "/portal/"})
        assert forged.status_code == 400 and len(accounts.saved) == 1 and session.extra["lang"] == "es"
        assert "Este formulario ya venció" in text_of(forged.text)
        # Before sign-in, the link only sets this browser's cookie.
        link = await client.get("/portal/language", params={"lang": "en", "next": "/portal/signed-out"})
        assert link.headers["location"] == "/portal/signed-out" and link.cookies.get("portal_lang") == "en"
        assert len(accounts.saved) == 1


def test_the_sign_in_page_in_spanish_links_back_to_itself_in_english() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/auth/login", "headers": [],
                       "query_string": b"next=%2Fauth%2Fauthorize%3Fstate%3Dx"})
    html = PageRenderer(make_auth_templates()).text("accounts/login.html", request=request, lang="es", next="/",
                                                    username="", error=None, notice="signed-out", csrf_field="")
    text = text_of(html)
    assert '<html lang="es">' in html and "Cerró su sesión." in text
    for words in ("Iniciar sesión", "Nombre de usuario", "Contraseña", "Continuar", "¿Olvidó su contraseña?"):
        assert words in text, words
    link = re.search(r'<a href="([^"]+)" hreflang="en"><span class="visually-hidden">Idioma: </span>'
                     r'<span lang="en">English</span></a>', html)
    assert link and link.group(1) == ("/auth/language?lang=en&amp;next=%2Fauth%2Flogin%3Fnext%3D%252Fauth%252F"
                                      "authorize%253Fstate%253Dx")
