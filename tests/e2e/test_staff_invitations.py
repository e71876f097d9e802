"""Portal invitations as the front desk and the patient do them: a front-desk member of the patient's care team
invites by e-mail from the invitations page, the patient enrols from the e-mailed link, and the page then
shows them enrolled; a printed letter's code is shown for printing; the invitations, letter and figures pages
are held to the bars (axe, keyboard, 375 and 1280 px)."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Page

from tests.conftest import GatewayServer, MailServer
from tests.integration.staff.helpers import care_team_member, staff_account

from .conftest import ContextFactory
from .harness import (
    Account,
    Authenticator,
    PatientPool,
    PortalApp,
    check_page,
    enrol,
    patient_identity,
    sign_in,
    submit,
)


async def _front_desk_signed_in(page: Page, gateway: GatewayServer, ehr_base_url: str, patient_id: str) -> None:
    person = staff_account(gateway, care_team_member(ehr_base_url, patient_id, "front-desk"))
    account = Account(person.username, person.password, Authenticator(person.totp.secret))
    await sign_in(page, account, next_path="/portal/staff/")
    assert "/portal/staff/" in page.url, page.url


async def test_an_emailed_invitation_leads_to_a_finished_enrolment(
        page: Page, new_context: ContextFactory, app: PortalApp, gateway: GatewayServer, ehr_base_url: str,
        patients: PatientPool, mail_server: MailServer) -> None:
    patient = patients.take()
    address = f"e2e-{uuid.uuid4().hex[:8]}@example.org"
    await _front_desk_signed_in(page, gateway, ehr_base_url, patient.patient_id)

    await page.goto(f"/portal/staff/invitations?patient={patient.patient_id}")
    await check_page(page, "staff-invitations-patient")
    await submit(page, {"E-mail with a one-time link": "on", re.compile("e-mail address"): address},
                 "Send the invitation", by_keyboard=True)
    assert "The invitation e-mail is on its way" in await page.inner_text("main")

    patient_page = await (await new_context()).new_page()
    link = mail_server.link_to(address, "/auth/enroll?code=")  # through the notices outbox and real SMTP
    account = await enrol(patient_page, app, link, patient_identity(patient))
    assert account.recovery_codes  # the enrolment finished

    await page.reload()
    assert "Enrolled" in await page.locator("table").first.inner_text()

    await submit(page, {"Printed letter with a code (for patients without e-mail)": "on"}, "Send the invitation")
    code = await page.locator(".letter-code").inner_text()
    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", code)
    await check_page(page, "staff-invitation-letter")

    await page.goto("/portal/staff/invitations")
    await check_page(page, "staff-invitations")
    await page.goto("/portal/staff/metrics")
    assert "Patients invited" in await page.inner_text("main")
    await check_page(page, "staff-metrics")
