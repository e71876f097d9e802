"""Medicines and referrals in a real browser against the real HAPI and Redis: a refill request to a
pharmacy (checked in HAPI) and its status, another patient's prescription id
posted to the refill form (refused, nothing written), a renewal asked as a message, and a referral
request with its field-level problems; every new page held to `check_page`'s bars."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from mappers.medications import medication
from tests.integration.gateway.helpers import ehr_search

from .harness import PatientPool, PortalApp, check_page, enrol_patient, fill_by_keyboard, path_of, sign_in
from .test_portal_pages import RAW, _codes

pytestmark = pytest.mark.e2e
PATIENT = "pt-0022"  # one prescription with refills left, one with none
OTHER = "pt-0024"


def _prescriptions(base: str, patient_id: str) -> list[tuple[dict[str, Any], int | None]]:
    active = ehr_search(base, "MedicationRequest", {"patient": f"Patient/{patient_id}", "status": "active",
                                                 "intent": "order"})
    fills = ehr_search(base, "MedicationDispense", {"patient": f"Patient/{patient_id}"})
    return [(rx, medication(rx, dispenses=fills).refills_left) for rx in active]


def _requests(base: str, rx_id: str) -> list[dict[str, Any]]:
    return ehr_search(base, "MedicationRequest", {"identifier": f"urn:portal:refill-request|{rx_id}"})


def _care_team_sets(base: str, resource: dict[str, Any], **changes: Any) -> None:
    body = {k: v for k, v in resource.items() if k != "meta"} | changes
    httpx.put(f"{base}/MedicationRequest/{resource['id']}", json=body, timeout=60).raise_for_status()


async def test_refill_renewal_and_a_refused_prescription_id(new_context: Any, app: PortalApp, patients: PatientPool,
                                                            ehr_base_url: str) -> None:
    mine = _prescriptions(ehr_base_url, PATIENT)
    refillable = next(rx for rx, left in mine if left)
    exhausted = next(rx for rx, left in mine if left == 0)
    for earlier in _requests(ehr_base_url, refillable["id"]):  # left open by an earlier run
        if earlier["status"] in ("draft", "active", "on-hold"):
            _care_team_sets(ehr_base_url, earlier, status="cancelled")
    theirs = _prescriptions(ehr_base_url, OTHER)[0][0]
    account = await enrol_patient(await (await new_context()).new_page(), app, patients.take(patient_id=PATIENT))
    page = await (await new_context()).new_page()
    await sign_in(page, account, next_path="/portal/medications")
    assert path_of(page) == "/portal/medications", page.url
    name = refillable["medicationCodeableConcept"]["text"]
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your medicines")
    await check_page(page, "portal-medications")
    shown = await page.locator("main").inner_text()  # words, not FHIR: no JSON, references or drug codes
    assert not RAW.search(shown) and not [c for rx, _ in mine for c in _codes(rx) if c in shown]

    # Ask for a refill, by keyboard, with a note; the last pharmacy used is already chosen.
    await page.get_by_role("link", name=f"Request a refill of {name}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Ask for a refill of {name}")
    await check_page(page, "portal-medication-refill")
    chosen = await page.locator("input[name=pharmacy]:checked").get_attribute("value")
    note = f"Out on Friday {secrets.token_hex(3)}"
    await fill_by_keyboard(page, {"A note for your care team (optional)": note}, "Send refill request")
    assert path_of(page) == "/portal/medications", page.url
    await expect(page.get_by_role("status")).to_contain_text("Your refill request was sent")
    card = page.locator(f"#rx-{refillable['id']}")
    await expect(card).to_contain_text("Sent")
    stored = [r for r in _requests(ehr_base_url, refillable["id"]) if r["status"] == "draft"]
    assert len(stored) == 1 and stored[0]["note"][0]["text"] == note
    assert stored[0]["dispenseRequest"]["performer"]["reference"] == chosen
    assert (stored[0]["intent"], stored[0]["subject"]["reference"]) == ("proposal", f"Patient/{PATIENT}")

    # Another patient's prescription id posted to the refill form: refused, nothing written.
    before = len(_requests(ehr_base_url, theirs["id"]))
    csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = await page.request.post(f"/portal/medications/{theirs['id']}/refill", form={
        "csrf_token": csrf or "", "submission": secrets.token_urlsafe(18), "pharmacy": chosen or "", "note": "x"})
    assert refused.status == 404 and "could not find" in await refused.text()
    assert len(_requests(ehr_base_url, theirs["id"])) == before

    # While the care team has it, the medicine offers no second request (how the status reads as they
    # move it along is checked against HAPI by the integration tests).
    await expect(card.get_by_role("link", name=f"Request a refill of {name}")).to_have_count(0)

    # No refills left: a renewal, asked as a message to the care team.
    other_name = exhausted["medicationCodeableConcept"]["text"]
    await page.get_by_role("link", name=f"Ask for a renewal of {other_name}").click()
    await check_page(page, "portal-medication-renewal")
    await fill_by_keyboard(page, {"Anything else your care team should know? (optional)": note},
                           "Send renewal request")
    assert re.fullmatch(r"/portal/messages/[A-Za-z0-9.-]+", path_of(page)), page.url
    message_id = path_of(page).rsplit("/", 1)[1]
    message = httpx.get(f"{ehr_base_url}/Communication/{message_id}", timeout=60).json()
    assert message["topic"]["text"] == f"Renewal of {other_name}" and note in message["payload"][0]["contentString"]
    assert message["subject"]["reference"] == f"Patient/{PATIENT}"


async def test_referral_request(new_context: Any, enrolled: Any, ehr_base_url: str) -> None:
    account = await enrolled()
    page = await (await new_context()).new_page()
    await sign_in(page, account, next_path="/portal/referrals")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Referrals")
    await check_page(page, "portal-referrals")
    await page.get_by_role("link", name="Ask for a referral").click()
    await check_page(page, "portal-referral-new")
    await page.get_by_role("button", name="Send referral request").click()  # nothing chosen: field messages
    await expect(page.get_by_role("alert")).to_contain_text("Choose the kind of specialist")
    await expect(page.locator("#reason-error")).to_contain_text("why you would like to see a specialist")
    reason = f"A mole that changed {secrets.token_hex(3)}"
    skin = re.compile(r"^Skin \(dermatology\)")
    await fill_by_keyboard(page, {skin: "on", "Why would you like to see them?": reason}, "Send referral request")
    assert path_of(page) == "/portal/referrals", page.url
    await expect(page.get_by_role("status")).to_contain_text("Your referral request was sent")
    await expect(page.locator("main")).to_contain_text(reason)
    patient_id = account.patient.patient_id if account.patient else ""
    stored = [sr for sr in ehr_search(ehr_base_url, "ServiceRequest", {"patient": f"Patient/{patient_id}",
                                                                    "intent": "proposal"})
              if sr.get("reasonCode") == [{"text": reason}]]
    assert len(stored) == 1 and stored[0]["status"] == "active"
    assert stored[0]["performerType"]["coding"][0]["code"] == "394582007"
