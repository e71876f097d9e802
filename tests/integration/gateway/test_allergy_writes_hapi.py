"""A patient's own allergy report against the real EHR: stored unconfirmed and recorded by them, once however
often it is sent; another status, another record or a change to what the clinic recorded: refused, with
nothing written."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import GatewayServer

from .helpers import auth, ehr_search, mint

pytestmark = pytest.mark.integration

OWNER, OTHER = "pt-0019", "pt-0020"
SCOPES = "launch/patient patient/*.rs patient/AllergyIntolerance.cu"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def report(patient: str = OWNER, **extra: object) -> dict:
    return {"resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{patient}"},
            "identifier": [{"system": "urn:portal:reported-allergy", "value": uuid.uuid4().hex}],
            "category": ["food"], "code": {"text": f"Sesame {uuid.uuid4().hex[:6]}"},
            "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "mild"}], **extra}


def allergies(base: str, patient: str = OWNER) -> list[dict]:
    return ehr_search(base, "AllergyIntolerance", {"patient": f"Patient/{patient}"})


def test_a_report_is_stored_unconfirmed_once_however_often_it_is_sent(gateway: GatewayServer,
                                                                      ehr_base_url: str) -> None:
    body = report()
    token = mint(gateway, SCOPES, patient=OWNER)
    before = len(allergies(ehr_base_url))
    with httpx.Client(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        first = c.post("/AllergyIntolerance", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        same_key = c.post("/AllergyIntolerance", json=body, headers={"Idempotency-Key": first.request.headers[
            "Idempotency-Key"]})
        new_key = c.post("/AllergyIntolerance", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert first.status_code == 201, first.text
    assert same_key.json()["id"] == new_key.json()["id"] == first.json()["id"]
    after = allergies(ehr_base_url)
    assert len(after) == before + 1
    stored = next(a for a in after if a["id"] == first.json()["id"])
    assert [c["code"] for c in stored["verificationStatus"]["coding"]] == ["unconfirmed"]
    assert stored["recorder"]["reference"] == stored["asserter"]["reference"] == f"Patient/{OWNER}"
    assert stored["code"] == body["code"] and stored["recordedDate"]


def test_other_statuses_other_records_and_clinic_allergies_are_refused(gateway: GatewayServer,
                                                                       ehr_base_url: str) -> None:
    clinic = next(a for a in allergies(ehr_base_url) if a.get("recorder", {}).get("reference", "").startswith(
        "Practitioner/"))
    token = mint(gateway, SCOPES, patient=OWNER)
    before_mine, before_other = allergies(ehr_base_url), allergies(ehr_base_url, OTHER)
    with httpx.Client(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        confirmed = c.post("/AllergyIntolerance", json=report(verificationStatus={"coding": [
            {"system": VERIFICATION, "code": "confirmed"}]}))
        elsewhere = c.post("/AllergyIntolerance", json=report(OTHER))
        changed = c.put(f"/AllergyIntolerance/{clinic['id']}", json={
            **{k: v for k, v in clinic.items() if k != "meta"},
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "refuted"}]}})
    assert confirmed.status_code == 422 and "unconfirmed" in confirmed.json()["issue"][0]["diagnostics"]
    assert elsewhere.status_code == 422 and "your own record" in elsewhere.json()["issue"][0]["diagnostics"]
    assert changed.status_code in (403, 405) and changed.json()["resourceType"] == "OperationOutcome"
    assert allergies(ehr_base_url) == before_mine and allergies(ehr_base_url, OTHER) == before_other
