"""The person's own pages in Spanish, as a Spanish-speaking patient reads them: help, the guide, the
self-check, display settings, caregivers, sign-ins and who looked at the record. Each is all Spanish (no
sentence of ours left in English; what is still English, like the gateway's access-log words, is marked
lang="en"), writes its dates in Spanish, and reads at grade 7 or below by Crawford's formula."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from portal.core import Visit, session_locale
from portal.devices import describe_device, device_words
from portal.guide import CAREGIVER_STOPS, PATIENT_STOPS
from portal.help_topics import TOPICS
from portal.self_check import QUESTIONS
from portal.sessions import SessionSummary
from smart_auth.accounts.models import PatientLink, ProxyLink
from smart_auth.accounts.proxies import RELATIONSHIPS
from tests.plain_language import MAX_GRADE, DataMask, grade_page, grade_units
from web.i18n import set_locale, using_locale

from .test_pages import text_of
from .test_plain_language import NOON, PID, Site, demo_data, site_for

SPANISH_DATE = re.compile(r"\b\d{1,2} de (enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|"
                          r"noviembre|diciembre)( de \d{4})?\b")
SPANISH_MONTH = re.compile(r"\b(enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|"
                           r"diciembre) de \d{4}\b")
# Words that only English sentences have: one of them left on a Spanish page is an untranslated sentence.
ENGLISH = re.compile(r"\b(the|your|you|and|with|what|this|is|to|of|for|please|here|how|who|when|not)\b", re.I)
SLICE_PAGES: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", "/portal/help", None), *(("GET", t.url, None) for t in TOPICS), ("GET", "/portal/help/nothing-here", None),
    ("GET", "/portal/guide", None), ("GET", "/portal/self-check", None),
    ("POST", "/portal/self-check", {"notes": "no", "results": "yes", "visits": "sometimes"}),
    ("POST", "/portal/self-check", {}), ("POST", "/portal/self-check", {"forms": "perhaps"}),
    ("GET", "/portal/settings", None), ("GET", "/portal/settings?saved=1", None),
    ("POST", "/portal/settings", {"text_size": "huge", "contrast": "?"}),
    ("GET", "/portal/access-log", None),
    ("GET", "/portal/notebook", None), ("GET", "/portal/notebook?saved=new-shared", None),
    ("GET", "/portal/notebook?conflict=1", None), *(("GET", f"/portal/notebook/new?kind={kind}", None)
                                                    for kind in ("symptom", "side-effect", "question")),
    ("GET", "/portal/notebook/nb-1/edit", None), ("GET", "/portal/notebook/print", None),
    ("POST", "/portal/notebook", {"kind": "symptom", "text": "", "day": "31/31/2019", "severity": "?"}),
    ("POST", "/portal/notebook", {"kind": "side-effect", "text": "Dry mouth", "day": "2020-01-01",
                                  "severity": "mild", "medicine": "?"}),
]


def _main(html: str) -> str:
    return html.split("<main", 1)[1].split("</main>", 1)[0]


def _ours(html: str) -> str:
    """The page's main text without what is marked English (words from parts not translated yet), nor the
    heading of the shared error summary (_forms.html, still on the not-yet-translated list)."""
    main = re.sub(r"<p><strong>Please fix th(is|ese):</strong></p>", " ", _main(html))
    return text_of(re.sub(r'(?s)<(span|td|p)[^>]* lang="en">.*?</\1>', " ", main))


def assert_spanish(name: str, html: str, data: DataMask) -> None:
    assert html.startswith('<!doctype html>\n<html lang="es"'), name
    assert not re.search(r'<main id="main"[^>]* lang="en"', html), f"{name}: marked as not translated yet"
    left = ENGLISH.findall(data(_ours(html)))
    assert not left, f"{name}: English left: {left[:8]} in {_ours(html)[:300]}"
    spanish_only = re.sub(r'(?s)<span lang="en">.*?</span>', " ", html)
    grade = grade_page(name, spanish_only, data, lang="es")
    assert grade.grade <= MAX_GRADE, (name, grade.grade, grade.hardest())


@pytest.fixture(scope="module")
def data() -> DataMask:
    """The record's own words (names, places) and the people named here: not ours to translate."""
    return DataMask(demo_data() | {"Sam Lee", "Dr. Margaret Ellison", "Ana Lopez", "Demo Patient"})


