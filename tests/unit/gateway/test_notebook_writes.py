"""The health-notebook rule of the policy table, with respx as the EHR: a patient may add entries to their own
notebook (symptoms, side effects of their own medicines, questions for their own visits), change the entries
they wrote and share them; what the clinic recorded, another record's data and making a shared entry private
again are refused, and nothing reaches the EHR."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
import respx

from fhir_gateway.policy import CREATE, UPDATE, policy_for
from mappers.notebook import MEDICINE_EXTENSION, VISIT_EXTENSION, entry_resource, shared

from .conftest import Harness, obs

PT, OTHER = "pt-0001", "pt-0002"
SCOPES = "launch/patient patient/*.rs patient/Observation.cu"
TODAY = date.today()


def entry(kind: str = "symptom", **fields: str) -> dict:
    form = {"kind": kind, "text": "Headache after lunch", "day": TODAY.isoformat(), "severity": "moderate",
            "medicine": "rx-1", "visit": "", **fields}
    return entry_resource(form, patient_ref=f"Patient/{PT}", author_ref=f"Patient/{PT}", submission="sub-" + "a" * 16,
                          today=TODAY, medicines={"rx-1": "Typed name", "rx-9": "Not mine"},
                          visits={"ap-1": "Check-up", "ap-9": "Not mine"})


def stored(body: dict, rid: str = "nb-1", version: str = "1") -> dict:
    return {**body, "id": rid, "meta": {"versionId": version}}


RX = {"resourceType": "MedicationRequest", "id": "rx-1", "status": "active", "intent": "order",
      "subject": {"reference": f"Patient/{PT}"}, "medicationCodeableConcept": {"text": "Metformin 500 mg"}}
APPOINTMENT = {"resourceType": "Appointment", "id": "ap-1", "status": "booked",
               "participant": [{"actor": {"reference": f"Patient/{PT}"}, "status": "accepted"}]}


async def send(h: Harness, method: str, path: str, body: object, fhir_user: str | None = None,
               **headers: str) -> httpx.Response:
    async with h.client() as c:
        return await c.request(method, path, content=json.dumps(body), headers={
            "Authorization": f"Bearer {h.token(SCOPES, patient=PT, fhir_user=fhir_user)}",
            "Content-Type": "application/fhir+json", **headers})


def echo(status: int = 201):
    return lambda req: httpx.Response(status, json=stored(json.loads(req.content)))


def test_the_policy_table_lets_patients_create_and_update_observations_through_the_notebook_rule() -> None:
    policy = policy_for("Observation")
    assert policy is not None and policy.patient_writes == {CREATE, UPDATE}


async def test_a_symptom_is_stored_private_about_the_patient_and_written_by_them(
        harness: Harness, ehr: respx.MockRouter) -> None:
    post = ehr.post("/Observation").mock(side_effect=echo())
    r = await send(harness, "POST", "/fhir/Observation", entry())
    assert r.status_code == 201, r.text
    sent = json.loads(post.calls.last.request.content)
    assert sent["status"] == "preliminary" and sent["valueString"] == "Headache after lunch"
    assert sent["subject"] == {"reference": f"Patient/{PT}"} and sent["performer"] == [{"reference": f"Patient/{PT}"}]
    assert {c["coding"][0]["code"] for c in sent["category"]} == {"survey", "health-notebook"}
    assert sent["code"]["coding"][0] == {"system": "http://loinc.org", "code": "75325-1", "display": "Symptom"}
    assert sent["component"][0]["valueCodeableConcept"]["coding"][0]["code"] == "6736007"  # moderate
    assert sent["effectiveDateTime"] == TODAY.isoformat() and sent["issued"]
    # A retry of the same form finds the first entry (conditional create on the entry's identifier).
    assert post.calls.last.request.headers["If-None-Exist"] == (
        f"identifier=urn:portal:notebook-entry|sub-{'a' * 16}&subject=Patient/{PT}")


async def test_a_side_effect_names_the_patients_own_medicine_as_the_record_names_it(
        harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/MedicationRequest/rx-1").respond(json=RX)
    post = ehr.post("/Observation").mock(side_effect=echo())
    r = await send(harness, "POST", "/fhir/Observation", entry("side-effect"))
    assert r.status_code == 201, r.text
    sent = json.loads(post.calls.last.request.content)
    assert sent["extension"] == [{"url": MEDICINE_EXTENSION, "valueReference": {
        "reference": "MedicationRequest/rx-1", "display": "Metformin 500 mg"}}]


async def test_a_question_is_tied_to_the_patients_own_visit(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Appointment/ap-1").respond(json=APPOINTMENT)
    post = ehr.post("/Observation").mock(side_effect=echo())
    r = await send(harness, "POST", "/fhir/Observation", entry("question", visit="ap-1", text="Can I stop it?"))
    assert r.status_code == 201, r.text
    sent = json.loads(post.calls.last.request.content)
    assert sent["extension"] == [{"url": VISIT_EXTENSION, "valueReference": {"reference": "Appointment/ap-1"}}]
    assert "component" not in sent and sent["valueString"] == "Can I stop it?"


async def test_a_caregiver_is_recorded_as_the_writer(harness: Harness, ehr: respx.MockRouter) -> None:
    post = ehr.post("/Observation").mock(side_effect=echo())
    body = {**entry(), "performer": [{"reference": "RelatedPerson/rp-7"}]}
    r = await send(harness, "POST", "/fhir/Observation", body, fhir_user="RelatedPerson/rp-7")
    assert r.status_code == 201, r.text
    assert json.loads(post.calls.last.request.content)["performer"] == [{"reference": "RelatedPerson/rp-7"}]


async def test_another_records_medicine_or_visit_answers_like_one_that_does_not_exist(
        harness: Harness, ehr: respx.MockRouter) -> None:
    theirs = {**RX, "id": "rx-9", "subject": {"reference": f"Patient/{OTHER}"}}
    ehr.get("/MedicationRequest/rx-9").respond(json=theirs)
    ehr.get("/MedicationRequest/rx-0").respond(404)
    ehr.get("/Appointment/ap-9").respond(json={**APPOINTMENT, "id": "ap-9", "participant": [
        {"actor": {"reference": f"Patient/{OTHER}"}, "status": "accepted"}]})
    post = ehr.post("/Observation").respond(201, json={})
    answers = [await send(harness, "POST", "/fhir/Observation", body) for body in (
        entry("side-effect", medicine="rx-9"), entry("question", visit="ap-9"))]
    missing = entry("side-effect")
    missing["extension"][0]["valueReference"]["reference"] = "MedicationRequest/rx-0"
    answers.append(await send(harness, "POST", "/fhir/Observation", missing))
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert "rx-9" not in answers[0].text and not post.called


@pytest.mark.parametrize(("change", "words"), [
    ({"subject": {"reference": f"Patient/{OTHER}"}}, "your own record"),
    ({"performer": [{"reference": "Practitioner/prac-01"}]}, "performer must be you"),
    ({"status": "amended"}, "private (preliminary) or shared"),
    ({"status": "cancelled"}, "private (preliminary) or shared"),
    ({"valueString": "   "}, "Write something"),
    ({"valueString": "x" * 501}, "500 characters"),
    ({"effectiveDateTime": "2999-01-01"}, "future"),
    ({"component": []}, "one severity"),
    ({"interpretation": [{"text": "High"}]}, "interpretation"),
    ({"code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]}}, "what kind of entry"),
])
async def test_anything_a_notebook_entry_may_not_say_is_refused_and_nothing_is_written(
        harness: Harness, ehr: respx.MockRouter, change: dict, words: str) -> None:
    post = ehr.post("/Observation").respond(201, json={})
    r = await send(harness, "POST", "/fhir/Observation", {**entry(), **change})
    assert r.status_code == 422, r.text
    assert r.json()["resourceType"] == "OperationOutcome" and words in r.json()["issue"][0]["diagnostics"]
    assert not post.called


async def test_an_entry_is_changed_and_shared_with_if_match_and_a_shared_change_reads_amended(
        harness: Harness, ehr: respx.MockRouter) -> None:
    current = stored({**entry(), "issued": "2026-01-01T10:00:00+00:00"}, version="3")
    ehr.get("/Observation/nb-1").respond(json=current)
    put = ehr.put("/Observation/nb-1").mock(side_effect=echo(200))
    r = await send(harness, "PUT", "/fhir/Observation/nb-1", shared(current), **{"If-Match": 'W/"3"'})
    assert r.status_code == 200, r.text
    assert json.loads(put.calls.last.request.content)["status"] == "final"
    assert put.calls.last.request.headers["If-Match"] == 'W/"3"'
    # Once shared, a change to the words is marked as changed after sharing; going private is refused.
    ehr.get("/Observation/nb-1").respond(json={**current, "status": "final"})
    r = await send(harness, "PUT", "/fhir/Observation/nb-1", {**shared(current), "valueString": "Worse now"})
    assert r.status_code == 200 and json.loads(put.calls.last.request.content)["status"] == "amended"
    calls = put.call_count
    r = await send(harness, "PUT", "/fhir/Observation/nb-1", {**shared(current), "status": "preliminary"})
    assert r.status_code == 422 and "can't be made private again" in r.json()["issue"][0]["diagnostics"]
    assert put.call_count == calls


async def test_clinic_results_another_writers_entries_and_kind_changes_are_refused(
        harness: Harness, ehr: respx.MockRouter) -> None:
    lab = obs("lab-1", PT)
    caregivers = stored({**entry(), "performer": [{"reference": "RelatedPerson/rp-7"}]}, "nb-2")
    ehr.get("/Observation/lab-1").respond(json=lab)
    ehr.get("/Observation/nb-2").respond(json=caregivers)
    ehr.get("/Observation/nb-1").respond(json=stored(entry()))
    put = ehr.put(url__regex=r"/Observation/.*").respond(200, json={})
    as_entry = {**entry(), "id": "lab-1"}
    assert (await send(harness, "PUT", "/fhir/Observation/lab-1", as_entry)).status_code == 403
    assert (await send(harness, "PUT", "/fhir/Observation/lab-1", {**lab, "valueString": "fine"})).status_code == 403
    r = await send(harness, "PUT", "/fhir/Observation/nb-2", {**caregivers, "valueString": "Mine now"})
    assert r.status_code == 403 and "your own health notebook" in r.json()["issue"][0]["diagnostics"]
    r = await send(harness, "PUT", "/fhir/Observation/nb-1", {**entry("question"), "id": "nb-1"})
    assert r.status_code == 422 and "different kind" in r.json()["issue"][0]["diagnostics"]
    assert not put.called


async def test_a_token_without_the_observation_write_scope_cannot_write(harness: Harness,
                                                                        ehr: respx.MockRouter) -> None:
    post = ehr.post("/Observation").respond(201, json={})
    async with harness.client() as c:
        r = await c.post("/fhir/Observation", content=json.dumps(entry()), headers={
            "Authorization": f"Bearer {harness.token('launch/patient patient/*.rs', patient=PT)}",
            "Content-Type": "application/fhir+json"})
    assert r.status_code == 403 and not post.called
