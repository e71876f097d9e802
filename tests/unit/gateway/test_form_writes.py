"""The form rules of the policy table, with respx as the EHR: a patient saves and sends answers to one of
the clinic's published forms about their own record, for their own visit, and never changes a sent form."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from fhir_gateway.policy import CREATE, UPDATE, policy_for
from fixtures.practice import VISIT_TYPES
from fixtures.questionnaires import questionnaire_resources
from mappers.inbound import APPOINTMENT_EXTENSION
from mappers.questionnaires import canonical

from .conftest import Harness, bundle

PT, OTHER = "pt-0001", "pt-0002"
SCOPES = "launch/patient patient/*.rs patient/QuestionnaireResponse.cu"
CHECKIN = next(f for f in questionnaire_resources(VISIT_TYPES) if f["name"] == "PrevisitCheckin")
ANSWERS = [{"linkId": "reason", "answer": [{"valueString": "Knee"}]},
           {"linkId": "pain", "answer": [{"valueInteger": 2}]},
           {"linkId": "meds-changed", "answer": [{"valueBoolean": False}]},
           {"linkId": "er-visit", "answer": [{"valueBoolean": False}]},
           {"linkId": "phq2", "item": [
               {"linkId": "phq2-interest", "answer": [{"valueCoding": {"system": "http://loinc.org",
                                                                       "code": "LA6568-5"}}]},
               {"linkId": "phq2-down", "answer": [{"valueCoding": {"system": "http://loinc.org",
                                                                   "code": "LA6568-5"}}]}]},
           {"linkId": "insurance-same", "answer": [{"valueBoolean": True}]}]


def answers(status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "questionnaire": canonical(CHECKIN), "status": status,
            "identifier": {"system": "urn:portal:form-response", "value": "sub-1234567890abcdef"},
            "subject": {"reference": f"Patient/{PT}"}, "item": ANSWERS, **extra}


def stored(status: str = "in-progress", pid: str = PT) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "id": "qr-1", "meta": {"versionId": "2"},
            "questionnaire": canonical(CHECKIN), "status": status, "subject": {"reference": f"Patient/{pid}"}}


def visit_of(pid: str) -> dict[str, Any]:
    return {"resourceType": "Appointment", "id": "ap-1", "status": "booked",
            "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"}]}


def for_visit() -> list[dict[str, Any]]:
    return [{"url": APPOINTMENT_EXTENSION, "valueReference": {"reference": "Appointment/ap-1"}}]


async def send(h: Harness, method: str, path: str, body: object, patient_id: str = PT) -> httpx.Response:
    async with h.client() as c:
        return await c.request(method, path, content=json.dumps(body), headers={
            "Authorization": f"Bearer {h.token(SCOPES, patient=patient_id)}",
            "Content-Type": "application/fhir+json"})


def published(ehr: respx.MockRouter, *forms: dict[str, Any]) -> respx.Route:
    return ehr.get("/Questionnaire").respond(json=bundle(*forms))


def test_the_policy_table_lets_patients_create_and_update_form_answers_only() -> None:
    policy = policy_for("QuestionnaireResponse")
    assert policy and policy.patient_writes == {CREATE, UPDATE}
    questionnaire = policy_for("Questionnaire")
    assert questionnaire and not questionnaire.patient_writes


async def test_a_sent_check_in_for_the_patients_own_visit_is_stored_as_checked(
        harness: Harness, ehr: respx.MockRouter) -> None:
    search = published(ehr, CHECKIN)
    ehr.get("/Appointment/ap-1").respond(json=visit_of(PT))
    post = ehr.post("/QuestionnaireResponse").respond(201, json={**answers(), "id": "qr-9"})
    r = await send(harness, "POST", "/fhir/QuestionnaireResponse", answers(extension=for_visit()))
    assert r.status_code == 201, r.text
    assert ("url", CHECKIN["url"]) in search.calls.last.request.url.params.multi_items()
    assert search.calls.last.request.url.params["status"] == "active"
    sent = json.loads(post.calls.last.request.content)
    assert sent["status"] == "completed" and sent["subject"] == {"reference": f"Patient/{PT}"}
    assert sent["extension"] == for_visit()
    assert sent["item"][0] == {"linkId": "reason", "text": CHECKIN["item"][0]["text"],
                               "answer": [{"valueString": "Knee"}]}  # the form's own words
    assert post.calls.last.request.headers["If-None-Exist"] == (
        f"identifier=urn:portal:form-response|sub-1234567890abcdef&subject=Patient/{PT}")
    assert "QuestionnaireResponse/qr-9" in {ref for rec in harness.audit for ref in rec.entity_refs}


async def test_a_form_the_clinic_does_not_publish_is_refused(harness: Harness, ehr: respx.MockRouter) -> None:
    published(ehr)  # no such active form
    post = ehr.post("/QuestionnaireResponse").respond(201, json={})
    r = await send(harness, "POST", "/fhir/QuestionnaireResponse",
                   answers(questionnaire="http://elsewhere.example/Questionnaire/phish|1"))
    assert r.status_code == 422 and "not one your clinic offers" in r.json()["issue"][0]["diagnostics"]
    assert not post.called


async def test_another_patients_visit_or_record_is_refused_and_nothing_written(
        harness: Harness, ehr: respx.MockRouter) -> None:
    published(ehr, CHECKIN)
    ehr.get("/Appointment/ap-1").respond(json=visit_of(OTHER))
    post = ehr.post("/QuestionnaireResponse").respond(201, json={})
    r = await send(harness, "POST", "/fhir/QuestionnaireResponse", answers(extension=for_visit()))
    assert r.status_code == 404 and OTHER not in r.text
    assert harness.audit[-1].outcome != "0"
    r = await send(harness, "POST", "/fhir/QuestionnaireResponse",
                   answers(subject={"reference": f"Patient/{OTHER}"}))
    assert r.status_code in (403, 422), r.text
    assert not post.called


async def test_only_a_draft_or_a_sent_form_and_sending_needs_every_required_answer(
        harness: Harness, ehr: respx.MockRouter) -> None:
    published(ehr, CHECKIN)
    post = ehr.post("/QuestionnaireResponse").respond(201, json={**answers("in-progress"), "id": "qr-2"})
    r = await send(harness, "POST", "/fhir/QuestionnaireResponse", answers(status="amended"))
    assert r.status_code == 422 and "draft" in r.json()["issue"][0]["diagnostics"]
    r = await send(harness, "POST", "/fhir/QuestionnaireResponse", answers(item=ANSWERS[:1]))
    assert r.status_code == 422 and "Please answer this question" in r.json()["issue"][0]["diagnostics"]
    assert not post.called
    draft = await send(harness, "POST", "/fhir/QuestionnaireResponse", answers(status="in-progress", item=ANSWERS[:1]))
    assert draft.status_code == 201, draft.text
    assert json.loads(post.calls.last.request.content)["item"] == [{**ANSWERS[0], "text": CHECKIN["item"][0]["text"]}]


async def test_a_draft_is_saved_again_in_place_and_then_sent(harness: Harness, ehr: respx.MockRouter) -> None:
    published(ehr, CHECKIN)
    ehr.get("/QuestionnaireResponse/qr-1").respond(json=stored())
    put = ehr.put("/QuestionnaireResponse/qr-1").respond(200, json={**stored("completed"), "item": ANSWERS})
    r = await send(harness, "PUT", "/fhir/QuestionnaireResponse/qr-1", {**answers(), "id": "qr-1"})
    assert r.status_code == 200, r.text
    assert put.calls.last.request.headers["If-Match"] == 'W/"2"'
    assert json.loads(put.calls.last.request.content)["status"] == "completed"


async def test_a_sent_form_or_another_patients_draft_is_never_changed(
        harness: Harness, ehr: respx.MockRouter) -> None:
    published(ehr, CHECKIN)
    put = ehr.put("/QuestionnaireResponse/qr-1").respond(200, json={})
    ehr.get("/QuestionnaireResponse/qr-1").respond(json=stored("completed"))
    r = await send(harness, "PUT", "/fhir/QuestionnaireResponse/qr-1", {**answers("in-progress"), "id": "qr-1"})
    assert r.status_code == 422 and "already sent" in r.json()["issue"][0]["diagnostics"]
    ehr.get("/QuestionnaireResponse/qr-1").respond(json=stored(pid=OTHER))
    r = await send(harness, "PUT", "/fhir/QuestionnaireResponse/qr-1", {**answers(), "id": "qr-1"})
    assert r.status_code == 404 and OTHER not in r.text
    assert not put.called


async def test_a_draft_cannot_be_moved_to_another_visit(harness: Harness, ehr: respx.MockRouter) -> None:
    published(ehr, CHECKIN)
    ehr.get("/QuestionnaireResponse/qr-1").respond(json=stored())
    ehr.get("/Appointment/ap-1").respond(json=visit_of(PT))
    put = ehr.put("/QuestionnaireResponse/qr-1").respond(200, json={})
    r = await send(harness, "PUT", "/fhir/QuestionnaireResponse/qr-1",
                   {**answers(), "id": "qr-1", "extension": for_visit()})
    assert r.status_code == 422 and "different visit" in r.json()["issue"][0]["diagnostics"]
    assert not put.called
