"""Refill requests (to a pharmacy, only with a refill left) and referral requests (ServiceRequest with
intent=proposal) through the gateway into the real EHR: what is stored, that a retry stores nothing
new, and that every refusal leaves the EHR as it was."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mappers.medications import medication
from tests.conftest import GatewayServer

from .helpers import auth, ehr_search, mint

pytestmark = pytest.mark.integration

OWNER = "pt-0014"  # prescriptions with refills left
EXHAUSTED = "pt-0020"  # a prescription with no refills left
OTHER = "pt-0024"
SCOPES = "launch/patient patient/*.cruds"
CARDIOLOGY = {"system": "http://snomed.info/sct", "code": "394579002", "display": "Cardiology"}


def prescriptions(base: str, patient: str) -> list[tuple[dict[str, Any], int | None]]:
    """The patient's active prescriptions with their refills left, counted from the EHR's fills."""
    active = ehr_search(base, "MedicationRequest", {"patient": f"Patient/{patient}", "status": "active",
                                                    "intent": "order"})
    fills = ehr_search(base, "MedicationDispense", {"patient": f"Patient/{patient}"})
    return [(rx, medication(rx, dispenses=fills).refills_left) for rx in active]


def organization(base: str, text: str) -> str:
    found = ehr_search(base, "Organization", {"type:text": text})
    assert found, f"fixtures should hold a {text} organization"
    return f"Organization/{found[0]['id']}"


def refill(patient: str, prescription_id: str, pharmacy: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
                            "subject": {"reference": f"Patient/{patient}"},
                            "basedOn": [{"reference": f"MedicationRequest/{prescription_id}"}],
                            "medicationCodeableConcept": {"text": "refill"}, "note": [{"text": "Out on Friday"}]}
    if pharmacy:
        body["dispenseRequest"] = {"performer": {"reference": pharmacy}}
    return body


def requests_for(base: str, prescription_id: str) -> list[dict[str, Any]]:
    return ehr_search(base, "MedicationRequest", {"identifier": f"urn:portal:refill-request|{prescription_id}"})


def decline(base: str, request: dict[str, Any]) -> None:
    """What the care team does with a request it will not approve (so the next run can ask afresh)."""
    body = {k: v for k, v in request.items() if k != "meta"}
    body.update(status="cancelled", statusReason={"text": "Please book a visit first"})
    httpx.put(f"{base}/MedicationRequest/{request['id']}", json=body, timeout=60).raise_for_status()


async def test_refill_to_a_pharmacy_is_stored_once(gateway: GatewayServer, ehr_base_url: str) -> None:
    rx = next(r for r, left in prescriptions(ehr_base_url, OWNER) if left)
    for earlier in requests_for(ehr_base_url, rx["id"]):
        if earlier["status"] in ("draft", "active", "on-hold"):
            decline(ehr_base_url, earlier)  # left open by an interrupted run
    pharmacy = organization(ehr_base_url, "Pharmacy")
    token = mint(gateway, SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        first = await c.post("/MedicationRequest", json=refill(OWNER, rx["id"], pharmacy))
        again = await c.post("/MedicationRequest", json=refill(OWNER, rx["id"], pharmacy))
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]  # still open: found, not added
    stored = httpx.get(f"{ehr_base_url}/MedicationRequest/{first.json()['id']}", timeout=60).json()
    assert (stored["status"], stored["intent"]) == ("draft", "proposal")
    assert stored["subject"]["reference"] == f"Patient/{OWNER}"
    assert stored["basedOn"] == [{"reference": f"MedicationRequest/{rx['id']}"}]
    assert stored["dispenseRequest"]["performer"]["reference"] == pharmacy
    assert stored["medicationCodeableConcept"] == rx["medicationCodeableConcept"]
    assert stored["note"][0]["text"] == "Out on Friday"
    assert len([r for r in requests_for(ehr_base_url, rx["id"]) if r["status"] == "draft"]) == 1
    decline(ehr_base_url, stored)


async def test_refill_refusals_write_nothing(gateway: GatewayServer, ehr_base_url: str) -> None:
    exhausted = next(r for r, left in prescriptions(ehr_base_url, EXHAUSTED) if left == 0)
    refillable = next(r for r, left in prescriptions(ehr_base_url, OWNER) if left)
    theirs = prescriptions(ehr_base_url, OTHER)[0][0]
    pharmacy, lab = organization(ehr_base_url, "Pharmacy"), "Organization/org-lab"
    cases = [(EXHAUSTED, exhausted["id"], pharmacy, 422, "renew"),  # no refills left: ask for a renewal instead
             (OWNER, theirs["id"], pharmacy, 404, "not known"),  # another patient's prescription
             (OWNER, refillable["id"], lab, 422, "pharmacy"),  # not a pharmacy
             (OWNER, refillable["id"], "Organization/no-such-org", 422, "pharmacy")]
    before = {rid: len(requests_for(ehr_base_url, rid)) for _, rid, *_ in cases}
    for patient, rid, where, status, words in cases:
        token = mint(gateway, SCOPES, patient=patient)
        async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
            r = await c.post("/MedicationRequest", json=refill(patient, rid, where))
        assert r.status_code == status, (rid, where, r.text)
        assert words in r.json()["issue"][0]["diagnostics"]
    assert {rid: len(requests_for(ehr_base_url, rid)) for _, rid, *_ in cases} == before


def referral(patient: str, submission: str, **overrides: Any) -> dict[str, Any]:
    body = {"resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
            "identifier": [{"system": "urn:portal:referral-request", "value": submission}],
            "subject": {"reference": f"Patient/{patient}"}, "performerType": {"coding": [CARDIOLOGY]},
            "performer": [{"reference": "Organization/org-spec-cardiology"}],
            "reasonCode": [{"text": "Racing heart on the stairs"}]}
    body.update(overrides)
    return body


async def test_referral_request_is_stored_once(gateway: GatewayServer, ehr_base_url: str) -> None:
    submission = uuid.uuid4().hex
    token = mint(gateway, SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        first = await c.post("/ServiceRequest", json=referral(OWNER, submission))
        again = await c.post("/ServiceRequest", json=referral(OWNER, submission))
        listed = await c.get("/ServiceRequest", params={"intent": "proposal", "_sort": "-_lastUpdated"})
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    stored = ehr_search(ehr_base_url, "ServiceRequest", {"identifier": f"urn:portal:referral-request|{submission}"})
    assert len(stored) == 1
    sr = stored[0]
    assert (sr["status"], sr["intent"], sr["subject"]["reference"]) == ("active", "proposal", f"Patient/{OWNER}")
    assert sr["performer"][0]["reference"] == "Organization/org-spec-cardiology"
    assert sr["requester"]["reference"].endswith(f"Patient/{OWNER}")
    assert sr["id"] in {e["resource"]["id"] for e in listed.json().get("entry", [])}  # the patient sees it


@pytest.mark.parametrize(("overrides", "status"), [
    ({"subject": {"reference": f"Patient/{OTHER}"}}, 422),
    ({"intent": "order"}, 422),
    ({"status": "completed"}, 422),
    ({"performer": [{"reference": "Organization/org-lab"}]}, 422),
])
async def test_referral_refusals_write_nothing(gateway: GatewayServer, ehr_base_url: str, overrides: dict,
                                               status: int) -> None:
    submission = uuid.uuid4().hex
    token = mint(gateway, SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        r = await c.post("/ServiceRequest", json=referral(OWNER, submission, **overrides))
    assert r.status_code == status, r.text
    assert not ehr_search(ehr_base_url, "ServiceRequest", {"identifier": f"urn:portal:referral-request|{submission}"})
