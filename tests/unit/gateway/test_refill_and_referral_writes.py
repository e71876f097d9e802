"""The refill rule's pharmacy and refills-left checks, and the referral request rule (ServiceRequest with
intent=proposal), with respx as the EHR: what is written when allowed, and that nothing is when refused."""

from __future__ import annotations

import json

import pytest
import respx

from .conftest import Harness
from .test_patient_writes import OTHER, PT, med, send

BUNDLE = {"resourceType": "Bundle", "type": "searchset"}
PHARMACY = {"resourceType": "Organization", "id": "org-pharm-cvs", "active": True, "name": "CVS on S MacArthur Blvd",
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                  "code": "prov"}], "text": "Pharmacy"}]}
LAB = {"resourceType": "Organization", "id": "org-lab", "active": True, "name": "Reference Laboratory",
       "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}]}
CARDIOLOGY = {"system": "http://snomed.info/sct", "code": "394579002", "display": "Cardiology"}
HEART_PRACTICE = {"resourceType": "Organization", "id": "org-spec-cardiology", "active": True,
                  "name": "Capital Heart Associates",
                  "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                        "code": "prov"}], "text": "Cardiology"}]}
SKIN_PRACTICE = {**HEART_PRACTICE, "id": "org-spec-dermatology", "name": "Prairie Dermatology",
                 "type": [{"coding": [CARDIOLOGY | {"code": "394582007", "display": "Dermatology"}]}]}


def with_refills(mid: str, pid: str = PT, allowed: int = 2) -> dict:
    return {**med(mid, pid), "dispenseRequest": {"numberOfRepeatsAllowed": allowed,
                                                 "quantity": {"value": 30, "unit": "tablet"}}}


def fills(mid: str, n: int) -> dict:
    return {**BUNDLE, "entry": [{"resource": {
        "resourceType": "MedicationDispense", "id": f"d{i}", "status": "completed",
        "subject": {"reference": f"Patient/{PT}"}, "medicationCodeableConcept": {"text": "x"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{mid}"}],
        "whenHandedOver": f"2026-0{i + 1}-01T10:00:00Z"}} for i in range(n)]}


def refill(basis: str, pharmacy: str | None = "Organization/org-pharm-cvs", note: str | None = None) -> dict:
    body: dict = {"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
                  "subject": {"reference": f"Patient/{PT}"}, "basedOn": [{"reference": f"MedicationRequest/{basis}"}],
                  "medicationCodeableConcept": {"text": "refill"}}
    if pharmacy:
        body["dispenseRequest"] = {"performer": {"reference": pharmacy}}
    if note:
        body["note"] = [{"text": note}]
    return body


def mock_refill(ehr: respx.MockRouter, prescription: dict, n_fills: int = 1) -> respx.Route:
    ehr.get(f"/MedicationRequest/{prescription['id']}").respond(json=prescription)
    ehr.get("/MedicationDispense").respond(json=fills(prescription["id"], n_fills))
    ehr.get("/Organization/org-pharm-cvs").respond(json=PHARMACY)
    ehr.get("/Organization/org-lab").respond(json=LAB)
    ehr.get("/Organization/nowhere").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    return ehr.post("/MedicationRequest").respond(201, json={"resourceType": "MedicationRequest", "id": "r1",
                                                             "status": "draft", "intent": "proposal",
                                                             "subject": {"reference": f"Patient/{PT}"},
                                                             "medicationCodeableConcept": {"text": "x"}})


async def test_refill_goes_to_the_chosen_pharmacy_with_the_note(harness: Harness, ehr: respx.MockRouter) -> None:
    post = mock_refill(ehr, with_refills("m1"), n_fills=2)
    r = await send(harness, "POST", "/fhir/MedicationRequest", refill("m1", note="Running low by Friday"))
    assert r.status_code == 201, r.text
    sent = json.loads(post.calls.last.request.content)
    assert sent["dispenseRequest"]["performer"] == {"reference": "Organization/org-pharm-cvs",
                                                    "display": "CVS on S MacArthur Blvd"}
    assert sent["dispenseRequest"]["numberOfRepeatsAllowed"] == 2  # the prescription's own supply is kept
    assert sent["note"][0]["text"] == "Running low by Friday"
    assert sent["note"][0]["authorReference"]["reference"].endswith(f"Patient/{PT}")
    assert (sent["status"], sent["intent"]) == ("draft", "proposal")
    # Asking again while the care team is still on it finds the open request instead of writing a second.
    assert "status=draft,active,on-hold" in post.calls.last.request.headers["If-None-Exist"]


@pytest.mark.parametrize(("pharmacy", "why"), [
    ("Organization/org-lab", "pharmacy"),  # an Organization that is not a pharmacy
    ("Organization/nowhere", "pharmacy"),  # nothing there
    ("Practitioner/prac-01", "pharmacy"),  # not an Organization at all
    ("https://elsewhere.example/Organization/org-pharm-cvs", "pharmacy"),  # not a plain reference
])
async def test_refill_to_something_that_is_not_a_pharmacy_is_refused(
        harness: Harness, ehr: respx.MockRouter, pharmacy: str, why: str) -> None:
    post = mock_refill(ehr, with_refills("m1"))
    r = await send(harness, "POST", "/fhir/MedicationRequest", refill("m1", pharmacy=pharmacy))
    assert r.status_code == 422
    assert why in r.json()["issue"][0]["diagnostics"].lower()
    assert not post.called


async def test_refill_with_no_refills_left_is_refused_with_the_way_forward(
        harness: Harness, ehr: respx.MockRouter) -> None:
    # 2 refills allowed; the first fill and 2 refills have been handed over.
    post = mock_refill(ehr, with_refills("m1", allowed=2), n_fills=3)
    r = await send(harness, "POST", "/fhir/MedicationRequest", refill("m1"))
    assert r.status_code == 422
    assert "renew" in r.json()["issue"][0]["diagnostics"]
    assert not post.called


async def test_refill_of_another_patients_prescription_is_not_found(harness: Harness, ehr: respx.MockRouter) -> None:
    post = mock_refill(ehr, with_refills("m9", pid=OTHER))
    r = await send(harness, "POST", "/fhir/MedicationRequest", refill("m9"))
    assert r.status_code == 404
    assert not post.called
    assert (harness.audit[-1].interaction, harness.audit[-1].outcome) == ("create", "4")  # audited as refused


# -- referral requests -------------------------------------------------------------------------------
def referral(**overrides: object) -> dict:
    body = {"resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
            "identifier": [{"system": "urn:portal:referral-request", "value": "sub-123456789abcdef"}],
            "subject": {"reference": f"Patient/{PT}"},
            "performerType": {"coding": [CARDIOLOGY]},
            "performer": [{"reference": "Organization/org-spec-cardiology"}],
            "reasonCode": [{"text": "Racing heart when climbing stairs"}],
            "note": [{"text": "Dr Hale said this might help"}]}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def mock_referral(ehr: respx.MockRouter) -> respx.Route:
    ehr.get("/Organization/org-spec-cardiology").respond(json=HEART_PRACTICE)
    ehr.get("/Organization/org-spec-dermatology").respond(json=SKIN_PRACTICE)
    ehr.get("/Organization/org-pharm-cvs").respond(json=PHARMACY)
    return ehr.post("/ServiceRequest").respond(201, json={"resourceType": "ServiceRequest", "id": "sr1",
                                                          "status": "active", "intent": "proposal",
                                                          "subject": {"reference": f"Patient/{PT}"}})


async def test_referral_request_is_shaped_and_conditional(harness: Harness, ehr: respx.MockRouter) -> None:
    post = mock_referral(ehr)
    r = await send(harness, "POST", "/fhir/ServiceRequest", referral())
    assert r.status_code == 201, r.text
    request = post.calls.last.request
    assert request.headers["If-None-Exist"] == (f"identifier=urn:portal:referral-request|sub-123456789abcdef"
                                                f"&patient=Patient/{PT}")
    sent = json.loads(request.content)
    assert (sent["status"], sent["intent"], sent["subject"]) == ("active", "proposal", {"reference": f"Patient/{PT}"})
    assert sent["performer"] == [{"reference": "Organization/org-spec-cardiology",
                                  "display": "Capital Heart Associates"}]
    assert sent["performerType"]["coding"][0]["code"] == "394579002"
    assert sent["reasonCode"] == [{"text": "Racing heart when climbing stairs"}]
    assert sent["requester"]["reference"].endswith(f"Patient/{PT}")
    assert sent["note"][0]["text"] == "Dr Hale said this might help"


async def test_referral_without_a_named_practice_is_allowed(harness: Harness, ehr: respx.MockRouter) -> None:
    post = mock_referral(ehr)
    r = await send(harness, "POST", "/fhir/ServiceRequest", referral(performer=None))
    assert r.status_code == 201, r.text
    assert "performer" not in json.loads(post.calls.last.request.content)


@pytest.mark.parametrize(("change", "words"), [
    ({"subject": {"reference": f"Patient/{OTHER}"}}, "your own record"),
    ({"intent": "order"}, "proposal"),
    ({"intent": "plan"}, "proposal"),
    ({"status": "completed"}, "status"),
    ({"status": "draft"}, "status"),
    ({"performer": [{"reference": "Organization/org-pharm-cvs"}]}, "specialist practice"),  # not in the catalogue
    ({"performer": [{"reference": "Organization/org-spec-dermatology"}]}, "specialist practice"),  # other specialty
    ({"performer": [{"reference": "Practitioner/prac-01"}]}, "specialist practice"),
    ({"performerType": {"coding": [{"system": "http://snomed.info/sct", "code": "0000"}]}}, "specialty"),
    ({"reasonCode": None}, "what the referral is for"),
])
async def test_referral_refusals_write_nothing(harness: Harness, ehr: respx.MockRouter, change: dict,
                                               words: str) -> None:
    post = mock_referral(ehr)
    r = await send(harness, "POST", "/fhir/ServiceRequest", referral(**change))
    assert r.status_code == 422, r.text
    assert words in r.json()["issue"][0]["diagnostics"]
    assert not post.called


async def test_patients_may_still_not_update_service_requests(harness: Harness, ehr: respx.MockRouter) -> None:
    put = ehr.put("/ServiceRequest/sr1").respond(200, json={})
    r = await send(harness, "PUT", "/fhir/ServiceRequest/sr1", {**referral(), "id": "sr1", "status": "completed"})
    assert r.status_code in (403, 405)
    assert not put.called