@pytest.fixture
def spanish_site(tmp_path: Path, records: dict) -> Site:
    site = site_for(tmp_path, records, PID, set(), lang="es")
    signed_in = site.visit.portal.visit

    async def in_their_language(request: Request) -> Visit:
        set_locale(session_locale(site.visit.session))  # as the real sign-in check does
        return await signed_in(request)

    site.visit.portal.visit = in_their_language  # type: ignore[method-assign]
    return site


async def test_help_guide_self_check_settings_and_access_log_are_spanish(spanish_site: Site, data: DataMask) -> None:
    async with spanish_site.client:
        pages = {f"{method} {path} {data}": await spanish_site.page(method, path, data)
                 for method, path, data in SLICE_PAGES}
    for name, (status, html) in pages.items():
        assert status in (200, 303, 400, 404, 422), (name, status)
        if status != 303:
            assert_spanish(name, html, data)
    help_index = text_of(pages["GET /portal/help None"][1])
    assert "Elija una página para ver las preguntas que la gente hace sobre ella" in help_index
    assert "Autoevaluación" in help_index and "Guía del portal" in help_index
    topic = text_of(pages["GET /portal/help/billing None"][1])
    assert "Ayuda: Facturas" in topic and "¿Cómo pago una factura?" in topic and "Ir a Facturas" in topic
    guide = text_of(pages["GET /portal/guide None"][1])
    assert "Le damos la bienvenida a su portal del paciente" in guide and "Saltar la guía" in guide
    assert "Aquí puede ver sus resultados" in guide
    answered = text_of(pages["POST /portal/self-check {'notes': 'no', 'results': 'yes', 'visits': 'sometimes'}"][1])
    assert "Usted dijo: Todavía no" in answered and "Usted dijo: A veces" in answered
    assert "Ir a Historial médico" in answered and "Esto ya lo hace" in answered
    refused = text_of(pages["POST /portal/self-check {'forms': 'perhaps'}"][1])
    assert "Elija Sí, A veces o Todavía no para: ¿Lleno los formularios de la clínica antes de una cita?" in refused
    assert "Conteste por lo menos una pregunta." in text_of(pages["POST /portal/self-check {}"][1])
    settings = text_of(pages["POST /portal/settings {'text_size': 'huge', 'contrast': '?'}"][1])
    assert "Elija un tamaño de letra." in settings and "Elija contraste normal o alto." in settings
    assert "Listo. Le vamos a mostrar las páginas así" in text_of(pages["GET /portal/settings?saved=1 None"][1])
    # The access log: its months and times in Spanish; the gateway's own words still English, marked so.
    log = pages["GET /portal/access-log None"][1]
    assert "Quién ha mirado su historial" in text_of(log)
    assert SPANISH_MONTH.search(_main(log)) and re.search(r"<caption>\w+ de \d{4}: \d+ veces</caption>", log)
    assert SPANISH_DATE.search(_main(log)) and re.search(r'<td data-label="Qué hizo">[^<]*<span lang="en">', log)
    assert "No permitido" in text_of(log)


async def test_the_health_notebook_is_spanish(spanish_site: Site, data: DataMask) -> None:
    async with spanish_site.client:
        pages = {f"{method} {path}": await spanish_site.page(method, path, form)
                 for method, path, form in SLICE_PAGES if "notebook" in path}
    for name, (status, html) in pages.items():
        assert status in (200, 422), (name, status)
        assert_spanish(name, html, data)
    notebook = text_of(pages["GET /portal/notebook"][1])
    for words in ("Su cuaderno de salud", "Anotar cómo se siente", "Imprimir su cuaderno para la cita",
                  "Cómo me siento", "Privada: solo usted la puede ver aquí", "Qué tan fuerte: Leve"):
        assert words in notebook, words
    assert SPANISH_DATE.search(_main(pages["GET /portal/notebook"][1])) or "hace " in notebook
    assert "Guardada y compartida con su equipo médico." in text_of(pages["GET /portal/notebook?saved=new-shared"][1])
    form = text_of(pages["GET /portal/notebook/new?kind=side-effect"][1])
    assert "Anotar un efecto de un medicamento" in form and "Leve: me molesta un poco" in form
    refused = text_of(pages["POST /portal/notebook"][1])
    assert "Escriba una fecha real, por ejemplo 05/30/2026." in refused or "Elija el medicamento" in refused
    printout = pages["GET /portal/notebook/print"][1]
    assert re.search(r"<h1>Cuaderno de salud de [\w ]+, impreso el \w+, \d{1,2} de \w+ de \d{4}</h1>", printout)
    assert "Preguntas que hacer" in text_of(printout)


