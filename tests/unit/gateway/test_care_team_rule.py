"""The care-team rule and the staff write rules, with respx as the EHR.

A practitioner sees a patient's data only when on that patient's care team (conftest: prac-01 cares for
pt-0001, not pt-0002); outside it they are told so (403 `security`) and may break the glass for one
patient with a reason, which the audit record carries. Staff replies and inbox work items are checked
by their own rules before anything reaches the EHR."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
import respx

from fhir_gateway.pipeline import AccessRecord

from .conftest import Harness, bundle, obs

PT, OTHER = "pt-0001", "pt-0002"
DOCTOR, NURSE = "Practitioner/prac-01", "Practitioner/prac-02"
STAFF = "openid fhirUser user/*.rs user/Communication.cu user/Task.cu"
GLASS = {"X-Break-Glass-Patient": OTHER, "X-Break-Glass-Reason": quote("Unconscious in the ER, no carer reachable")}


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


async def call(h: Harness, method: str, path: str, *, token: str | None = None, body: object = None,
               headers: dict[str, str] | None = None) -> tuple[httpx.Response, list[AccessRecord]]:
    before = len(h.audit)
    async with h.client() as c:
        r = await c.request(method, path, content=json.dumps(body).encode() if body is not None else None,
                            headers={"Authorization": f"Bearer {token or h.token(STAFF, fhir_user=DOCTOR)}",
                                     "Content-Type": "application/fhir+json", **(headers or {})})
    return r, h.audit[before:]


def code_of(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    return r.json()["issue"][0]["code"]


def message(mid: str, pid: str = PT, **extra: object) -> dict:
    return {"resourceType": "Communication", "id": mid, "meta": {"versionId": "1"}, "status": "completed",
            "subject": {"reference": f"Patient/{pid}"}, "sender": {"reference": f"Patient/{pid}"},
            "recipient": [{"reference": "Organization/org-team-care"}], "sent": "2026-11-30T09:00:00Z",
            "category": [{"text": "Medication question"}], "topic": {"text": "Pills"},
            "payload": [{"contentString": "Can I take these with food?"}], **extra}


def reply(thread: str = "m1", pid: str = PT, sender: str = DOCTOR, **extra: object) -> dict:
    return {"resourceType": "Communication", "status": "completed",
            "identifier": [{"system": "urn:portal:message", "value": "staff-reply-0001"}],
            "partOf": [{"reference": f"Communication/{thread}"}], "subject": {"reference": f"Patient/{pid}"},
            "sender": {"reference": sender}, "recipient": [{"reference": f"Patient/{pid}"}],
            "payload": [{"contentString": "Yes, with food is best."}], **extra}


def care_team_bundle(pid: str, *members: str) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "CareTeam", "id": "ct-9", "status": "active", "subject": {"reference": f"Patient/{pid}"},
        "participant": [{"member": {"reference": m}} for m in members]}}]}


def work(status: str = "in-progress", owner: str | None = NURSE, **extra: object) -> dict:
    task = {"resourceType": "Task", "status": status, "intent": "order",
            "identifier": [{"system": "urn:portal:inbox-work", "value": "m1"}],
            "code": {"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/staff-work",
                                 "code": "answer-message"}]},
            "focus": {"reference": "Communication/m1"}, "for": {"reference": f"Patient/{PT}"}, **extra}
    if owner:
        task["owner"] = {"reference": owner}
    return task


# -- reads ------------------------------------------------------------------------------------------------
async def test_a_practitioner_reads_their_patients_and_is_told_when_outside_the_care_team(
        h: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Observation/o1").respond(json=obs("o1", PT))
    ehr.get("/Observation/o9").respond(json=obs("o9", OTHER))
    r, records = await call(h, "GET", "/fhir/Observation/o1")
    assert r.status_code == 200 and records[0].caller.break_glass is None
    r, records = await call(h, "GET", "/fhir/Observation/o9")
    assert code_of(r, 403) == "security" and "care team" in r.text and "o9" not in r.text.replace("o9\"", "")
    assert records[0].outcome == "4"
    r, _ = await call(h, "GET", f"/fhir/Patient/{OTHER}/$everything")
    assert code_of(r, 403) == "security"


async def test_breaking_the_glass_opens_one_patient_and_the_audit_record_says_why(
        h: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Observation/o9").respond(json=obs("o9", OTHER))
    r, records = await call(h, "GET", "/fhir/Observation/o9", headers=GLASS)
    assert r.status_code == 200 and r.json()["id"] == "o9"
    glass = records[0].caller.break_glass
    assert glass is not None and glass.patient == f"Patient/{OTHER}" and glass.reason.startswith("Unconscious")
    assert records[0].patient_refs == [f"Patient/{OTHER}"]
    # The glass opens that patient only; a third patient stays closed.
    ehr.get("/Observation/o7").respond(json=obs("o7", "pt-0007"))
    r, _ = await call(h, "GET", "/fhir/Observation/o7", headers=GLASS)
    assert code_of(r, 403) == "security"


async def test_a_half_or_empty_break_the_glass_request_is_refused(h: Harness) -> None:
    for headers in ({"X-Break-Glass-Patient": OTHER}, {"X-Break-Glass-Reason": "urgent"},
                    {"X-Break-Glass-Patient": OTHER, "X-Break-Glass-Reason": "%20"},
                    {"X-Break-Glass-Patient": "../x", "X-Break-Glass-Reason": "urgent"}):
        r, records = await call(h, "GET", "/fhir/Observation/o9", headers=headers)
        assert code_of(r, 400) == "invalid", headers
        assert records[0].outcome == "4"


async def test_searches_keep_only_the_care_teams_patients(h: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Communication").respond(json=bundle(message("m1"), message("m2", OTHER)))
    r, records = await call(h, "GET", "/fhir/Communication?recipient=Organization/org-team-care")
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["m1"]
    assert records[0].patient_refs == [f"Patient/{PT}"]


async def test_a_patient_token_ignores_break_the_glass(h: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Observation/o9").respond(json=obs("o9", OTHER))
    patient = h.token("launch/patient patient/*.rs", patient=PT)
    r, _ = await call(h, "GET", "/fhir/Observation/o9", token=patient, headers=GLASS)
    assert code_of(r, 404) == "not-found"


async def test_the_care_team_is_asked_once_per_practitioner_not_per_request(h: Harness,
                                                                              ehr: respx.MockRouter) -> None:
    ehr.get("/Observation/o1").respond(json=obs("o1", PT))
    lookups = next(route for route in ehr.routes if "_elements" in repr(route.pattern))
    nurse = h.token(STAFF, fhir_user="Practitioner/prac-77")
    before = lookups.call_count
    for _ in range(3):
        r, _ = await call(h, "GET", "/fhir/Observation/o1", token=nurse)
        assert code_of(r, 403) == "security"  # prac-77 is on nobody's care team
    assert lookups.call_count - before == 1


# -- staff replies ------------------------------------------------------------------------------------------
async def test_a_reply_goes_into_the_thread_once_stamped_and_with_its_topic(h: Harness,
                                                                             ehr: respx.MockRouter) -> None:
    ehr.get("/Communication/m1").respond(json=message("m1"))
    post = ehr.post("/Communication").respond(201, json={**reply(), "id": "r1", "meta": {"versionId": "1"}})
    r, records = await call(h, "POST", "/fhir/Communication", body=reply(topic={"text": "changed"}))
    assert r.status_code == 201, r.text
    sent = json.loads(post.calls.last.request.content)
    assert sent["topic"] == {"text": "Pills"} and sent["category"] == [{"text": "Medication question"}]
    assert sent["sent"] and sent["status"] == "completed"
    assert post.calls.last.request.headers["If-None-Exist"] == (
        f"identifier=urn:portal:message|staff-reply-0001&subject=Patient/{PT}")
    assert records[0].patient_refs == [f"Patient/{PT}"] and records[0].outcome == "0"


async def test_replies_outside_the_rules_are_refused_and_nothing_is_written(h: Harness,
                                                                             ehr: respx.MockRouter) -> None:
    ehr.get("/Communication/m1").respond(json=message("m1"))
    ehr.get("/Communication/m9").respond(json=message("m9", OTHER))
    ehr.get("/Communication/nope").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    post = ehr.post("/Communication").respond(201, json={})
    r, _ = await call(h, "POST", "/fhir/Communication", body=reply("m9", OTHER))
    assert code_of(r, 403) == "security"  # another care team's patient
    r, _ = await call(h, "POST", "/fhir/Communication", body=reply(sender=NURSE))
    assert code_of(r, 422) == "business-rule" and "signed-in practitioner" in r.text
    r, _ = await call(h, "POST", "/fhir/Communication", body=reply(recipient=[{"reference": f"Patient/{OTHER}"}]))
    assert code_of(r, 422) == "business-rule"
    r, _ = await call(h, "POST", "/fhir/Communication", body={**reply(), "partOf": []})
    assert code_of(r, 422) == "business-rule"
    r, _ = await call(h, "POST", "/fhir/Communication", body=reply("nope"))
    assert code_of(r, 422) == "business-rule" and "not known" in r.text
    assert post.call_count == 0
    ehr.put("/Communication/m1").respond(200, json={})
    r, _ = await call(h, "PUT", "/fhir/Communication/m1", body=message("m1", payload=[{"contentString": "x"}]))
    assert code_of(r, 403) == "forbidden"


# -- inbox work items -----------------------------------------------------------------------------------------
async def test_a_work_item_is_assigned_to_someone_on_the_patients_care_team(h: Harness,
                                                                          ehr: respx.MockRouter) -> None:
    ehr.get("/Communication/m1").respond(json=message("m1"))
    ehr.get("/CareTeam", params={"subject": f"Patient/{PT}"}).respond(json=care_team_bundle(PT, DOCTOR, NURSE))
    post = ehr.post("/Task").respond(201, json={**work(), "id": "t1", "meta": {"versionId": "1"}})
    r, _ = await call(h, "POST", "/fhir/Task", body=work(owner="Practitioner/prac-99"))
    assert code_of(r, 422) == "business-rule" and "care team" in r.text
    assert post.call_count == 0
    r, _ = await call(h, "POST", "/fhir/Task", body=work())
    assert r.status_code == 201, r.text
    written = json.loads(post.calls.last.request.content)
    assert written["owner"] == {"reference": NURSE} and written["requester"] == {"reference": DOCTOR}
    assert post.calls.last.request.headers["If-None-Exist"] == "identifier=urn:portal:inbox-work|m1"


async def test_marking_done_needs_the_version_seen_and_changes_only_status_and_owner(
        h: Harness, ehr: respx.MockRouter) -> None:
    current = {**work(), "id": "t1", "meta": {"versionId": "4"}, "requester": {"reference": DOCTOR}}
    ehr.get("/Task/t1").respond(json=current)
    ehr.get("/Communication/m1").respond(json=message("m1"))
    ehr.get("/CareTeam", params={"subject": f"Patient/{PT}"}).respond(json=care_team_bundle(PT, DOCTOR, NURSE))
    put = ehr.put("/Task/t1").respond(200, json={**current, "status": "completed"})
    done = {**work("completed"), "id": "t1"}
    r, _ = await call(h, "PUT", "/fhir/Task/t1", body=done)
    assert r.status_code == 428
    r, _ = await call(h, "PUT", "/fhir/Task/t1", body=done, headers={"If-Match": 'W/"3"'})
    assert code_of(r, 412) == "conflict"
    r, _ = await call(h, "PUT", "/fhir/Task/t1", body={**done, "for": {"reference": f"Patient/{OTHER}"}},
                      headers={"If-Match": 'W/"4"'})
    assert code_of(r, 422) == "business-rule"
    assert put.call_count == 0
    r, _ = await call(h, "PUT", "/fhir/Task/t1", body=done, headers={"If-Match": 'W/"4"'})
    assert r.status_code == 200, r.text
    assert json.loads(put.calls.last.request.content)["status"] == "completed"
    assert put.calls.last.request.headers["If-Match"] == 'W/"4"'


async def test_patients_write_no_work_items(h: Harness, ehr: respx.MockRouter) -> None:
    patient = h.token("launch/patient patient/*.rs patient/Task.cu", patient=PT)
    r, _ = await call(h, "POST", "/fhir/Task", token=patient, body=work())
    assert r.status_code == 403
