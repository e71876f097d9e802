"""The writes a patient may make, and every refusal, with respx as the EHR."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from .conftest import Harness, obs

PT = "pt-0001"
OTHER = "pt-0002"
SCOPES = "launch/patient patient/*.cruds"
FUTURE = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)


def patient(pid: str = PT, **extra) -> dict:
    return {"resourceType": "Patient", "id": pid, "meta": {"versionId": "4"}, "birthDate": "1980-02-03",
            "name": [{"family": "Rivera", "given": ["Ana"]}], "gender": "female",
            "identifier": [{"system": "http://hospital.example.org/mrn", "value": "MRN1"}],
            "generalPractitioner": [{"reference": "Practitioner/prac-01"}],
            "telecom": [{"system": "phone", "value": "555-0100"}], **extra}


def slot(sid: str, status: str = "free", start: datetime = FUTURE) -> dict:
    return {"resourceType": "Slot", "id": sid, "meta": {"versionId": "2"}, "schedule": {"reference": "Schedule/s1"},
            "status": status, "start": start.isoformat(), "end": (start + timedelta(minutes=20)).isoformat()}


async def send(h: Harness, method: str, path: str, body: object, **headers: str) -> httpx.Response:
    async with h.client() as c:
        return await c.request(method, path, content=json.dumps(body), headers={
            "Authorization": f"Bearer {h.token(SCOPES, patient=PT)}", "Content-Type": "application/fhir+json",
            **headers})


async def test_patient_may_not_create_clinic_observations(harness: Harness, ehr: respx.MockRouter) -> None:
    writes = ehr.route(method="POST").respond(201, json={})
    r = await send(harness, "POST", "/fhir/Observation", obs("new", PT))
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    assert not writes.called


async def test_contact_details_update_is_forwarded_with_if_match(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    put = ehr.put(f"/Patient/{PT}").respond(200, json=patient(telecom=[{"system": "phone", "value": "555-0199"}]))
    body = patient(telecom=[{"system": "phone", "value": "555-0199"}])
    r = await send(harness, "PUT", f"/fhir/Patient/{PT}", body)
    assert r.status_code == 200, r.text
    sent = json.loads(put.calls.last.request.content)
    assert sent["telecom"][0]["value"] == "555-0199" and sent["birthDate"] == "1980-02-03"
    assert put.calls.last.request.headers["If-Match"] == 'W/"4"'


@pytest.mark.parametrize("change", [{"birthDate": "1990-01-01"}, {"name": [{"family": "X"}]},
                                    {"identifier": []}, {"gender": "male"}])
async def test_identity_fields_are_refused_not_dropped(harness: Harness, ehr: respx.MockRouter, change) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    put = ehr.put(f"/Patient/{PT}").respond(200, json=patient())
    r = await send(harness, "PUT", f"/fhir/Patient/{PT}", {**patient(), **change})
    assert r.status_code == 422
    assert next(iter(change)) in r.json()["issue"][0]["diagnostics"]
    assert not put.called


async def test_stale_if_match_is_412(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    r = await send(harness, "PUT", f"/fhir/Patient/{PT}", patient(), **{"If-Match": 'W/"1"'})
    assert r.status_code == 412


async def test_updating_another_patient_is_404(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{OTHER}").respond(json=patient(OTHER))
    put = ehr.put(f"/Patient/{OTHER}").respond(200, json={})
    r = await send(harness, "PUT", f"/fhir/Patient/{OTHER}", patient(OTHER))
    assert r.status_code == 404 and OTHER not in r.json()["issue"][0]["diagnostics"].replace(f"Patient/{OTHER}", "")
    assert not put.called


def message(recipient: str = "Practitioner/prac-01") -> dict:
    return {"resourceType": "Communication", "status": "completed", "recipient": [{"reference": recipient}],
            "payload": [{"contentString": "Can I take ibuprofen with my new prescription?"}]}


def care_team(pid: str = PT, *members: str) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "CareTeam", "id": f"ct-{pid}", "status": "active", "subject": {"reference": f"Patient/{pid}"},
        "participant": [{"member": {"reference": m}} for m in members]}}]}


async def test_message_to_care_team_is_shaped_and_sent(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json=care_team(PT))
    post = ehr.post("/Communication").respond(201, json={**message(), "id": "c1", "meta": {"versionId": "1"},
                                                          "subject": {"reference": f"Patient/{PT}"}})
    r = await send(harness, "POST", "/fhir/Communication", message())
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "http://portal.test/fhir/Communication/c1/_history/1"
    sent = json.loads(post.calls.last.request.content)
    assert sent["subject"] == {"reference": f"Patient/{PT}"} and sent["sender"] == {"reference": f"Patient/{PT}"}
    assert sent["sent"]


async def test_message_to_someone_outside_the_care_team_is_refused(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json=care_team(PT, "Organization/org-team-care"))
    post = ehr.post("/Communication").respond(201, json={})
    for bad in ("Practitioner/prac-99", f"Patient/{OTHER}"):
        r = await send(harness, "POST", "/fhir/Communication", message(bad))
        assert r.status_code == 422 and "care team" in r.json()["issue"][0]["diagnostics"]
    assert not post.called


def med(mid: str, pid: str, status: str = "active") -> dict:
    return {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
            "subject": {"reference": f"Patient/{pid}"}, "requester": {"reference": "Practitioner/prac-01"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "197361", "display": "Amlodipine 5 MG"}]}}


def refill(basis: str) -> dict:
    return {"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
            "subject": {"reference": f"Patient/{PT}"}, "basedOn": [{"reference": f"MedicationRequest/{basis}"}],
            "medicationCodeableConcept": {"text": "refill"}}


async def test_refill_of_own_active_prescription_is_conditional(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/MedicationRequest/m1").respond(json=med("m1", PT))
    ehr.get("/MedicationDispense").respond(json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    post = ehr.post("/MedicationRequest").respond(201, json={**med("r1", PT, "draft"), "meta": {"versionId": "1"}})
    r = await send(harness, "POST", "/fhir/MedicationRequest", refill("m1"))
    assert r.status_code == 201, r.text
    req = post.calls.last.request
    assert "urn:portal:refill-request|m1" in req.headers["If-None-Exist"]
    sent = json.loads(req.content)
    assert sent["basedOn"] == [{"reference": "MedicationRequest/m1"}]
    assert sent["medicationCodeableConcept"]["coding"][0]["code"] == "197361"


@pytest.mark.parametrize(("owner", "status", "code"), [(OTHER, "active", 404), (PT, "stopped", 422)])
async def test_refill_refusals(harness: Harness, ehr: respx.MockRouter, owner: str, status: str, code: int) -> None:
    ehr.get("/MedicationRequest/m2").respond(json=med("m2", owner, status))
    post = ehr.post("/MedicationRequest").respond(201, json={})
    r = await send(harness, "POST", "/fhir/MedicationRequest", refill("m2"))
    assert r.status_code == code
    assert not post.called


def booking(sid: str) -> dict:
    return {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{sid}"}],
            "participant": [{"actor": {"reference": f"Patient/{PT}"}, "status": "accepted"}]}


async def test_booking_is_one_transaction_guarded_by_if_match(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Slot/s1").respond(json=slot("s1"))
    ehr.get("/Schedule/s1").respond(json={"resourceType": "Schedule", "id": "s1",
                                          "actor": [{"reference": "Practitioner/prac-01", "display": "Dr. Lee"}]})
    tx = ehr.post("").respond(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "200 OK", "location": "Slot/s1/_history/3"}},
        {"response": {"status": "201 Created", "location": "Appointment/a1/_history/1"}}]})
    ehr.get("/Appointment/a1").respond(json={**booking("s1"), "id": "a1", "meta": {"versionId": "1"}})
    r = await send(harness, "POST", "/fhir/Appointment", booking("s1"))
    assert r.status_code == 201, r.text
    entries = json.loads(tx.calls.last.request.content)["entry"]
    assert entries[0]["request"] == {"method": "PUT", "url": "Slot/s1", "ifMatch": 'W/"2"'}
    assert entries[0]["resource"]["status"] == "busy"
    assert entries[1]["resource"]["participant"][1]["actor"] == {"reference": "Practitioner/prac-01",
                                                                 "display": "Dr. Lee"}  # named, for the pages


async def test_lost_race_is_409_and_writes_nothing_else(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Slot/s1").respond(json=slot("s1"))
    ehr.get("/Schedule/s1").respond(404)
    ehr.post("").respond(412, json={"resourceType": "OperationOutcome", "issue": []})
    appointment_posts = ehr.post("/Appointment").respond(201, json={})
    r = await send(harness, "POST", "/fhir/Appointment", booking("s1"))
    assert r.status_code == 409 and "taken" in r.json()["issue"][0]["diagnostics"]
    assert not appointment_posts.called


@pytest.mark.parametrize("bad_slot", [slot("s2", status="busy"),
                                      slot("s2", start=datetime.now(UTC) - timedelta(hours=1))])
async def test_busy_or_past_slot_is_refused(harness: Harness, ehr: respx.MockRouter, bad_slot: dict) -> None:
    ehr.get("/Slot/s2").respond(json=bad_slot)
    ehr.get("/Schedule/s1").respond(404)
    tx = ehr.post("").respond(200, json={})
    r = await send(harness, "POST", "/fhir/Appointment", booking("s2"))
    assert r.status_code == 422
    assert not tx.called


async def test_cancel_frees_the_slot_in_the_same_transaction(harness: Harness, ehr: respx.MockRouter) -> None:
    current = {**booking("s1"), "id": "a1", "meta": {"versionId": "5"}, "start": FUTURE.isoformat(),
               "end": (FUTURE + timedelta(minutes=20)).isoformat()}
    ehr.get("/Appointment/a1").respond(json=current)
    ehr.get("/Slot/s1").respond(json=slot("s1", "busy"))
    tx = ehr.post("").respond(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})
    r = await send(harness, "PUT", "/fhir/Appointment/a1", {**current, "status": "cancelled"})
    assert r.status_code == 200, r.text
    entries = json.loads(tx.calls.last.request.content)["entry"]
    assert entries[0]["resource"]["status"] == "free" and entries[0]["request"]["ifMatch"] == 'W/"2"'
    assert entries[1]["resource"]["status"] == "cancelled" and entries[1]["request"]["ifMatch"] == 'W/"5"'


async def test_body_over_the_limit_is_413(harness: Harness) -> None:
    # (A message has its own, larger limit: it may carry files.)
    big = patient(telecom=[{"system": "phone", "value": "x" * 20_000}])
    r = await send(harness, "PUT", f"/fhir/Patient/{PT}", big)
    assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"


async def test_invalid_fhir_is_422_with_the_reason(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    r = await send(harness, "POST", "/fhir/Communication", {"resourceType": "Communication", "status": 12})
    assert r.status_code == 422
    assert "status" in r.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("change", ["cancel", "move"])
async def test_changes_within_the_clinics_notice_are_refused_with_the_reason(harness: Harness, ehr: respx.MockRouter,
                                                                           change: str) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=20)).replace(microsecond=0)
    current = {**booking("s1"), "id": "a1", "meta": {"versionId": "5"}, "start": soon.isoformat(),
               "end": (soon + timedelta(minutes=20)).isoformat()}
    ehr.get("/Appointment/a1").respond(json=current)
    ehr.get("/Slot/s1").respond(json=slot("s1", "busy", soon))
    ehr.get("/Slot/s3").respond(json=slot("s3"))
    tx = ehr.post("").respond(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})
    proposed = {**current, "status": "cancelled"} if change == "cancel" else {**current,
                                                                               "slot": [{"reference": "Slot/s3"}]}
    r = await send(harness, "PUT", "/fhir/Appointment/a1", proposed)
    assert r.status_code == 422
    assert "in the last 24 hours before they start" in r.json()["issue"][0]["diagnostics"]
    assert not tx.called


async def test_moving_to_a_free_slot_frees_the_old_one_in_the_same_transaction(harness: Harness,
                                                                               ehr: respx.MockRouter) -> None:
    current = {**booking("s1"), "id": "a1", "meta": {"versionId": "5"}, "start": FUTURE.isoformat(),
               "end": (FUTURE + timedelta(minutes=20)).isoformat()}
    later = FUTURE + timedelta(days=1)
    ehr.get("/Appointment/a1").respond(json=current)
    ehr.get("/Slot/s1").respond(json=slot("s1", "busy"))
    ehr.get("/Slot/s3").respond(json=slot("s3", start=later))
    tx = ehr.post("").respond(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})
    r = await send(harness, "PUT", "/fhir/Appointment/a1", {**current, "slot": [{"reference": "Slot/s3"}]})
    assert r.status_code == 200, r.text
    entries = json.loads(tx.calls.last.request.content)["entry"]
    assert [e["resource"]["status"] for e in entries] == ["free", "busy", "booked"]
    assert entries[2]["resource"]["start"] == later.isoformat()
    assert [e["request"]["ifMatch"] for e in entries] == ['W/"2"', 'W/"2"', 'W/"5"']


async def test_a_made_up_slot_or_another_patients_appointment_writes_nothing(harness: Harness,
                                                                           ehr: respx.MockRouter) -> None:
    ehr.get("/Slot/made-up").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    theirs = {**booking("s1"), "id": "a9", "meta": {"versionId": "1"}, "start": FUTURE.isoformat(),
              "participant": [{"actor": {"reference": f"Patient/{OTHER}"}, "status": "accepted"}]}
    ehr.get("/Appointment/a9").respond(json=theirs)
    tx = ehr.post("").respond(200, json={})
    made_up = await send(harness, "POST", "/fhir/Appointment", booking("made-up"))
    assert made_up.status_code == 422 and "does not exist" in made_up.json()["issue"][0]["diagnostics"]
    other = await send(harness, "PUT", "/fhir/Appointment/a9", {**theirs, "status": "cancelled"})
    assert other.status_code == 404
    assert not tx.called
    assert [a.outcome for a in harness.audit][-2:] == ["4", "4"]  # both refusals are in the audit trail


async def test_a_visit_type_the_slot_does_not_offer_is_refused(harness: Harness, ehr: respx.MockRouter) -> None:
    offered = {"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/visit-type", "code": "sick"}]}
    ehr.get("/Slot/s1").respond(json={**slot("s1"), "serviceType": [offered]})
    ehr.get("/Schedule/s1").respond(404)
    tx = ehr.post("").respond(200, json={})
    asked = {"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/visit-type", "code": "physical"}]}
    r = await send(harness, "POST", "/fhir/Appointment", {**booking("s1"), "serviceType": [asked]})
    assert r.status_code == 422 and "not offered for this kind of visit" in r.json()["issue"][0]["diagnostics"]
    assert not tx.called
