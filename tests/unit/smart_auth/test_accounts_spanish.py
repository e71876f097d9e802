"""The sign-in side in Spanish: enrolment, password reset, sign-in settings, caregiver access and an app's
consent pages, for a browser that asks for Spanish (its `portal_lang` cookie or `Accept-Language`). Each page
says its words in Spanish (dates the Spanish way), keeps no English of ours, and reads at grade 7 or below by
Crawford's formula; what goes to an app or the JSON API (RFC 6749 error codes and descriptions) stays English."""

from __future__ import annotations

import functools
import re
from typing import Any

import httpx
from starlette.requests import Request

from smart_auth.accounts.passwords import password_problems
from smart_auth.accounts.proxy_links import RELATIONSHIPS
from smart_auth.consent import describe_scope
from smart_auth.pages import make_auth_templates
from tests.plain_language import MAX_GRADE, grade_page, main_of, reading_units
from tests.plain_language import too_hard as above_bar
from tests.unit.test_plain_language import SCOPES, account_pages, oauth_pages
from web import PageRenderer
from web.i18n import gettext, using_locale

from .test_account_security import PASSWORD, PUBLIC, Site, csrf

SPANISH = {"Accept-Language": "es-US,es;q=0.9,en;q=0.5"}
# What the pages show that is not words of ours: a username, a name, codes, an app's name.
DATA = re.compile(r"pat-demo|nurse|Sam Lee|Ana Lopez|Health Diary|abcd-efgh-jkmn-pqrs|\d{4}-\d{4}|"
                  r"Google Authenticator|Microsoft Authenticator|1Password|MRN|SMS|QR|Mac|Ctrl|@")


def _render(folder: str, template: str, context: dict[str, Any], lang: str) -> str:
    request = Request({"type": "http", "method": "GET", "path": f"/auth/{template}", "headers": [],
                       "query_string": b""})
    if lang == "es":
        with using_locale("es"):
            context = _as_a_route_hands_it(context)
    return _renderer().text(f"{folder}/{template}", request=request, lang=lang, csrf_field="", signed_in=True,
                            **context)


@functools.cache
def _renderer() -> PageRenderer:
    """One template environment for every page here, as the app has one for all its requests (a new one for
    each page compiled every template again: 250 compiles)."""
    return PageRenderer(make_auth_templates())


def _as_a_route_hands_it(context: dict[str, Any]) -> dict[str, Any]:
    """The context with the words a route translates before rendering (errors, notices, consent lines) in the
    request's language, as the routes do."""
    def words(value: Any) -> Any:
        if isinstance(value, str):
            return gettext(value)
        if isinstance(value, list):
            return [words(v) for v in value]
        if isinstance(value, dict):
            return {k: words(v) for k, v in value.items()}
        return value

    out = {k: words(v) if k in ("error", "errors", "done", "title", "text") else v for k, v in context.items()}
    if "password" in context.get("errors", {}):  # worded by the password rules, in the request's language
        out["errors"]["password"] = [p.message for p in password_problems("pat-demo1", "pat-demo")]
    if "relationships" in context:
        out["relationships"] = {k: gettext(v) for k, v in RELATIONSHIPS.items()}
    if "items" in context:
        out["items"] = [{"scope": s, "text": describe_scope(s)} for s in SCOPES]
    return out


def _english_units(html: str) -> set[str]:
    """The page's own sentences and labels in English (two words or more, data taken out)."""
    units = {DATA.sub(" ", u).strip() for u in reading_units(main_of(html))}
    return {u for u in units if len(re.findall(r"[A-Za-z]{2,}", u)) >= 2}


def _pages() -> list[tuple[str, str, dict[str, Any]]]:
    pages = [("accounts", t, c) for t, c in account_pages()] + [("oauth", t, c) for t, c in oauth_pages()]
    return [(folder, template, context) for folder, template, context in pages
            if template not in ("login.html", "login_mfa.html", "logout.html")]  # translated before this slice


def test_every_account_and_consent_page_in_spanish_keeps_no_english_and_reads_at_grade_7() -> None:
    grades = []
    for folder, template, context in _pages():
        english = _render(folder, template, context, "en")
        spanish = _render(folder, template, context, "es")
        assert '<html lang="es">' in spanish and 'lang="en"' not in main_of(spanish), template
        text = " ".join(reading_units(main_of(spanish)))
        left = [u for u in _english_units(english) if u in text]
        assert not left, f"{template}: English left on the Spanish page: {left}"
        grades.append(grade_page(f"{folder}/{template} ({', '.join(sorted(context))})", spanish, lang="es"))
    assert len(grades) >= 30
    assert not above_bar(grades), f"above grade {MAX_GRADE}: {above_bar(grades)}"


