"""The care team's decision rules, with respx as the EHR: a refill approved (an order, the request and the old
prescription closed in one transaction) or declined with a reason; a referral accepted or declined; a reported
allergy confirmed or refuted; an insurance card confirmed. And the refusals: the wrong role, a patient not on
the staff member's care team, forged or answered requests, and patients deciding for themselves; nothing
reaches the EHR when refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from mappers.decisions import INSURANCE_REQUEST_SYSTEM
from mappers.inbound import REFILL_IDENTIFIER_SYSTEM

from .conftest import Harness

PT, OTHER = "pt-0001", "pt-0002"
DOC, NURSE, DESK = "Practitioner/prac-01", "Practitioner/staff-nurse", "Practitioner/staff-desk"
STAFF_SCOPES = "openid fhirUser user/*.rs user/MedicationRequest.cu user/ServiceRequest.cu " \
               "user/AllergyIntolerance.u user/Coverage.c"
ROLE_SYSTEM = "http://hospital.example.org/fhir/CodeSystem/staff-role"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
BUNDLE = {"resourceType": "Bundle", "type": "searchset"}
ROLES = {DOC: "clinician", NURSE: "nurse", DESK: "front-desk"}


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {**BUNDLE, "entry": [{"resource": r} for r in resources]}


def prescription() -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "rx-1", "meta": {"versionId": "3"}, "status": "active",
            "intent": "order", "subject": {"reference": f"Patient/{PT}"}, "requester": {"reference": DOC},
            "authoredOn": "2026-01-05", "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
            "dosageInstruction": [{"text": "1 tablet a day"}],
            "dispenseRequest": {"numberOfRepeatsAllowed": 3, "quantity": {"value": 30, "unit": "tablet"}}}


def refill_request(status: str = "draft", pid: str = PT) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "rq-1", "meta": {"versionId": "1"}, "status": status,
            "intent": "proposal", "identifier": [{"system": REFILL_IDENTIFIER_SYSTEM, "value": "rx-1"}],
            "subject": {"reference": f"Patient/{pid}"}, "requester": {"reference": f"Patient/{pid}"},
            "authoredOn": "2026-11-28T09:00:00Z", "basedOn": [{"reference": "MedicationRequest/rx-1"}],
            "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
            "dispenseRequest": {"numberOfRepeatsAllowed": 3, "performer": {
                "reference": "Organization/org-pharm-cvs", "display": "CVS on S MacArthur Blvd"}}}


def referral_request(status: str = "active") -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": "sr-1", "meta": {"versionId": "1"}, "status": status,
            "intent": "proposal", "subject": {"reference": f"Patient/{PT}"},
            "requester": {"reference": f"Patient/{PT}"}, "authoredOn": "2026-11-27T09:00:00Z",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
            "code": {"text": "Referral to cardiology"},
            "performerType": {"coding": [{"system": "http://snomed.info/sct", "code": "394579002",
                                          "display": "Cardiology"}]},
            "reasonCode": [{"text": "Palpitations"}]}


HEART = {"resourceType": "Organization", "id": "org-spec-cardiology", "active": True,
         "name": "Capital Heart Associates",
         "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "394579002", "display": "Cardiology"}]}]}


def reported_allergy(code: str = "unconfirmed") -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "id": "al-1", "meta": {"versionId": "1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-"
                                                     "clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": code}]},
            "code": {"text": "Peanuts"}, "patient": {"reference": f"Patient/{PT}"},
            "recorder": {"reference": f"Patient/{PT}"}, "recordedDate": "2026-11-20T10:00:00Z"}


def insurance_message(topic: str = "Insurance card update") -> dict[str, Any]:
    return {"resourceType": "Communication", "id": "msg-1", "status": "completed",
            "category": [{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/message-topic",
                                      "code": "billing"}]}],
            "topic": {"text": topic}, "subject": {"reference": f"Patient/{PT}"},
            "sender": {"reference": f"Patient/{PT}"}, "recipient": [{"reference": "Organization/org-team-billing"}],
            "sent": "2026-11-25T08:00:00Z",
            "payload": [{"contentString": "Request: Add a new insurance card\nInsurance company: Acme Health\n"
                                          "Member ID: ZX123456"}]}


def care_team(*members: str, pid: str = PT) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "id": f"ct-{pid}", "status": "active",
            "subject": {"reference": f"Patient/{pid}"},
            "participant": [{"member": {"reference": m}} for m in members]}


def role_of(practitioner: str) -> dict[str, Any]:
    return {"resourceType": "PractitionerRole", "id": f"role-{practitioner.split('/')[1]}", "active": True,
            "practitioner": {"reference": practitioner},
            "code": [{"coding": [{"system": ROLE_SYSTEM, "code": ROLES[practitioner]}]}]}


def mock_staff(ehr: respx.MockRouter, *, team: tuple[str, ...] = (DOC, NURSE, DESK)) -> None:
    def roles(request: httpx.Request) -> httpx.Response:
        who = request.url.params.get("practitioner")
        return httpx.Response(200, json=searchset(role_of(who)) if who in ROLES else BUNDLE)

    ehr.get("/PractitionerRole").mock(side_effect=roles)
    ehr.get("/CareTeam").mock(side_effect=lambda req: httpx.Response(200, json=searchset(care_team(*team))
                                                                     if req.url.params.get("subject") == f"Patient/{PT}"
                                                                     else BUNDLE))


def transaction_ok(*locations: str) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction-response",
            "entry": [{"response": {"status": "201 Created" if i == 0 else "200 OK", "location": loc}}
                      for i, loc in enumerate(locations)]}


async def send(h: Harness, method: str, path: str, body: object, *, who: str = DOC, scopes: str = STAFF_SCOPES,
               **headers: str) -> httpx.Response:
    async with h.client() as c:
        return await c.request(method, path, content=json.dumps(body), headers={
            "Authorization": f"Bearer {h.token(scopes, fhir_user=who)}", "Content-Type": "application/fhir+json",
            **headers})


def approve(request_id: str = "rq-1", note: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                            "subject": {"reference": f"Patient/{PT}"},
                            "medicationCodeableConcept": {"text": "Refill approved"},
                            "basedOn": [{"reference": f"MedicationRequest/{request_id}"}]}
    if note:
        body["note"] = [{"text": note}]
    return body


def entries_of(route: respx.Route) -> list[dict[str, Any]]:
    return json.loads(route.calls.last.request.content)["entry"]


# -- refills -----------------------------------------------------------------------------------------------
async def test_an_approved_refill_becomes_an_order_and_closes_the_request_in_one_transaction(
        harness: Harness, ehr: respx.MockRouter) -> None:
    mock_staff(ehr)
    ehr.get("/MedicationRequest/rq-1").respond(json=refill_request())
    ehr.get("/MedicationRequest/rx-1").respond(json=prescription())
    tx = ehr.post("").respond(200, json=transaction_ok("MedicationRequest/new-1/_history/1",
                                                       "MedicationRequest/rq-1/_history/2",
                                                       "MedicationRequest/rx-1/_history/4"))
    ehr.get("/MedicationRequest/new-1").respond(json={**prescription(), "id": "new-1"})
    r = await send(harness, "POST", "/fhir/MedicationRequest", approve(note="Take with food"))
    assert r.status_code == 201, r.text
    order, request, old = entries_of(tx)
    sent = order["resource"]
    assert order["request"] == {"method": "POST", "url": "MedicationRequest"}
    assert sent["intent"] == "order" and sent["status"] == "active"
    assert sent["basedOn"] == [{"reference": "MedicationRequest/rq-1"}]
    assert sent["priorPrescription"] == {"reference": "MedicationRequest/rx-1"}
    assert sent["requester"] == {"reference": DOC}  # the approver prescribes, not what the body said
    assert sent["medicationCodeableConcept"] == {"text": "Lisinopril 10 MG Oral Tablet"}  # from the prescription
    assert sent["dosageInstruction"] == [{"text": "1 tablet a day"}]
    assert sent["dispenseRequest"]["performer"]["display"] == "CVS on S MacArthur Blvd"  # the patient's pharmacy
    assert sent["note"][0]["text"] == "Take with food"
    assert request["request"] == {"method": "PUT", "url": "MedicationRequest/rq-1", "ifMatch": 'W/"1"'}
    assert request["resource"]["status"] == "completed"
    assert old["request"]["ifMatch"] == 'W/"3"' and old["resource"]["status"] == "completed"
    # One audit record names everything the decision wrote, about the patient, by the clinician.
    audit = harness.audit[-1]
    assert audit.outcome == "0" and audit.caller is not None and audit.caller.fhir_user == DOC
    assert {"MedicationRequest/new-1", "MedicationRequest/rq-1", "MedicationRequest/rx-1"} <= set(audit.entity_refs)
    assert f"Patient/{PT}" in audit.patient_refs


async def test_a_declined_refill_carries_the_reason_the_patient_reads(harness: Harness,
                                                                       ehr: respx.MockRouter) -> None:
    mock_staff(ehr)
    ehr.get("/MedicationRequest/rq-1").respond(json=refill_request())
    tx = ehr.post("").respond(200, json=transaction_ok("MedicationRequest/rq-1/_history/2"))
    body = {**refill_request(), "status": "cancelled",
            "statusReason": {"text": "  Please book a blood pressure check first. "}}
    r = await send(harness, "PUT", "/fhir/MedicationRequest/rq-1", body, who=NURSE)
    assert r.status_code == 200, r.text
    (entry,) = entries_of(tx)
    assert entry["request"]["ifMatch"] == 'W/"1"'
    assert entry["resource"]["status"] == "cancelled"
    assert entry["resource"]["statusReason"] == {"text": "Please book a blood pressure check first."}


@pytest.mark.parametrize(("who", "method", "status"), [
    (NURSE, "POST", 403),  # a nurse may decline but not prescribe
    (DESK, "POST", 403),
    (DESK, "PUT", 403),
])
async def test_a_refill_decision_needs_a_role_that_makes_it(harness: Harness, ehr: respx.MockRouter, who: str,
                                                            method: str, status: int) -> None:
    mock_staff(ehr)
    ehr.get("/MedicationRequest/rq-1").respond(json=refill_request())
    ehr.get("/MedicationRequest/rx-1").respond(json=prescription())
    tx = ehr.post("").respond(200, json=transaction_ok("MedicationRequest/x/_history/1"))
    if method == "POST":
        r = await send(harness, "POST", "/fhir/MedicationRequest", approve(), who=who)
    else:
        r = await send(harness, "PUT", "/fhir/MedicationRequest/rq-1",
                       {**refill_request(), "status": "cancelled", "statusReason": {"text": "No"}}, who=who)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome" and not tx.called


async def test_a_refill_of_a_patient_outside_my_care_team_answers_as_missing(harness: Harness,
                                                                              ehr: respx.MockRouter) -> None:
    mock_staff(ehr, team=(NURSE,))  # the clinician is not on this patient's care team
    ehr.get("/MedicationRequest/rq-1").respond(json=refill_request())
    ehr.get("/MedicationRequest/nope").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    tx = ehr.post("").respond(200, json={})
    outside = await send(harness, "POST", "/fhir/MedicationRequest", approve())
    missing = await send(harness, "POST", "/fhir/MedicationRequest", approve("nope"))
    forged = await send(harness, "POST", "/fhir/MedicationRequest", approve("../Patient/pt-0001"))
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["issue"][0]["diagnostics"] == missing.json()["issue"][0]["diagnostics"]
    assert forged.status_code in (404, 422)
    assert not tx.called


@pytest.mark.parametrize(("stored", "body", "words"), [
    (refill_request("completed"), {"status": "cancelled", "statusReason": {"text": "No"}}, "already been answered"),
    (refill_request(), {"status": "cancelled"}, "Say why"),
    (refill_request(), {"status": "completed", "statusReason": {"text": "ok"}}, "approving it"),
    (refill_request(), {"status": "cancelled", "statusReason": {"text": "No"},
                        "subject": {"reference": f"Patient/{OTHER}"}}, "subject"),
])
async def test_a_refill_decision_that_breaks_a_rule_changes_nothing(harness: Harness, ehr: respx.MockRouter,
                                                                    stored: dict, body: dict, words: str) -> None:
    mock_staff(ehr)
    ehr.get("/MedicationRequest/rq-1").respond(json=stored)
    tx = ehr.post("").respond(200, json={})
    r = await send(harness, "PUT", "/fhir/MedicationRequest/rq-1", {**stored, **body})
    assert r.status_code == 422, r.text
    assert words in r.json()["issue"][0]["diagnostics"] and not tx.called


async def test_two_colleagues_deciding_at_once_one_is_told_it_was_answered(harness: Harness,
                                                                            ehr: respx.MockRouter) -> None:
    mock_staff(ehr)
    ehr.get("/MedicationRequest/rq-1").respond(json=refill_request())
    ehr.get("/MedicationRequest/rx-1").respond(json=prescription())
    ehr.post("").respond(412, json={"resourceType": "OperationOutcome", "issue": []})
    r = await send(harness, "POST", "/fhir/MedicationRequest", approve())
    assert r.status_code == 409 and "answered this request meanwhile" in r.text


async def test_a_patient_cannot_approve_their_own_refill(harness: Harness, ehr: respx.MockRouter) -> None:
    tx = ehr.post("").respond(200, json={})
    posted = ehr.post("/MedicationRequest").respond(201, json={})
    ehr.get("/MedicationRequest/rq-1").respond(json=refill_request())
    patient_scopes = "launch/patient patient/*.rs patient/MedicationRequest.c"
    async with harness.client() as c:
        r = await c.post("/fhir/MedicationRequest", content=json.dumps(approve()), headers={
            "Authorization": f"Bearer {harness.token(patient_scopes, patient=PT)}",
            "Content-Type": "application/fhir+json"})
    assert r.status_code in (404, 422) and not tx.called and not posted.called


# -- referrals ---------------------------------------------------------------------------------------------
async def test_an_accepted_referral_goes_to_a_practice_of_the_asked_specialty(harness: Harness,
                                                                               ehr: respx.MockRouter) -> None:
    mock_staff(ehr)
    ehr.get("/ServiceRequest/sr-1").respond(json=referral_request())
    ehr.get("/Organization/org-spec-cardiology").respond(json=HEART)
    tx = ehr.post("").respond(200, json=transaction_ok("ServiceRequest/so-1/_history/1",
                                                       "ServiceRequest/sr-1/_history/2"))
    ehr.get("/ServiceRequest/so-1").respond(json={**referral_request(), "id": "so-1", "intent": "order"})
    body = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{PT}"}, "basedOn": [{"reference": "ServiceRequest/sr-1"}],
            "performer": [{"reference": "Organization/org-spec-cardiology"}]}
    r = await send(harness, "POST", "/fhir/ServiceRequest", body)
    assert r.status_code == 201, r.text
    order, request = entries_of(tx)
    assert order["resource"]["performer"] == [{"reference": "Organization/org-spec-cardiology",
                                               "display": "Capital Heart Associates"}]
    assert order["resource"]["basedOn"] == [{"reference": "ServiceRequest/sr-1"}]
    assert order["resource"]["requester"] == {"reference": DOC}
    assert request["resource"]["status"] == "completed" and request["request"]["ifMatch"] == 'W/"1"'


async def test_a_declined_referral_keeps_the_reason_as_the_clinicians_note(harness: Harness,
                                                                            ehr: respx.MockRouter) -> None:
    mock_staff(ehr)
    ehr.get("/ServiceRequest/sr-1").respond(json=referral_request())
    tx = ehr.post("").respond(200, json=transaction_ok("ServiceRequest/sr-1/_history/2"))
    body = {**referral_request(), "status": "revoked", "note": [{"text": "Let us see you first."}]}
    r = await send(harness, "PUT", "/fhir/ServiceRequest/sr-1", body)
    assert r.status_code == 200, r.text
    (entry,) = entries_of(tx)
    assert entry["resource"]["status"] == "revoked"
    assert entry["resource"]["note"][-1]["text"] == "Let us see you first."
    assert entry["resource"]["note"][-1]["authorReference"] == {"reference": DOC}
    # A nurse cannot decide on referrals.
    r = await send(harness, "PUT", "/fhir/ServiceRequest/sr-1", body, who=NURSE)
    assert r.status_code == 403


# -- allergies ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("verdict", ["confirmed", "refuted"])
async def test_a_reported_allergy_is_confirmed_or_refuted(harness: Harness, ehr: respx.MockRouter,
                                                         verdict: str) -> None:
    mock_staff(ehr)
    ehr.get("/AllergyIntolerance/al-1").respond(json=reported_allergy())
    tx = ehr.post("").respond(200, json=transaction_ok("AllergyIntolerance/al-1/_history/2"))
    body = {**reported_allergy(), "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verdict}]}}
    r = await send(harness, "PUT", "/fhir/AllergyIntolerance/al-1", body, who=NURSE)
    assert r.status_code == 200, r.text
    (entry,) = entries_of(tx)
    assert entry["resource"]["verificationStatus"]["coding"][0]["code"] == verdict
    assert entry["resource"]["note"][-1]["authorReference"] == {"reference": NURSE}


@pytest.mark.parametrize(("who", "stored", "change", "status"), [
    (DESK, reported_allergy(), {"verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]}},
     403),  # the front desk does not check clinical facts
    (DOC, reported_allergy("confirmed"), {"verificationStatus": {"coding": [{"system": VERIFICATION,
                                                                              "code": "refuted"}]}}, 422),
    (DOC, reported_allergy(), {"criticality": "high",
                               "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]}}, 422),
])
async def test_an_allergy_check_outside_the_rule_is_refused(harness: Harness, ehr: respx.MockRouter, who: str,
                                                            stored: dict, change: dict, status: int) -> None:
    mock_staff(ehr)
    ehr.get("/AllergyIntolerance/al-1").respond(json=stored)
    tx = ehr.post("").respond(200, json={})
    r = await send(harness, "PUT", "/fhir/AllergyIntolerance/al-1", {**stored, **change}, who=who)
    assert r.status_code == status, r.text
    assert not tx.called


# -- insurance ---------------------------------------------------------------------------------------------
def coverage(message_id: str = "msg-1", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Coverage", "status": "active",
            "identifier": [{"system": INSURANCE_REQUEST_SYSTEM, "value": message_id}],
            "beneficiary": {"reference": f"Patient/{PT}"}, "payor": [{"display": "Acme Health"}],
            "subscriberId": "ZX123456", **extra}


async def test_the_front_desk_confirms_an_insurance_card_once(harness: Harness, ehr: respx.MockRouter) -> None:
    mock_staff(ehr)
    ehr.get("/Communication/msg-1").respond(json=insurance_message())
    tx = ehr.post("").respond(200, json=transaction_ok("Coverage/cov-9/_history/1"))
    ehr.get("/Coverage/cov-9").respond(json={**coverage(), "id": "cov-9"})
    r = await send(harness, "POST", "/fhir/Coverage", coverage(), who=DESK)
    assert r.status_code == 201, r.text
    (entry,) = entries_of(tx)
    assert entry["request"]["ifNoneExist"] == (f"identifier={INSURANCE_REQUEST_SYSTEM}|msg-1"
                                               f"&beneficiary=Patient/{PT}")
    assert entry["resource"]["beneficiary"] == {"reference": f"Patient/{PT}"}


@pytest.mark.parametrize(("who", "message", "body", "status"), [
    (NURSE, insurance_message(), coverage(), 403),
    (DESK, insurance_message("Question about my bill"), coverage(), 422),
    (DESK, insurance_message(), coverage(beneficiary={"reference": f"Patient/{OTHER}"}), 422),
    (DESK, insurance_message(), {**coverage(), "identifier": []}, 422),
])
async def test_an_insurance_confirmation_outside_the_rule_is_refused(harness: Harness, ehr: respx.MockRouter,
                                                                     who: str, message: dict, body: dict,
                                                                     status: int) -> None:
    mock_staff(ehr)
    ehr.get("/Communication/msg-1").respond(json=message)
    tx = ehr.post("").respond(200, json={})
    r = await send(harness, "POST", "/fhir/Coverage", body, who=who)
    assert r.status_code == status, r.text
    assert not tx.called
