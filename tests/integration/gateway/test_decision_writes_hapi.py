"""The care team's decisions through the gateway into the real EHR: a patient asks (refill, referral, allergy,
insurance card), a staff member of the right role on the patient's care team answers, and the EHR holds the
answer the patient then reads; the wrong role, a clinician outside the care team and a second answer change
nothing. Every test makes its own requests and marks what it made as entered in error at the end, so runs
against the same long-lived EHR do not pile up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mappers import decisions, queues
from mappers.coverage import SUBJECT, insurance_request_text
from mappers.messages import TOPICS, outgoing
from mappers.referrals import referrals
from mappers.refills import prescriptions
from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import all_pages

from .helpers import auth, ehr_search, mint

pytestmark = pytest.mark.integration

PT = "pt-0014"
PATIENT_SCOPES = "launch/patient patient/*.cruds"
STAFF_SCOPES = "openid fhirUser user/*.cruds"
CARDIOLOGY = {"system": "http://snomed.info/sct", "code": "394579002", "display": "Cardiology"}


@pytest.fixture(scope="module")
def team(ehr_base_url: str) -> dict[str, str]:
    """The patient's care team by role, and a clinician who is not on it."""
    members: dict[str, str] = {}
    for care_team in ehr_search(ehr_base_url, "CareTeam", {"subject": f"Patient/{PT}", "status": "active"}):
        for p in care_team.get("participant", []):
            ref = p.get("member", {}).get("reference", "")
            for code in (c.get("code") for r in p.get("role", []) for c in r.get("coding", [])):
                if code in ("clinician", "nurse", "front-desk", "billing") and ref.startswith("Practitioner/"):
                    members.setdefault(code, ref)
    roles = ehr_search(ehr_base_url, "PractitionerRole", {"active": "true"})
    on_team = set(members.values())
    members["outsider"] = next(r["practitioner"]["reference"] for r in roles
                               if "clinician" in decisions.staff_roles([r])
                               and r["practitioner"]["reference"] not in on_team)
    assert {"clinician", "nurse", "front-desk"} <= set(members), members
    return members


@pytest.fixture
def made(ehr_base_url: str) -> Iterator[list[str]]:
    """References this test made in the EHR, marked entered-in-error when it ends."""
    refs: list[str] = []
    yield refs
    with httpx.Client(base_url=ehr_base_url, timeout=60) as c:
        for ref in refs:
            current = c.get(ref).json()
            if current.get("resourceType") not in (None, "OperationOutcome"):
                body = {k: v for k, v in current.items() if k != "meta"}
                if body["resourceType"] == "AllergyIntolerance":
                    body.pop("clinicalStatus", None)
                    body["verificationStatus"] = {"coding": [{"system": decisions.VERIFICATION_SYSTEM,
                                                              "code": "entered-in-error"}]}
                else:
                    body["status"] = "entered-in-error"
                c.put(ref, json=body)


def staff(gateway: GatewayServer, practitioner: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.fhir, timeout=60,
                             headers=auth(mint(gateway, STAFF_SCOPES, fhir_user=practitioner)))


def patient(gateway: GatewayServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.fhir, timeout=60, headers=auth(mint(gateway, PATIENT_SCOPES,
                                                                                       patient=PT)))


def read(base: str, ref: str) -> dict[str, Any]:
    return httpx.get(f"{base}/{ref}", timeout=60).json()


async def asked_refill(gateway: GatewayServer, base: str, made: list[str]) -> tuple[dict, dict]:
    """A fresh prescription of the patient's, and their refill request for it (through the gateway)."""
    rx = httpx.post(f"{base}/MedicationRequest", timeout=60, json={
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "subject": {"reference": f"Patient/{PT}"}, "authoredOn": "2026-01-05",
        "medicationCodeableConcept": {"text": "Atorvastatin 20 MG Oral Tablet"},
        "dosageInstruction": [{"text": "1 tablet at night"}],
        "dispenseRequest": {"numberOfRepeatsAllowed": 2, "quantity": {"value": 30, "unit": "tablet"}}}).json()
    made.append(f"MedicationRequest/{rx['id']}")
    pharmacy = ehr_search(base, "Organization", {"type:text": "Pharmacy"})[0]
    async with patient(gateway) as c:
        r = await c.post("/MedicationRequest", json={
            "resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
            "subject": {"reference": f"Patient/{PT}"}, "medicationCodeableConcept": {"text": "refill"},
            "basedOn": [{"reference": f"MedicationRequest/{rx['id']}"}],
            "dispenseRequest": {"performer": {"reference": f"Organization/{pharmacy['id']}"}}})
    assert r.status_code == 201, r.text
    made.append(f"MedicationRequest/{r.json()['id']}")
    return rx, r.json()


