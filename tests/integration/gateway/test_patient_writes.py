"""Patient writes against the real EHR: messages, refills, contact updates, booking and the slot race."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mappers.medications import medication
from tests.conftest import GatewayServer

from .helpers import auth, ehr_search, mint

pytestmark = pytest.mark.integration

OWNER = "pt-0003"
SCOPES = "launch/patient patient/*.cruds"


def ehr_get(base: str, path: str) -> dict:
    return httpx.get(f"{base}/{path}", timeout=30).json()


def free_future_slots(base: str, n: int) -> list[dict]:
    # Two days ahead at least: the clinic's notice rule refuses online changes in the last 24 hours.
    now = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
    slots = ehr_search(base, "Slot", {"status": "free", "start": f"gt{now}", "_sort": "start"})
    assert len(slots) >= n, "fixtures should leave free slots in the next 30 days"
    # Any of them: two test runs sharing one EHR must not race each other for the first free slot.
    return random.sample(slots, n)


async def test_message_reply_and_idempotent_retry(gateway: GatewayServer, ehr_base_url: str) -> None:
    patient = ehr_get(ehr_base_url, f"Patient/{OWNER}")
    gp = patient["generalPractitioner"][0]["reference"]
    body = {"resourceType": "Communication", "status": "completed", "recipient": [{"reference": gp}],
            "payload": [{"contentString": "Is my lab result normal?"}]}
    key = uuid.uuid4().hex
    token = mint(gateway, SCOPES, patient=OWNER)
    before = len(ehr_search(ehr_base_url, "Communication", {"subject": f"Patient/{OWNER}"}))
    async with httpx.AsyncClient(base_url=gateway.fhir, headers={**auth(token), "Idempotency-Key": key},
                                 timeout=60) as c:
        first = await c.post("/Communication", json=body)
        again = await c.post("/Communication", json=body)
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert first.headers["location"].startswith(gateway.fhir + "/Communication/")
    after = ehr_search(ehr_base_url, "Communication", {"subject": f"Patient/{OWNER}"})
    assert len(after) == before + 1
    stored = ehr_get(ehr_base_url, f"Communication/{first.json()['id']}")
    assert stored["sender"]["reference"] == f"Patient/{OWNER}" and stored["subject"]["reference"] == f"Patient/{OWNER}"


async def test_refill_request_once_per_prescription(gateway: GatewayServer, ehr_base_url: str) -> None:
    active = ehr_search(ehr_base_url, "MedicationRequest",
                        {"patient": f"Patient/{OWNER}", "status": "active", "intent": "order"})
    fills = ehr_search(ehr_base_url, "MedicationDispense", {"patient": f"Patient/{OWNER}"})
    active = [rx for rx in active if medication(rx, dispenses=fills).refills_left != 0]
    assert active, "fixture patient should have an active prescription with a refill left"
    body = {"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
            "subject": {"reference": f"Patient/{OWNER}"},
            "basedOn": [{"reference": f"MedicationRequest/{active[0]['id']}"}],
            "medicationCodeableConcept": {"text": "refill"}}
    token = mint(gateway, SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        first = await c.post("/MedicationRequest", json=body)
        second = await c.post("/MedicationRequest", json=body)
    # 201 on a fresh EHR; 200 with the same open request when an earlier run already asked for this refill.
    assert first.status_code in (200, 201), first.text
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    drafts = ehr_search(ehr_base_url, "MedicationRequest",
                        {"identifier": f"urn:portal:refill-request|{active[0]['id']}"})
    assert len(drafts) == 1


async def test_contact_update_allowed_identity_change_refused(gateway: GatewayServer, ehr_base_url: str) -> None:
    token = mint(gateway, SCOPES, patient=OWNER)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        current = (await c.get(f"/Patient/{OWNER}")).json()
        phone = f"555-{uuid.uuid4().int % 10000:04d}"
        changed = {**current, "telecom": [{"system": "phone", "value": phone, "use": "mobile"}]}
        ok = await c.put(f"/Patient/{OWNER}", json=changed, headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'})
        assert ok.status_code == 200, ok.text
        renamed = {**ok.json(), "birthDate": "1901-01-01"}
        refused = await c.put(f"/Patient/{OWNER}", json=renamed)
        assert refused.status_code == 422 and "birthDate" in refused.text
    stored = ehr_get(ehr_base_url, f"Patient/{OWNER}")
    assert stored["telecom"][0]["value"] == phone and stored["birthDate"] == current["birthDate"]


async def test_book_reschedule_cancel(gateway: GatewayServer, ehr_base_url: str) -> None:
    first_slot, second_slot = free_future_slots(ehr_base_url, 2)
    token = mint(gateway, SCOPES, patient=OWNER)
    body = {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{first_slot['id']}"}],
            "participant": [{"actor": {"reference": f"Patient/{OWNER}"}, "status": "accepted"}],
            "description": "Follow-up"}
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        booked = await c.post("/Appointment", json=body)
        assert booked.status_code == 201, booked.text
        appt = booked.json()
        assert ehr_get(ehr_base_url, f"Slot/{first_slot['id']}")["status"] == "busy"
        moved = await c.put(f"/Appointment/{appt['id']}",
                            json={**appt, "slot": [{"reference": f"Slot/{second_slot['id']}"}]})
        assert moved.status_code == 200, moved.text
        assert ehr_get(ehr_base_url, f"Slot/{first_slot['id']}")["status"] == "free"
        assert ehr_get(ehr_base_url, f"Slot/{second_slot['id']}")["status"] == "busy"
        cancelled = await c.put(f"/Appointment/{appt['id']}", json={**moved.json(), "status": "cancelled"})
        assert cancelled.status_code == 200, cancelled.text
    assert ehr_get(ehr_base_url, f"Slot/{second_slot['id']}")["status"] == "free"
    assert ehr_get(ehr_base_url, f"Appointment/{appt['id']}")["status"] == "cancelled"


async def test_twenty_patients_race_for_one_slot(gateway: GatewayServer, ehr_base_url: str) -> None:
    (slot,) = free_future_slots(ehr_base_url, 1)
    patients = [f"pt-{i:04d}" for i in range(1, 21)]

    async def book(c: httpx.AsyncClient, pid: str) -> int:
        body = {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{slot['id']}"}],
                "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"}]}
        r = await c.post("/Appointment", json=body, headers=auth(mint(gateway, SCOPES, patient=pid)))
        assert r.headers["content-type"].startswith("application/fhir+json")
        return r.status_code

    async with httpx.AsyncClient(base_url=gateway.fhir, timeout=120) as c:
        codes = await asyncio.gather(*(book(c, p) for p in patients))
    assert codes.count(201) == 1, codes
    assert all(code in (409, 422) for code in codes if code != 201), codes
    assert ehr_get(ehr_base_url, f"Slot/{slot['id']}")["status"] == "busy"
    booked = ehr_search(ehr_base_url, "Appointment", {"slot": f"Slot/{slot['id']}", "status": "booked"})
    assert len(booked) == 1


async def test_patient_cannot_write_other_types_or_for_others(gateway: GatewayServer, ehr_base_url: str) -> None:
    token = mint(gateway, SCOPES, patient=OWNER)
    before = len(ehr_search(ehr_base_url, "Observation", {"patient": f"Patient/{OWNER}"}))
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "self-reported"},
           "subject": {"reference": f"Patient/{OWNER}"}}
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        assert (await c.post("/Observation", json=obs)).status_code == 403
        other = await c.put("/Patient/pt-0004", json={"resourceType": "Patient", "id": "pt-0004"})
        assert other.status_code == 404
    assert len(ehr_search(ehr_base_url, "Observation", {"patient": f"Patient/{OWNER}"})) == before