async def test_sign_ins_and_caregivers_pages_are_spanish(spanish_site: Site, data: DataMask) -> None:
    visit, now = spanish_site.visit, NOON.replace(tzinfo=UTC).timestamp()
    visit.session.previous_sign_in = now - 3 * 86400
    sessions = [SessionSummary("s", now - 600, now, describe_device("Mozilla/5.0 (Windows NT 10.0) Chrome/120"),
                               "203.0.113.7", True),
                SessionSummary("t", now - 86400 * 9, now - 3600, describe_device("(iPhone) Safari/604"), None, False)]
    account = visit.render("portal/account.html", sessions=sessions, notice="ended").body.decode()
    assert_spanish("account", account, data)
    text = text_of(account)
    for words in ("Sus sesiones", "Esa sesión ya se cerró.", "Chrome en Windows (este aparato)",
                  "Safari en un iPhone", "Cerrar la sesión aquí", "Cerrar esta sesión", "No se sabe",
                  "Su última entrada al portal: hace 4 días"):
        assert words in text, words
    assert SPANISH_DATE.search(_main(account))
    caregivers = {
        "own": {"records": [PatientLink(PID, "Demo Patient", None), PatientLink("pt-9", "Ana Lopez", "rp-1")],
                "proxies": [ProxyLink("l1", PID, "rp-7", "active", "Sam Lee", "SPS"),
                            ProxyLink("l2", PID, "rp-8", "invited", "Ana Lopez", "CHILD")],
                "own_record": True},
        "theirs": {"records": [PatientLink("pt-9", "Ana Lopez", "rp-1")], "proxies": [], "own_record": False}}
    pages: dict[str, Any] = {name: visit.render("portal/caregivers.html", relationships=RELATIONSHIPS,
                                                signin_csrf="c", **ctx).body.decode()
                             for name, ctx in caregivers.items()}
    for name, html in pages.items():
        assert_spanish(f"caregivers ({name})", html, data)
    assert "Personas que pueden ver su historial" in text_of(pages["own"])
    own = text_of(pages["own"])
    assert "Quitar el acceso a Sam Lee" in own and "Invitado, aún no entra" in own
    assert "Usted ve este historial como cuidador." in text_of(pages["theirs"])