def patient_reads(gateway: GatewayServer, rtype: str) -> list[dict[str, Any]]:
    """Every page of the patient's search through the gateway, as the portal reads it (a long-lived EHR
    holds more than one page of what these tests make)."""
    return all_pages(gateway, rtype, mint(gateway, PATIENT_SCOPES, patient=PT), {"_count": "200"})


def what_the_patient_reads(gateway: GatewayServer) -> list:
    return prescriptions(patient_reads(gateway, "MedicationRequest"), [], {f"Patient/{PT}"})


async def test_a_clinician_on_the_care_team_approves_a_refill_and_the_patient_sees_it_sent(
        gateway: GatewayServer, ehr_base_url: str, team: dict[str, str], made: list[str]) -> None:
    rx, request = await asked_refill(gateway, ehr_base_url, made)
    body = queues.approve_refill_body(request["id"], PT)
    async with staff(gateway, team["nurse"]) as c:
        nurse = await c.post("/MedicationRequest", json=body)
    async with staff(gateway, team["outsider"]) as c:
        outsider = await c.post("/MedicationRequest", json=body)
    assert nurse.status_code == 403 and outsider.status_code == 404, (nurse.text, outsider.text)
    assert read(ehr_base_url, f"MedicationRequest/{request['id']}")["status"] == "draft"  # nothing changed
    async with staff(gateway, team["clinician"]) as c:
        approved = await c.post("/MedicationRequest", json=body)
        again = await c.post("/MedicationRequest", json=body)
    assert approved.status_code == 201, approved.text
    order = approved.json()
    made.append(f"MedicationRequest/{order['id']}")
    assert again.status_code == 422 and "already been answered" in again.text
    assert (order["intent"], order["status"]) == ("order", "active")
    assert order["basedOn"] == [{"reference": f"MedicationRequest/{request['id']}"}]
    assert order["requester"]["reference"] == team["clinician"]
    assert read(ehr_base_url, f"MedicationRequest/{request['id']}")["status"] == "completed"
    assert read(ehr_base_url, f"MedicationRequest/{rx['id']}")["status"] == "completed"
    renewed = next(p for p in what_the_patient_reads(gateway) if p.id == order["id"])
    assert [r.status.key for r in renewed.requests] == ["pharmacy"]


async def test_a_declined_refill_reaches_the_patient_with_the_reason(
        gateway: GatewayServer, ehr_base_url: str, team: dict[str, str], made: list[str]) -> None:
    rx, request = await asked_refill(gateway, ehr_base_url, made)
    current = read(ehr_base_url, f"MedicationRequest/{request['id']}")
    body = queues.deny_refill_body(current, "Please book a cholesterol check first.")
    async with staff(gateway, team["front-desk"]) as c:
        desk = await c.put(f"/MedicationRequest/{request['id']}", json=body)
    assert desk.status_code == 403, desk.text
    async with staff(gateway, team["nurse"]) as c:
        denied = await c.put(f"/MedicationRequest/{request['id']}", json=body)
    assert denied.status_code == 200, denied.text
    shown = next(p for p in what_the_patient_reads(gateway) if p.id == rx["id"])
    assert shown.requests[0].status.key == "declined"
    assert shown.requests[0].status.detail == "Please book a cholesterol check first."


