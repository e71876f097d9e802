"""The portal in the patient's own language, against the running app (real HAPI and Redis): Spanish from the
record's preferred language, the switch that wins over it and is kept with the account, a page not translated
yet marked as English, and the pages before sign-in and after sign-out following the browser."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient

from .helpers import csrf_of, portal_browser, portal_sign_in, text_of

pytestmark = pytest.mark.integration
PATIENT = "pt-0010"  # the EHR says Spanish (preferred), then English


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    language = httpx.get(f"{ehr_base_url}/Patient/{PATIENT}", timeout=30).json()["communication"][0]
    assert language["preferred"] is True and language["language"]["coding"][0]["code"] == "es"
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def _switch(b: httpx.Client, page: httpx.Response, code: str, back: str = "/portal/") -> httpx.Response:
    answer = b.post("/portal/language", data={"csrf_token": csrf_of(page.text), "lang": code, "next": back})
    assert answer.status_code == 303 and answer.headers["location"] == back
    return b.get(back)


def test_spanish_from_the_record_then_the_switch_wins_and_follows_the_account(gateway: GatewayServer,
                                                                                patient: Person) -> None:
    with portal_browser(gateway) as b:
        home = portal_sign_in(b, patient)
        assert home.status_code == 200 and '<html lang="es"' in home.text
        words = text_of(home.text)
        for spanish in ("Ir al contenido principal", "Su historial:", "Cerrar sesión", "Sus próximas citas",
                        "Resultados nuevos", "En una emergencia, llame al 911"):
            assert spanish in words, spanish
        assert "Your next visits" not in words and "Sign out" not in words
        # The switch offers English, named in English and marked so.
        assert re.search(r'<button type="submit" class="link" name="lang" value="en">.*?<span lang="en">English</span>',
                         home.text)
        # A translated page from the record: Spanish throughout.
        results = b.get("/portal/results")
        assert '<html lang="es"' in results.text and not re.search(r'<main id="main"[^>]* lang="en"', results.text)
        assert "Análisis de laboratorio" in text_of(results.text) and "Lab results" not in text_of(results.text)
        # The bills (the last portal page translated): Spanish too, amounts in dollars.
        bills = b.get("/portal/billing")
        assert '<html lang="es"' in bills.text and not re.search(r'<main id="main"[^>]* lang="en"', bills.text)
        assert "Facturas y pagos" in text_of(bills.text) and "solo está en inglés" not in text_of(bills.text)
        # The switch: English at once, on the same page.
        english = _switch(b, bills, "en", "/portal/billing")
        assert '<html lang="en"' in english.text and "Sign out" in text_of(english.text)
        assert 'lang="en"' not in english.text.split("<main", 1)[1].split(">", 1)[0]
        signed_out = b.post("/portal/signout", data={"csrf_token": csrf_of(english.text)})
        assert "You have signed out" in text_of(b.get(signed_out.headers["location"]).text)
    # The choice is the account's: a new browser, after a new sign-in, is in English although the record says
    # Spanish.
    with portal_browser(gateway) as b:
        home = portal_sign_in(b, patient)
        assert '<html lang="en"' in home.text and "Your next visits" in text_of(home.text)
        spanish = _switch(b, home, "es")
        assert '<html lang="es"' in spanish.text and "Sus próximas citas" in text_of(spanish.text)
        # A language we do not offer changes nothing.
        assert '<html lang="es"' in _switch(b, spanish, "fr").text
        done = b.post("/portal/signout", data={"csrf_token": csrf_of(spanish.text)})
        goodbye = b.get(done.headers["location"])
        assert '<html lang="es"' in goodbye.text and "Cerró su sesión" in text_of(goodbye.text)
        # The sign-in pages follow this browser's last choice too.
        login = b.get("/auth/login")
        assert '<html lang="es"' in login.text and "Nombre de usuario" in text_of(login.text)


def test_before_sign_in_the_browser_asks_and_the_link_switches(gateway: GatewayServer) -> None:
    with portal_browser(gateway) as b:
        b.headers["Accept-Language"] = "es-MX,es;q=0.9,en;q=0.5"
        login = b.get("/auth/login")
        assert '<html lang="es"' in login.text and "Iniciar sesión" in text_of(login.text)
        link = re.search(r'href="(/auth/language\?[^"]+)" hreflang="en"', login.text)
        assert link is not None
        back = b.get(link.group(1).replace("&amp;", "&"))
        assert back.status_code == 303 and back.headers["location"] == "/auth/login"
        english = b.get("/auth/login")
        assert '<html lang="en"' in english.text and "Username" in text_of(english.text)
        # The portal's own pages without a session follow the same cookie; an unknown language is ignored.
        assert b.get("/portal/language", params={"lang": "es", "next": "/portal/signed-out"}).status_code == 303
        assert '<html lang="es"' in b.get("/portal/signed-out").text
        b.get("/portal/language", params={"lang": "xx", "next": "https://evil.example/"})
        assert '<html lang="es"' in b.get("/portal/signed-out").text
    with portal_browser(gateway) as b:
        assert '<html lang="en"' in b.get("/auth/login", headers={"Accept-Language": "fr, de;q=0.8"}).text