async def test_bills_are_spanish_with_dollars_and_dates_written_the_us_spanish_way(spanish_site: Site,
                                                                                 data: DataMask) -> None:
    resources = spanish_site.visit.fhir.resources
    bill = next(r["id"] for r in resources if r["resourceType"] == "Invoice" and r["status"] == "issued")
    paths = ["/portal/billing", f"/portal/billing/{bill}", f"/portal/billing/{bill}?paid=1",
             f"/portal/billing/{bill}?processing=1", f"/portal/billing/{bill}/pay"]
    async with spanish_site.client:
        pages = {path: await spanish_site.page("GET", path) for path in paths}
        refused = await spanish_site.page("POST", f"/portal/billing/{bill}/pay",
                                          {"amount": "1", "card_name": "", "card_number": "1234",
                                           "card_expiry": "13/20", "card_cvc": "x"})
        pdf = await spanish_site.client.get(f"/portal/billing/{bill}/statement.pdf")
    for path, (status, html) in [*pages.items(), ("refused", refused)]:
        assert status in (200, 422), (path, status)
        assert_spanish(path, html, data)
    listing = text_of(pages["/portal/billing"][1])
    assert "Facturas y pagos" in listing and re.search(r"Usted debe \$\d[\d,]*\.\d\d\.", listing)
    assert re.search(r"Por pagar antes del \d{1,2} de \w+ de \d{4}", listing)
    shown = text_of(pages[f"/portal/billing/{bill}"][1])
    assert "Cómo se calculó su parte" in shown and "Lo que cobró la clínica" in shown and "Su parte" in shown
    assert SPANISH_DATE.search(shown) and re.search(r"Pagar \$\d[\d,]*\.\d\d ahora", shown)
    assert "Gracias. Su pago se hizo." in text_of(pages[f"/portal/billing/{bill}?paid=1"][1])
    said = text_of(refused[1])
    assert "Escriba el nombre que sale en la tarjeta." in said and "Escriba la fecha de vencimiento como" in said
    assert "Ahora no se puede pagar con tarjeta." in said  # no payment service in this test
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_the_profile_and_its_forms_are_spanish(spanish_site: Site, data: DataMask) -> None:
    wrong = {"phone": "12", "email": "not-an-address", "line1": "", "city": "", "state": "ZZ", "postal": "1",
             "ec0_name": "", "ec0_phone": "x", "language": "?", "contact_by": "sms", "substance": "",
             "category": "?", "onset": "31/31/2019", "severity": "?", "member_id": "!", "insurer": "",
             "change": "?", "holder": "?", "version": "1"}
    gets = ["/portal/profile", "/portal/profile?saved=insurance&thread=t-1", "/portal/profile?notices=bad-email",
            "/portal/profile/contact", "/portal/profile/insurance", "/portal/profile/allergies/new"]
    async with spanish_site.client:
        pages = {path: await spanish_site.page("GET", path) for path in gets}
        for path in ("/portal/profile/contact", "/portal/profile/insurance", "/portal/profile/allergies"):
            pages[f"POST {path}"] = await spanish_site.page("POST", path, wrong)
    for path, (status, html) in pages.items():
        assert status in (200, 422), (path, status)
        assert_spanish(path, html, data)
    profile = text_of(pages["/portal/profile"][1])
    for words in ("Su perfil", "Datos de contacto", "Idioma para su atención", "Contactos para emergencias",
                  "Avisarnos de una alergia", "Mensajes y respuestas nuevos de su equipo médico", "(celular)"):
        assert words in profile, words
    assert re.search(r"Desde el \w+, \d{1,2} de \w+ de \d{4}", profile)  # the insurance's start, in Spanish
    assert "Escriba un correo como nombre@example.com, o déjelo en blanco." in text_of(
        pages["/portal/profile?notices=bad-email"][1])
    contact = text_of(pages["POST /portal/profile/contact"][1])
    assert "Escriba un teléfono con su código de área" in contact and "Elija el estado." in contact
    insurance = text_of(pages["POST /portal/profile/insurance"][1])
    assert "Elija lo que quiere hacer." in insurance and "Agregar una tarjeta de seguro nueva" in insurance
    allergy = text_of(pages["POST /portal/profile/allergies"][1])
    assert "Escriba a qué tiene alergia" in allergy and "Una comida" in allergy


def test_a_device_kept_in_english_is_named_in_the_readers_language() -> None:
    kept = describe_device("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) Firefox/121.0")
    assert kept == "Firefox on a Mac"
    assert device_words(kept, "es") == "Firefox en una Mac" and device_words(kept, "en") == kept
    assert device_words(describe_device(None), "es") == "Un navegador"
    assert device_words("Something we did not write", "es") == "Something we did not write"


def test_help_guide_and_self_check_in_spanish_read_at_grade_7_or_below() -> None:
    """Each help topic, each guide and the self-check, in Spanish, one text each (as in English)."""
    with using_locale("es"):
        texts = [(f"ayuda: {t.title}", [f"{a.question} {a.answer}" for a in t.answers]) for t in TOPICS]
        texts.append(("guía (paciente)", [f"{s.title}. {s.says}" for s in PATIENT_STOPS]))
        texts.append(("guía (cuidador)", [f"{s.title}. {s.says}" for s in CAREGIVER_STOPS]))
        texts.append(("autoevaluación", [f"{q.asks} {q.tip}" for q in QUESTIONS]))
    grades = [grade_units(name, units, lang="es") for name, units in texts]
    assert all("¿" in t[1][0] for t in texts[:len(TOPICS)])  # really Spanish, not the English ids
    too_hard = [(g.name, g.grade) for g in grades if g.grade > MAX_GRADE]
    assert not too_hard, too_hard