async def test_a_referral_request_is_accepted_or_declined(
        gateway: GatewayServer, ehr_base_url: str, team: dict[str, str], made: list[str]) -> None:
    asked = []
    async with patient(gateway) as c:
        for _ in range(2):
            r = await c.post("/ServiceRequest", json={
                "resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
                "identifier": [{"system": "urn:portal:referral-request", "value": uuid.uuid4().hex}],
                "subject": {"reference": f"Patient/{PT}"}, "performerType": {"coding": [CARDIOLOGY]},
                "reasonCode": [{"text": "Racing heart on the stairs"}]})
            assert r.status_code == 201, r.text
            asked.append(r.json())
            made.append(f"ServiceRequest/{r.json()['id']}")
    accept, decline = asked
    practice = ehr_search(ehr_base_url, "Organization", {"type": f"{CARDIOLOGY['system']}|{CARDIOLOGY['code']}"})
    async with staff(gateway, team["clinician"]) as c:
        ordered = await c.post("/ServiceRequest", json=queues.accept_referral_body(
            accept["id"], PT, f"Organization/{practice[0]['id']}" if practice else None))
        declined = await c.put(f"/ServiceRequest/{decline['id']}", json=queues.decline_referral_body(
            read(ehr_base_url, f"ServiceRequest/{decline['id']}"), "Let us see you in clinic first."))
    assert ordered.status_code == 201 and declined.status_code == 200, (ordered.text, declined.text)
    made.append(f"ServiceRequest/{ordered.json()['id']}")
    shown = {r.reference: r for r in referrals(patient_reads(gateway, "ServiceRequest"), {f"Patient/{PT}"})}
    assert shown[f"ServiceRequest/{accept['id']}"].status_key == "referred"
    assert shown[f"ServiceRequest/{decline['id']}"].detail == "Let us see you in clinic first."


async def test_a_reported_allergy_is_confirmed_by_a_nurse_and_not_by_the_front_desk(
        gateway: GatewayServer, ehr_base_url: str, team: dict[str, str], made: list[str]) -> None:
    async with patient(gateway) as c:
        r = await c.post("/AllergyIntolerance", json={
            "resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{PT}"},
            "identifier": [{"system": "urn:portal:reported-allergy", "value": uuid.uuid4().hex}],
            "category": ["food"], "code": {"text": "Sesame"}})
    assert r.status_code == 201, r.text
    made.append(f"AllergyIntolerance/{r.json()['id']}")
    current = read(ehr_base_url, f"AllergyIntolerance/{r.json()['id']}")
    body = queues.check_allergy_body(current, "confirmed", "Confirmed on the phone")
    async with staff(gateway, team["front-desk"]) as c:
        desk = await c.put(f"/AllergyIntolerance/{current['id']}", json=body)
    async with staff(gateway, team["nurse"]) as c:
        checked = await c.put(f"/AllergyIntolerance/{current['id']}", json=body)
        twice = await c.put(f"/AllergyIntolerance/{current['id']}", json=body)
    assert desk.status_code == 403 and checked.status_code == 200 and twice.status_code == 422
    stored = read(ehr_base_url, f"AllergyIntolerance/{current['id']}")
    assert decisions.verification_code(stored) == "confirmed"
    assert stored["note"][-1]["authorReference"]["reference"] == team["nurse"]


async def test_the_front_desk_confirms_an_insurance_card_once(
        gateway: GatewayServer, ehr_base_url: str, team: dict[str, str], made: list[str]) -> None:
    text = insurance_request_text({"change": "add", "insurer": "Prairie Mutual", "member_id": "PM-" +
                                   uuid.uuid4().hex[:8], "holder": "self"})
    async with patient(gateway) as c:
        sent = await c.post("/Communication", json=outgoing(
            patient_ref=f"Patient/{PT}", recipient=TOPICS["billing"][1], text=text, submission=uuid.uuid4().hex,
            topic="billing", subject=SUBJECT))
    assert sent.status_code == 201, sent.text
    message = sent.json()
    made.append(f"Communication/{message['id']}")
    body = queues.coverage_body(message, queues.coverage_form(message))
    async with staff(gateway, team["nurse"]) as c:
        nurse = await c.post("/Coverage", json=body)
    async with staff(gateway, team["front-desk"]) as c:
        first = await c.post("/Coverage", json=body)
        again = await c.post("/Coverage", json=body)
    assert nurse.status_code == 403, nurse.text
    assert first.status_code == 201, first.text
    made.append(f"Coverage/{first.json()['id']}")
    assert again.json()["id"] == first.json()["id"]  # one card per request
    assert first.json()["payor"] == [{"display": "Prairie Mutual"}]
    key = f"{decisions.INSURANCE_REQUEST_SYSTEM}|{message['id']}"
    cards = ehr_search(ehr_base_url, "Coverage", {"identifier": key})
    assert len(cards) == 1 and cards[0]["beneficiary"]["reference"] == f"Patient/{PT}"
