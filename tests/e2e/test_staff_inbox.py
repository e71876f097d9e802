"""The care team's side in a real browser: a patient writes to the care team, a nurse on their care team
signs in to the staff area (password + authenticator), finds the message in the inbox, replies by keyboard,
and the patient reads the reply in their conversation. Every staff page on the way is held to the bars
(axe, keyboard, 375 and 1280 px), and so is the break-the-glass page a nurse meets outside their care team."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from playwright.async_api import BrowserContext

from notifications.catchall import body_of
from tests.conftest import GatewayServer, MailServer
from tests.integration.gateway.helpers import ehr_search
from tests.integration.staff.helpers import care_team_member, staff_account

from .harness import Account, Authenticator, check_page, path_of, sign_in, submit

ContextFactory = Callable[..., Awaitable[BrowserContext]]


async def test_a_nurse_replies_from_the_inbox_and_the_patient_reads_it(
        context: BrowserContext, new_context: ContextFactory, enrolled: Callable[..., Awaitable[Account]],
        gateway: GatewayServer, ehr_base_url: str, mail_server: MailServer) -> None:
    patient = await enrolled()
    assert patient.patient is not None
    pid = patient.patient.patient_id
    words = uuid.uuid4().hex[:8]
    page = await context.new_page()
    # The patient gives an address for notices first (an invitation without one leaves it empty).
    address = f"e2e-{uuid.uuid4().hex[:8]}@example.org"
    await sign_in(page, patient, next_path="/portal/profile")
    await submit(page, {"E-mail address for notices": address}, "Save e-mail notices")
    await page.goto("/portal/messages/new")
    await page.select_option("#to", value="Organization/org-team-care")
    await submit(page, {"Medication question": "on", "Subject": f"Side effects {words}",
                        "Your message": f"I feel dizzy after the new tablets ({words})."}, "Send message")
    thread = path_of(page).rsplit("/", 1)[1]

    nurse_id = care_team_member(ehr_base_url, pid, "nurse")
    person = staff_account(gateway, nurse_id)
    nurse = Account(person.username, person.password, Authenticator(person.totp.secret))
    staff = await (await new_context()).new_page()
    await sign_in(staff, nurse, next_path="/portal/staff/")
    assert path_of(staff) == "/portal/staff/"
    await check_page(staff, "staff-home")
    await staff.get_by_role("link", name="Inbox", exact=True).first.click()
    await staff.wait_for_url("**/portal/staff/inbox")
    await check_page(staff, "staff-inbox")
    await staff.get_by_role("link", name=f"Side effects {words}").click()
    await staff.wait_for_url(f"**/portal/staff/inbox/{thread}")
    await check_page(staff, "staff-thread")
    answer = f"Please sit down when it happens and call us today ({words})."
    await submit(staff, {re.compile("^Your reply to "): answer}, "Send reply", by_keyboard=True)
    assert "Your reply was sent" in await staff.inner_text("main")
    await staff.goto(f"/portal/staff/patients/{pid}")
    await check_page(staff, "staff-chart")
    family = ehr_search(ehr_base_url, "Patient", {"_id": pid})[0]["name"][0]["family"]
    await staff.goto(f"/portal/staff/patients?q={family}")
    assert pid in await staff.inner_html("main")  # the chart link of the patient found by name
    await check_page(staff, "staff-find-patient")
    stranger = next(t["subject"]["reference"].split("/")[1]
                    for t in ehr_search(ehr_base_url, "CareTeam", {"status": "active"})
                    if f"Practitioner/{nurse_id}" not in {p["member"]["reference"] for p in t["participant"]})
    response = await staff.goto(f"/portal/staff/patients/{stranger}")
    assert response is not None and response.status == 403
    await check_page(staff, "staff-break-glass")

    # The patient is told by e-mail (the real SMTP catch-all): a link to the conversation, not the words.
    [mail] = mail_server.wait_for(address)
    assert f"/portal/messages/{thread}" in body_of(mail) and answer not in body_of(mail) and words not in str(mail)
    await page.goto(f"/portal/messages/{thread}")
    assert answer in await page.inner_text("main")
