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


async def test_slice_b_messages_visits_medicines_referrals_forms_and_to_do_in_spanish(
        context: BrowserContext, app: PortalApp, patients: PatientPool) -> None:
    """A Spanish speaker's messages, visits (and booking one), medicines, referrals, forms and to-do list:
    each page in Spanish clears every bar at 375 and 1280 px."""
    page = await context.new_page()
    account = await enrol_patient(page, app, patients.take(patient_id=spanish_speakers()[-1]))
    await sign_in(page, account)
    await _in(page, "es", "Le damos la bienvenida")
    for path, heading, name in (
            ("/portal/todo", "Pendientes", "portal-todo-es"),
            ("/portal/messages", "Mensajes", "portal-messages-es"),
            ("/portal/messages/new", "Escribir un mensaje", "portal-message-new-es"),
            ("/portal/appointments", "Citas", "portal-appointments-es"),
            ("/portal/appointments/book", "Pedir una cita", "portal-appointment-book-es"),
            ("/portal/medications", "Sus medicamentos", "portal-medications-es"),
            ("/portal/referrals", "Referidos", "portal-referrals-es"),
            ("/portal/referrals/new", "Pedir un referido", "portal-referral-new-es"),
            ("/portal/forms", "Formularios", "portal-forms-es")):
        await page.goto(path)
        await _in(page, "es", heading)
        # Translated: no "only in English" line, and <main> is not marked English.
        await expect(page.locator("main")).not_to_have_attribute("lang", "en")
        await check_page(page, name)
    # One visit and one form, opened from their lists.
    await page.goto("/portal/appointments")
    await page.locator("main a[href^='/portal/appointments/']:not([href*='book'])").first.click()
    await expect(page.get_by_role("term").first).to_have_text("Cuándo")
    await check_page(page, "portal-appointment-es")
    await page.goto("/portal/forms")
    forms = page.locator("main a[href^='/portal/forms/']")
    if await forms.count():
        await forms.first.click()
        await expect(page.get_by_role("link", name="Volver a sus formularios")).to_be_visible()
        await check_page(page, "portal-form-es")