def test_the_consent_lines_in_spanish_and_english() -> None:
    with using_locale("es"):
        lines = [describe_scope(s) for s in SCOPES]
        assert "Ver sus resultados de laboratorio" in lines
        assert "Ver, pedir y cambiar sus citas" in lines
        assert "Saber quién es usted (su nombre en su historial)" in lines
        staff = describe_scope("user/Observation.rs", patient_facing=False)
    assert staff == "Read patients' test results and measurements"  # the staff area's words stay English
    assert describe_scope("patient/Observation.rs?category=laboratory") == "Read your lab results"


async def test_sign_in_settings_in_spanish_with_a_spanish_date_and_count(site: Site) -> None:
    person = await site.person()
    await site.accounts.store.use_recovery_code(person.record.id, person.recovery[0])
    async with await site.browser(person) as b:
        page = (await b.get("/auth/account/security", headers=SPANISH)).text
        assert '<html lang="es">' in page
        assert "Puso su contraseña por última vez el 1 de diciembre de 2025." in page
        assert "Después de su contraseña, entra con una aplicación de autenticación." in page
        assert "Le quedan 9 códigos de recuperación." in page
        assert "You last set" not in page and "recovery codes left" not in page
        b.cookies.set("portal_lang", "es")
        form = await b.get("/auth/account/password")
        wrong = await b.post("/auth/account/password", data={
            "csrf_token": csrf(form.text), "current_password": "Wrong-Guess-2024", "current_code": "123456",
            "password": "short", "password_confirm": "short"})
    assert wrong.status_code == 400
    assert "Corrija esto:" in wrong.text and "Use por lo menos 12 caracteres." in wrong.text
    assert "Use at least" not in wrong.text


async def test_a_code_asked_for_on_a_spanish_page_is_sent_in_spanish(site: Site) -> None:
    person = await site.person(email="pat@example.org")
    async with await site.browser(person) as b:
        page = await b.get("/auth/account/password", headers=SPANISH)
        assert "Mándeme un código" in page.text
        await b.post("/auth/account/send-code", headers=SPANISH,
                     data={"csrf_token": csrf(page.text), "back": "/auth/account/password"})
    sent = site.outbox.sent[-1]
    assert sent["subject"] == "Su código para entrar"
    assert re.fullmatch(r"Su código para entrar a .+ es \d{6}\. Vence en \d+ minutos\. No se lo dé a nadie\.",
                        sent["body"])


async def test_enrolment_and_reset_pages_in_spanish_and_the_english_browser_unchanged(site: Site) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url=PUBLIC) as b:
        letter = await b.get("/auth/enroll", params={"code": "abcd-efgh-jkmn-pqrs"}, headers=SPANISH)
        assert letter.status_code == 400 and '<html lang="es">' in letter.text
        assert "Escriba su código de invitación" in letter.text and "Ese código no sirve." in letter.text
        link = await b.get("/auth/enroll", params={"code": "x" * 40}, headers=SPANISH)
        assert "El enlace para crear su cuenta no sirve" in link.text and "enrolment link" not in link.text
        reset = await b.get("/auth/reset", headers=SPANISH)
        assert "Ponga una contraseña nueva" in reset.text and "un código de recuperación" in reset.text
        blank = await b.post("/auth/reset", headers=SPANISH, data={"csrf_token": csrf(reset.text), "username": ""})
        assert "Escriba su nombre de usuario." in blank.text
        english = await b.get("/auth/reset", headers={"Accept-Language": "en-US"})
        assert '<html lang="en">' in english.text and "Reset your password" in english.text


async def test_a_form_that_expired_says_so_in_spanish_but_the_json_api_keeps_its_english(site: Site) -> None:
    person = await site.person()
    async with await site.browser(person) as b:
        page = await b.post("/auth/account/password", headers=SPANISH, data={"current_password": PASSWORD})
        api = await b.post("/auth/api/proxies", headers={**SPANISH, "Content-Type": "application/json"},
                           content=b'{"name": ""}')
    assert page.status_code == 400 and "Este formulario venció." in page.text
    assert api.status_code == 403 and api.json()["error"] == "invalid_csrf"
    assert api.json()["error_description"] == "This form has expired. Please go back, reload the page and try again."
