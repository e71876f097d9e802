"""The allergy rule of the policy table, with respx as the EHR: a patient may report an allergy of their own,
which is always recorded as unconfirmed and as reported by them; everything else is refused and nothing
reaches the EHR."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from fhir_gateway.policy import CREATE, UPDATE, policy_for

from .conftest import Harness

PT, OTHER = "pt-0001", "pt-0002"
SCOPES = "launch/patient patient/*.rs patient/AllergyIntolerance.c patient/AllergyIntolerance.u"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def report(**extra: object) -> dict:
    body = {"resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{PT}"},
            "identifier": [{"system": "urn:portal:reported-allergy", "value": "sub-1234567890abcdef"}],
            "category": ["food"], "code": {"text": "Peanuts"},
            "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "moderate"}]}
    return {**body, **extra}


def stored(body: dict, rid: str = "al-9") -> dict:
    return {**body, "id": rid, "meta": {"versionId": "1"}}


async def send(h: Harness, method: str, path: str, body: object, **headers: str) -> httpx.Response:
    async with h.client() as c:
        return await c.request(method, path, content=json.dumps(body), headers={
            "Authorization": f"Bearer {h.token(SCOPES, patient=PT)}", "Content-Type": "application/fhir+json",
            **headers})


def test_the_policy_table_lets_patients_create_allergies_and_change_none() -> None:
    # Updates are staff checking a reported allergy (the decision rule); a patient changes none.
    policy = policy_for("AllergyIntolerance")
    assert policy is not None and policy.patient_writes == {CREATE}
    assert UPDATE not in policy.patient_writes


async def test_a_reported_allergy_is_stored_unconfirmed_and_recorded_by_the_patient(
        harness: Harness, ehr: respx.MockRouter) -> None:
    post = ehr.post("/AllergyIntolerance").mock(side_effect=lambda req: httpx.Response(
        201, json=stored(json.loads(req.content))))
    r = await send(harness, "POST", "/fhir/AllergyIntolerance", report(note=[{"text": "Since childhood"}]))
    assert r.status_code == 201, r.text
    sent = json.loads(post.calls.last.request.content)
    assert sent["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    assert sent["clinicalStatus"]["coding"][0]["code"] == "active"
    assert sent["recorder"] == sent["asserter"] == {"reference": f"Patient/{PT}"}
    assert sent["patient"] == {"reference": f"Patient/{PT}"} and sent["code"] == {"text": "Peanuts"}
    assert sent["reaction"] == [{"manifestation": [{"text": "Hives"}], "severity": "moderate"}]
    assert sent["recordedDate"] and sent["note"] == [{"text": "Since childhood"}]
    # A retry of the same report finds the first one (conditional create on the report's identifier).
    assert post.calls.last.request.headers["If-None-Exist"] == (
        f"identifier=urn:portal:reported-allergy|sub-1234567890abcdef&patient=Patient/{PT}")


async def test_a_caregiver_reports_for_the_patient_and_is_recorded_as_the_reporter(
        harness: Harness, ehr: respx.MockRouter) -> None:
    post = ehr.post("/AllergyIntolerance").mock(side_effect=lambda req: httpx.Response(
        201, json=stored(json.loads(req.content))))
    token = harness.token(SCOPES, patient=PT, fhir_user="RelatedPerson/rp-7")
    async with harness.client() as c:
        r = await c.post("/fhir/AllergyIntolerance", content=json.dumps(report()), headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    sent = json.loads(post.calls.last.request.content)
    assert sent["recorder"] == sent["asserter"] == {"reference": "RelatedPerson/rp-7"}
    assert sent["patient"] == {"reference": f"Patient/{PT}"}


@pytest.mark.parametrize(("change", "words"), [
    ({"verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]}}, "unconfirmed"),
    ({"verificationStatus": {"coding": [{"system": VERIFICATION, "code": "unconfirmed"},
                                        {"system": VERIFICATION, "code": "confirmed"}]}}, "one code"),
    ({"verificationStatus": {"coding": [{"system": "urn:other", "code": "unconfirmed"}]}}, "one code"),
    ({"patient": {"reference": f"Patient/{OTHER}"}}, "your own record"),
    ({"recorder": {"reference": "Practitioner/prac-01"}}, "recorder must be you"),
    ({"asserter": {"reference": "Practitioner/prac-01"}}, "asserter must be you"),
    ({"clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                     "code": "resolved"}]}}, "current"),
    ({"criticality": "high"}, "criticality"),
    ({"code": {}}, "allergic to"),
    ({"onsetDateTime": "2999-01-01"}, "future"),
])
async def test_anything_a_patient_may_not_say_is_refused_and_nothing_is_written(
        harness: Harness, ehr: respx.MockRouter, change: dict, words: str) -> None:
    post = ehr.post("/AllergyIntolerance").respond(201, json={})
    r = await send(harness, "POST", "/fhir/AllergyIntolerance", report(**change))
    assert r.status_code == 422, r.text
    assert r.json()["resourceType"] == "OperationOutcome" and words in r.json()["issue"][0]["diagnostics"]
    assert not post.called


async def test_no_allergy_can_be_changed_by_a_patient_not_even_their_own_report(
        harness: Harness, ehr: respx.MockRouter) -> None:
    clinic = stored(report(recorder={"reference": "Practitioner/prac-01"},
                           verificationStatus={"coding": [{"system": VERIFICATION, "code": "confirmed"}]}), "al-1")
    ehr.get("/AllergyIntolerance/al-1").respond(json=clinic)
    put = ehr.put(url__regex=r"/AllergyIntolerance/.*").respond(200, json=clinic)
    for body in (clinic, {**clinic, "verificationStatus": {"coding": [{"system": VERIFICATION,
                                                                       "code": "refuted"}]}}):
        r = await send(harness, "PUT", "/fhir/AllergyIntolerance/al-1", body)
        assert r.status_code in (403, 405) and r.json()["resourceType"] == "OperationOutcome"
    assert not put.called


async def test_a_token_without_the_create_scope_cannot_report(harness: Harness, ehr: respx.MockRouter) -> None:
    post = ehr.post("/AllergyIntolerance").respond(201, json={})
    async with harness.client() as c:
        r = await c.post("/fhir/AllergyIntolerance", content=json.dumps(report()), headers={
            "Authorization": f"Bearer {harness.token('launch/patient patient/*.rs', patient=PT)}",
            "Content-Type": "application/fhir+json"})
    assert r.status_code == 403 and not post.called
