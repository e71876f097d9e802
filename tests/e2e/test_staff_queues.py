"""The care team's request queues in a real browser against the real HAPI and Redis: a clinician on the shared
patient's care team approves one refill request and declines another with a reason (by keyboard), and the
patient sees both outcomes on their medicines page; a billing clerk works billing questions and insurance
cards but cannot open the refill queue. Every queue page is held to `check_page`'s bars (axe, keyboard,
375 and 1280 px). What the test makes in the EHR is marked entered-in-error when it ends."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from mappers.coverage import SUBJECT, insurance_request_text
from mappers.inbound import REFILL_IDENTIFIER_SYSTEM
from mappers.messages import TOPICS, outgoing
from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import person_from_cli, portal_auth

from .conftest import SHARED_PATIENT_ID
from .harness import Account, Authenticator, check_page, fill_by_keyboard, path_of, sign_in

pytestmark = pytest.mark.e2e
PT = f"Patient/{SHARED_PATIENT_ID}"
QUEUES = "/portal/staff/queues"


def _member(base: str, role: str) -> str:
    team = httpx.get(f"{base}/CareTeam", params={"subject": PT, "status": "active"}, timeout=60).json()
    return next(p["member"]["reference"].split("/", 1)[1] for e in team["entry"]
                for p in e["resource"]["participant"] if p["member"]["reference"].startswith("Practitioner/")
                and any(c.get("code") == role for r in p.get("role", []) for c in r.get("coding", [])))


def _staff(gateway: GatewayServer, base: str, role: str) -> Account:
    person = person_from_cli(portal_auth(gateway, "staff", "add", "--username", f"e2e-{uuid.uuid4().hex[:8]}",
                                         "--practitioner", _member(base, role)))
    return Account(person.username, person.password, Authenticator(person.totp.secret))


@pytest.fixture
def made(ehr_base_url: str) -> Iterator[list[str]]:
    refs: list[str] = []
    yield refs
    with httpx.Client(base_url=ehr_base_url, timeout=60) as c:
        for ref in refs:
            current = c.get(ref).json()
            if current.get("resourceType") not in (None, "OperationOutcome"):
                c.put(ref, json={**{k: v for k, v in current.items() if k != "meta"}, "status": "entered-in-error"})


def _create(base: str, made: list[str], resource: dict[str, Any]) -> dict[str, Any]:
    stored = httpx.post(f"{base}/{resource['resourceType']}", json=resource, timeout=60).json()
    made.append(f"{stored['resourceType']}/{stored['id']}")
    return stored


def _asked_refill(base: str, made: list[str], medicine: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A prescription of the shared patient's and their refill request for it, as the refill rule writes it."""
    rx = _create(base, made, {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": {"reference": PT},
        "authoredOn": "2026-01-05", "medicationCodeableConcept": {"text": medicine},
        "dosageInstruction": [{"text": "1 tablet a day"}], "dispenseRequest": {"numberOfRepeatsAllowed": 2}})
    request = _create(base, made, {
        "resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
        "identifier": [{"system": REFILL_IDENTIFIER_SYSTEM, "value": rx["id"]}], "subject": {"reference": PT},
        "requester": {"reference": PT}, "authoredOn": "2026-11-30T09:00:00Z",
        "basedOn": [{"reference": f"MedicationRequest/{rx['id']}"}], "medicationCodeableConcept": {"text": medicine},
        "dosageInstruction": [{"text": "1 tablet a day"}], "dispenseRequest": {"numberOfRepeatsAllowed": 2}})
    return rx, request


