"""The portal in Spanish in a real browser, as a patient whose record prefers Spanish: the portal opens in
Spanish, the language switch is used by keyboard (to English and back), and the main pages in both
languages clear the same bars as every page (axe 0 serious, keyboard, 375 and 1280 px); after sign-out the
pages stay in the person's language, and the sign-in page has its own switch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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


async def _wholly_spanish(page: Page, path: str, heading: str | None, name: str) -> None:
    """`path` in Spanish (its heading, when given), nothing of it marked as still English, every bar cleared."""
    await page.goto(path)
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    if heading:
        await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    await expect(page.locator("main")).not_to_have_attribute("lang", "en")
    await check_page(page, name)


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
    for path, name in (("/portal/", "portal-home-es-chosen"), ("/portal/billing", "portal-billing-es")):
        await page.goto(path)
        await expect(page.locator("html")).to_have_attribute("lang", "es")
        await check_page(page, name)
    # The bills page (the last portal page translated) is Spanish too: nothing says it is only in English.
    await expect(page.locator("main")).not_to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Facturas y pagos")

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


async def test_the_health_record_slice_in_spanish(spanish_signed_in: Callable[[], Awaitable[Page]]) -> None:
    """The health record, test results (charts and explanations), downloads and the printable summary, read by
    a patient whose record prefers Spanish: each page wholly Spanish, and every bar cleared."""
    page = await spanish_signed_in()
    for path, heading, name in (("/portal/record", "Historial médico", "portal-record-es"),
                                ("/portal/results", "Resultados", "portal-results-es"),
                                ("/portal/download", "Descargar su historial", "portal-download-es"),
                                ("/portal/download/summary", "Resumen de salud", "portal-summary-es")):
        await _wholly_spanish(page, path, heading, name)
        # Nothing inside is marked as still English either, but for the English sources of test explanations.
        assert await page.locator('main [lang="en"]:not(a [lang="en"])').count() == 0, path
    await page.goto("/portal/results")
    await expect(page.locator(".trend__summary").first).to_contain_text("Su ")
    await expect(page.locator("svg.trend-chart").first).to_contain_text("Fecha del análisis")


async def test_slice_accounts_enrolment_security_caregivers_consent_in_spanish(
        new_context, app: PortalApp, patients: PatientPool) -> None:  # new_context: conftest's context factory
    """The sign-in side in Spanish, for a Spanish-speaking patient whose browser asks for Spanish: enrolment from
    the invitation link to the recovery codes, the sign-in settings, caregiver access, an app's consent page and
    its refusal page, and the password reset. Each page is in Spanish and clears every bar of `check_page`."""
    from .harness import Authenticator, DemoPatient, follow_link, new_password, new_username, submit
    from .test_accounts_pages import register_app, start_app_authorization

    def free_spanish_speaker() -> DemoPatient:
        for patient_id in spanish_speakers()[1:-1]:  # the first is the switch test's, the last the shared one
            try:
                return patients.take(patient_id=patient_id)
            except RuntimeError:
                continue
        raise AssertionError("no Spanish-speaking demo patient is left for this test")

    patient = free_spanish_speaker()
    page = await (await new_context(locale="es-US")).new_page()
    await page.goto((await app.invite(patient.patient_id)).url)
    await _in(page, "es", "Confirme quién es usted")
    await check_page(page, "es-enrol-identity")
    await submit(page, {"Fecha de nacimiento": patient.birth_date,
                        "Número de historial médico (MRN)": patient.mrn}, "Continuar")
    await _in(page, "es", "Elija su nombre de usuario y su contraseña")
    await check_page(page, "es-enrol-account")
    username, password = new_username("es"), new_password()
    await submit(page, {"Nombre de usuario": username, "Contraseña": password,
                        "Escriba la contraseña otra vez": password}, "Continuar")
    await _in(page, "es", "Ponga un segundo paso para entrar")
    await check_page(page, "es-enrol-second-step")
    await follow_link(page, "Poner una aplicación de autenticación")
    await _in(page, "es", "Prepare su aplicación de autenticación")
    await check_page(page, "es-enrol-authenticator")
    authenticator = Authenticator("".join((await page.locator("#totp-secret").inner_text()).split()))
    await submit(page, {"Escriba el código de 6 números que le muestra la aplicación": await authenticator.code()},
                 "Confirmar")
    await _in(page, "es", "Su cuenta está lista")
    await check_page(page, "es-enrol-done")

    # Signed in, the sign-in settings: the date the password was set is written the Spanish way.
    await page.goto("/auth/login?next=/auth/account/security")
    await submit(page, {"Nombre de usuario": username, "Contraseña": password}, "Continuar")
    await submit(page, {"Código": await authenticator.code()}, "Iniciar sesión")
    await _in(page, "es", "Contraseña e inicio de sesión")
    await expect(page.locator("main")).to_contain_text("Puso su contraseña por última vez el ")
    await expect(page.locator("main")).to_contain_text(" de 20")
    await check_page(page, "es-security")
    await page.goto("/auth/account/password")
    await _in(page, "es", "Cambiar su contraseña")
    await submit(page, {}, "Cambiar la contraseña")
    await expect(page.get_by_role("alert").first).to_contain_text("Corrija esto:")
    await check_page(page, "es-security-password-errors")
    for path, heading, name in (("/auth/account/authenticator", "Poner una aplicación de autenticación nueva",
                                 "es-security-authenticator"),
                                ("/auth/account/recovery-codes", "Obtener códigos de recuperación nuevos",
                                 "es-security-recovery")):
        await page.goto(path)
        await _in(page, "es", heading)
        await check_page(page, name)

    # Caregiver access: nobody yet, then an invitation sent.
    await page.goto("/auth/proxies")
    await _in(page, "es", "Acceso de cuidadores")
    await expect(page.locator("main")).to_contain_text("Nadie más puede ver su historial.")
    await check_page(page, "es-caregivers")
    await submit(page, {"Nombre del cuidador": "Rosa Díaz", "Correo del cuidador": f"rosa-{username}@example.org",
                        "¿Qué relación tiene con usted?": "Hermano o hermana"}, "Mandar la invitación")
    await expect(page.get_by_role("status")).to_have_text("Mandamos la invitación.")
    await expect(page.get_by_role("row", name="Rosa Díaz")).to_contain_text("Invitado, aún no entra")
    await check_page(page, "es-caregivers-invited")

    # An app asks for access: the consent page, and the page for an app the portal does not know.
    client_id = await register_app(app, "Diario de Salud", "http://127.0.0.1:9/callback")
    await start_app_authorization(page, app, client_id, "http://127.0.0.1:9/callback",
                                  "openid fhirUser patient/Observation.rs patient/MedicationRequest.rs")
    await expect(page.get_by_role("heading", level=1)).to_have_text("¿Permite que Diario de Salud use su información?")
    await expect(page.locator("main")).to_contain_text("Ver sus resultados y medidas")
    await check_page(page, "es-app-consent")
    await page.goto("/auth/authorize?client_id=no-such-app")
    await _in(page, "es", "Aplicación desconocida")
    await check_page(page, "es-app-error")

    # Signed out, in another browser asking for Spanish: the letter's code page and the password reset.
    page = await (await new_context(locale="es-US")).new_page()
    await page.goto("/auth/enroll")
    await _in(page, "es", "Escriba su código de invitación")
    await check_page(page, "es-enrol-code")
    await page.goto("/auth/reset")
    await _in(page, "es", "Ponga una contraseña nueva")
    await check_page(page, "es-reset-start")
    await submit(page, {"Nombre de usuario": username}, "Continuar")
    await _in(page, "es", "Confirme que es usted")
    await check_page(page, "es-reset-verify")
    await submit(page, {"Código": await authenticator.code()}, "Continuar")
    await _in(page, "es", "Elija una contraseña nueva")
    await check_page(page, "es-reset-password")


async def test_the_messages_visits_medicines_referrals_forms_and_to_do_in_spanish(
        spanish_signed_in: Callable[[], Awaitable[Page]]) -> None:
    """A Spanish speaker's messages, visits (and booking one), medicines, referrals, forms and to-do list:
    each page in Spanish clears every bar at 375 and 1280 px."""
    page = await spanish_signed_in()
    await page.goto("/portal/")
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
        await _wholly_spanish(page, path, heading, name)
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


async def test_self_service_pages_in_spanish(spanish_signed_in: Callable[[], Awaitable[Page]]) -> None:
    """Bills, profile, caregivers, the guide, help and self-check, the health notebook, display settings and
    who looked, as a Spanish-speaking patient reads them: all in Spanish, and each clears every bar."""
    page = await spanish_signed_in()
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
        await _wholly_spanish(page, path, heading,
                              "self-es-" + path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-"))
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
