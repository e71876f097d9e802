"""Answers to the clinic's forms against the real EHR: a draft saved once however often it is retried,
saved again in place, sent, and then never changed; another patient's visit and a form the clinic does
not publish are refused with nothing written."""

from __future__ import annotations

import uuid

import httpx
import pytest

from mappers.inbound import APPOINTMENT_EXTENSION
from tests.conftest import GatewayServer

from .helpers import auth, ehr_search, mint

pytestmark = pytest.mark.integration

OWNER, OTHER = "pt-0012", "pt-0011"
SCOPES = "launch/patient patient/*.rs patient/QuestionnaireResponse.cu"


def checkin(base: str) -> dict:
    found = ehr_search(base, "Questionnaire", {"url": "http://hospital.example.org/fhir/Questionnaire/previsit-checkin"})
    return found[0]


def answers(form: dict, status: str, key: str, **extra: object) -> dict:
    items = [{"linkId": "reason", "answer": [{"valueString": "Follow-up on my knee"}]}]
    if status == "completed":
        items += [{"linkId": "pain", "answer": [{"valueInteger": 2}]},
                  {"linkId": "meds-changed", "answer": [{"valueBoolean": False}]},
                  {"linkId": "er-visit", "answer": [{"valueBoolean": False}]},
                  {"linkId": "phq2", "item": [
                      {"linkId": link, "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6568-5"}}]}
                      for link in ("phq2-interest", "phq2-down")]},
                  {"linkId": "insurance-same", "answer": [{"valueBoolean": True}]}]
    return {"resourceType": "QuestionnaireResponse", "questionnaire": f"{form['url']}|{form['version']}",
            "status": status, "identifier": {"system": "urn:portal:form-response", "value": key},
            "subject": {"reference": f"Patient/{OWNER}"}, "item": items, **extra}


def stored(base: str, key: str) -> list[dict]:
    return ehr_search(base, "QuestionnaireResponse", {"identifier": f"urn:portal:form-response|{key}"})


async def test_a_draft_is_saved_once_saved_again_in_place_sent_and_then_frozen(
        gateway: GatewayServer, ehr_base_url: str) -> None:
    form, key = checkin(ehr_base_url), uuid.uuid4().hex
    token = mint(gateway, SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        draft = answers(form, "in-progress", key)
        first = await c.post("/QuestionnaireResponse", json=draft, headers={"Idempotency-Key": f"form-{key}"})
        again = await c.post("/QuestionnaireResponse", json=draft, headers={"Idempotency-Key": f"form-{key}"})
        assert first.status_code == 201, first.text
        assert again.json()["id"] == first.json()["id"]
        assert len(stored(ehr_base_url, key)) == 1
        rid, version = first.json()["id"], first.json()["meta"]["versionId"]
        sent = await c.put(f"/QuestionnaireResponse/{rid}", json={**answers(form, "completed", key), "id": rid},
                           headers={"If-Match": f'W/"{version}"', "Idempotency-Key": f"send-{key}"})
        assert sent.status_code == 200, sent.text
        changed = await c.put(f"/QuestionnaireResponse/{rid}", json={**answers(form, "in-progress", key), "id": rid},
                              headers={"Idempotency-Key": f"late-{key}"})
        assert changed.status_code == 422 and "already sent" in changed.json()["issue"][0]["diagnostics"]
    [kept] = stored(ehr_base_url, key)
    assert kept["id"] == rid and kept["status"] == "completed"
    assert kept["subject"]["reference"] == f"Patient/{OWNER}" and kept["author"]["reference"] == f"Patient/{OWNER}"
    assert {i["linkId"] for i in kept["item"]} >= {"reason", "pain", "phq2", "insurance-same"}


async def test_another_patients_visit_or_an_unpublished_form_writes_nothing(
        gateway: GatewayServer, ehr_base_url: str) -> None:
    form, key = checkin(ehr_base_url), uuid.uuid4().hex
    theirs = ehr_search(ehr_base_url, "Appointment", {"patient": f"Patient/{OTHER}", "_count": 1})[0]["id"]
    token = mint(gateway, SCOPES, patient=OWNER)
    pasted = [{"url": APPOINTMENT_EXTENSION, "valueReference": {"reference": f"Appointment/{theirs}"}}]
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        r = await c.post("/QuestionnaireResponse", json=answers(form, "completed", key, extension=pasted))
        assert r.status_code == 404 and OTHER not in r.text
        fake = {**answers(form, "completed", key), "questionnaire": form["url"].replace("previsit", "made-up")}
        r = await c.post("/QuestionnaireResponse", json=fake)
        assert r.status_code == 422 and "not one your clinic offers" in r.text
    assert stored(ehr_base_url, key) == []
