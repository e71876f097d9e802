"""The portal in Spanish in a real browser, as a patient whose record prefers Spanish: the portal opens in
Spanish, the language switch is used by keyboard (to English and back), and the main pages in both
languages clear the same bars as every page (axe 0 serious, keyboard, 375 and 1280 px); after sign-out the
pages stay in the person's language, and the sign-in page has its own switch."""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, Page, expect

from .harness import (
    PatientPool,
    PortalApp,
    check_page,
    enrol_patient,
    path_of,
    press_by_keyboard,
    sign_in,
    spanish_speakers,
)

pytestmark = pytest.mark.e2e


async def _in(page: Page, lang: str, heading: str) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await expect(page.get_by_role("heading", level=1)).to_have_text(heading)


async def test_a_spanish_speaker_reads_the_portal_in_spanish_and_switches_by_keyboard(
        context: BrowserContext, app: PortalApp, patients: PatientPool) -> None:
    page = await context.new_page()
    account = await enrol_patient(page, app, patients.take(patient_id=spanish_speakers()[0]))
    await sign_in(page, account)
    assert path_of(page) == "/portal/"
    # The record says Spanish: the portal opens in Spanish, with nothing of the layout left in English.
    await _in(page, "es", "Le damos la bienvenida")
    await expect(page.get_by_role("navigation", name="Portal")).to_contain_text("Cerrar sesión")
    await expect(page.get_by_role("link", name="Ir al contenido principal")).to_be_attached()
    await check_page(page, "portal-home-es")

    # To English by keyboard: the same page, at once, and its switch now offers Spanish named in Spanish.
    await press_by_keyboard(page, page.get_by_role("button", name="Idioma: English"))
    assert path_of(page) == "/portal/"
    await _in(page, "en", "Welcome")
    switch = page.get_by_role("button", name="Language: Español")
    await expect(switch.locator('[lang="es"]')).to_have_text("Español")
    await check_page(page, "portal-home-en")

    # And back to Spanish by keyboard, from another page: the main pages in Spanish clear every bar.
    await page.goto("/portal/menu")
    await press_by_keyboard(page, page.get_by_role("button", name="Language: Español"))
    assert path_of(page) == "/portal/menu"
    await _in(page, "es", "Todas las páginas")
    await check_page(page, "portal-menu-es")
    for path, name in (("/portal/", "portal-home-es-chosen"), ("/portal/results", "portal-results-es")):
        await page.goto(path)
        await expect(page.locator("html")).to_have_attribute("lang", "es")
        await check_page(page, name)
    # A page not translated yet says so in Spanish, and is marked English for screen readers.
    await expect(page.locator("main")).to_have_attribute("lang", "en")
    await expect(page.locator('main [lang="es"]')).to_have_text("Por ahora, esta página solo está en inglés.")

    # Signing out: the goodbye page and the sign-in page stay in Spanish (this browser remembers it).
    await press_by_keyboard(page, page.get_by_role("navigation", name="Portal").get_by_role(
        "button", name="Cerrar sesión"))
    await _in(page, "es", "Cerró su sesión")
    await check_page(page, "portal-signed-out-es")
    await page.goto("/auth/login")
    await _in(page, "es", "Iniciar sesión")
    await check_page(page, "sign-in-es")
    await press_by_keyboard(page, page.get_by_role("link", name="Idioma: English"))
    assert path_of(page) == "/auth/login"
    await _in(page, "en", "Sign in")

    # The Spanish chosen with the switch is the account's: a new sign-in opens in it; switched back to English.
    await sign_in(page, account)
    await _in(page, "es", "Hola de nuevo")
    await press_by_keyboard(page, page.get_by_role("button", name="Idioma: English"))
    await _in(page, "en", "Welcome back")


async def test_self_service_pages_in_spanish(context: BrowserContext, app: PortalApp, patients: PatientPool) -> None:
    """Bills, profile, caregivers, the guide, help and self-check, the health notebook, display settings and
    who looked, as a Spanish-speaking patient reads them: all in Spanish, and each clears every bar."""
    page = await context.new_page()
    account = await enrol_patient(page, app, patients.take(patient_id=spanish_speakers()[1]))
    await sign_in(page, account)
    pages = (("/portal/guide", "Le damos la bienvenida a su portal del paciente"), ("/portal/help", "Ayuda"),
             ("/portal/help/notebook", "Ayuda: Cuaderno de salud"),
             ("/portal/self-check", "Autoevaluación: ¿cómo uso mi portal?"),
             ("/portal/settings", "Opciones de pantalla"), ("/portal/caregivers", "Cuidadores"),
             ("/portal/account", "Sus sesiones"), ("/portal/access-log", "Quién ha mirado su historial"),
             ("/portal/notebook", "Su cuaderno de salud"),
             ("/portal/notebook/new?kind=side-effect", "Anotar un efecto de un medicamento"),
             ("/portal/notebook/print", None), ("/portal/billing", "Facturas y pagos"),
             ("/portal/profile", "Su perfil"), ("/portal/profile/contact", "Cambiar sus datos de contacto"),
             ("/portal/profile/insurance", "Agregar o cambiar el seguro"),
             ("/portal/profile/allergies/new", "Avisarnos de una alergia"))
    for path, heading in pages:
        await page.goto(path)
        await expect(page.locator("html")).to_have_attribute("lang", "es")
        await expect(page.locator("main")).not_to_have_attribute("lang", "en")
        if heading:
            await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        await check_page(page, "self-es-" + (path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-")))
    # A bill, in Spanish, with its amounts in dollars.
    await page.goto("/portal/billing")
    await page.locator("main table a").first.click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Factura ")
    await expect(page.locator("main")).to_contain_text("Cómo se calculó su parte")
    await check_page(page, "self-es-billing-statement")
    # The self-check answered: where to go, in Spanish.
    await page.goto("/portal/self-check")
    await page.locator("#notes-no").check()
    await page.get_by_role("button", name="Decirme adónde ir").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Su autoevaluación")
    await expect(page.locator("main")).to_contain_text("Usted dijo: Todavía no")
    await check_page(page, "self-es-self-check-result")