async def test_refills_approved_and_declined_reach_the_patient(new_context: Any, portal_signed_in: Any,
                                                               gateway: GatewayServer, ehr_base_url: str,
                                                               made: list[str]) -> None:
    tag = uuid.uuid4().hex[:4]
    approve_name, deny_name = f"Zestoretic {tag} 10 MG", f"Quinapril {tag} 20 MG"
    _, to_approve = _asked_refill(ehr_base_url, made, approve_name)
    denied_rx, to_deny = _asked_refill(ehr_base_url, made, deny_name)
    _create(ehr_base_url, made, {**outgoing(
        patient_ref=PT, recipient=TOPICS["billing"][1], submission=uuid.uuid4().hex, topic="billing", subject=SUBJECT,
        text=insurance_request_text({"change": "add", "insurer": "Prairie Mutual", "member_id": f"PM{tag}",
                                     "holder": "self"})), "sender": {"reference": PT}, "sent": "2026-11-30T08:00:00Z"})

    # The clinician: the refill queue, approve one, decline the other by keyboard with a reason.
    page = await (await new_context()).new_page()
    await sign_in(page, _staff(gateway, ehr_base_url, "clinician"), next_path=f"{QUEUES}/refills")
    assert path_of(page) == f"{QUEUES}/refills", page.url
    await expect(page.get_by_role("heading", level=1)).to_have_text("Refill requests")
    await expect(page.locator(f"#item-{to_approve['id']}")).to_contain_text("MRN")
    await check_page(page, "staff-queue-refills")
    name = (await page.locator(f"#item-{to_approve['id']} .queue-patient strong").inner_text()).strip()
    await page.get_by_role("button", name=f"Approve {approve_name} for {name}").click()
    await expect(page.get_by_role("status")).to_contain_text("Refill approved")
    await expect(page.locator(f"#item-{to_approve['id']}")).to_have_count(0)
    reason = re.compile(f"Reason for declining {re.escape(deny_name)}")
    await fill_by_keyboard(page, {reason: "Please book a blood test first."}, f"Decline {deny_name} for {name}")
    await expect(page.get_by_role("status")).to_contain_text("Declined")
    orders = httpx.get(f"{ehr_base_url}/MedicationRequest", timeout=60, params={
        "identifier": f"urn:portal:refill-order|{to_approve['id']}"}).json().get("entry", [])
    made.extend(f"MedicationRequest/{e['resource']['id']}" for e in orders)
    assert len(orders) == 1
    stored = httpx.get(f"{ehr_base_url}/MedicationRequest/{to_deny['id']}", timeout=60).json()
    assert (stored["status"], stored["statusReason"]["text"]) == ("cancelled", "Please book a blood test first.")
    for queue, title in (("referrals", "Referral requests"), ("changes", "Changes to confirm")):
        await page.goto(f"{QUEUES}/{queue}")
        await expect(page.get_by_role("heading", level=1)).to_have_text(title)
        await check_page(page, f"staff-queue-{queue}")

    # The patient reads both outcomes on their medicines page.
    patient = await portal_signed_in()
    await patient.goto("/portal/medications")
    renewed = patient.locator(".prescriptions > li", has_text=approve_name)
    await expect(renewed).to_contain_text("Sent to the pharmacy")
    declined = patient.locator(f"#rx-{denied_rx['id']}")
    await expect(declined).to_contain_text("Declined")
    await expect(declined).to_contain_text("Please book a blood test first.")

    # A billing clerk: billing questions and insurance cards, never the refill queue.
    clerk = await (await new_context()).new_page()
    await sign_in(clerk, _staff(gateway, ehr_base_url, "billing"), next_path=f"{QUEUES}/billing")
    await expect(clerk.get_by_role("heading", level=1)).to_have_text("Billing questions")
    await check_page(clerk, "staff-queue-billing")
    await clerk.goto(f"{QUEUES}/changes")
    await expect(clerk.get_by_role("heading", name="Insurance cards to confirm")).to_be_visible()
    await expect(clerk.get_by_role("heading", name="Allergies patients reported")).to_have_count(0)
    await check_page(clerk, "staff-queue-changes-insurance")
    refused = await clerk.goto(f"{QUEUES}/refills")
    assert refused is not None and refused.status == 403
    await check_page(clerk, "staff-not-your-queue")  # the refusal page says so in words, to the same bars
