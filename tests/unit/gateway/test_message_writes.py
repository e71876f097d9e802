"""The message rules of the policy table, with respx as the EHR: writing to the care team (CareTeam
members), files stored with the message in one transaction, and marking a message as read (the only
change a patient may make to a message, and only to one sent to them)."""

from __future__ import annotations

import base64
import json

import httpx
import respx

from fhir_gateway.policy import CREATE, READ, UPDATE, policy_for

from .conftest import Harness

PT, OTHER = "pt-0001", "pt-0002"
SCOPES = "launch/patient patient/*.rs patient/Communication.cu"
PDF = b"%PDF-1.4\n%%EOF\n"
TEAM = "Organization/org-team-care"
DOCTOR = "Practitioner/prac-01"


def patient(pid: str = PT) -> dict:
    return {"resourceType": "Patient", "id": pid, "meta": {"versionId": "1"}}


def team(pid: str = PT) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "CareTeam", "id": "ct-1", "status": "active", "subject": {"reference": f"Patient/{pid}"},
        "participant": [{"member": {"reference": DOCTOR}}, {"member": {"reference": TEAM}}]}}]}


def note(to: str = DOCTOR, *, files: list[dict] | None = None, **extra: object) -> dict:
    return {"resourceType": "Communication", "status": "completed", "recipient": [{"reference": to}],
            "identifier": [{"system": "urn:portal:message", "value": "sub-1234567890abcdef"}],
            "payload": [{"contentString": "Please look at this."}, *({"contentAttachment": f} for f in files or [])],
            **extra}


def to_patient(pid: str = PT, received: str | None = None) -> dict:
    msg = {"resourceType": "Communication", "id": "c9", "meta": {"versionId": "3"}, "status": "completed",
           "subject": {"reference": f"Patient/{pid}"}, "sender": {"reference": DOCTOR},
           "recipient": [{"reference": f"Patient/{pid}"}], "sent": "2026-11-01T10:00:00Z",
           "payload": [{"contentString": "Your results are fine."}]}
    if received:
        msg["received"] = received
    return msg


async def send(h: Harness, method: str, path: str, body: object, patient_id: str = PT, **headers: str
               ) -> httpx.Response:
    async with h.client() as c:
        return await c.request(method, path, content=json.dumps(body), headers={
            "Authorization": f"Bearer {h.token(SCOPES, patient=patient_id)}",
            "Content-Type": "application/fhir+json", **headers})


def test_the_policy_table_lists_the_message_writes_and_file_reads() -> None:
    communication, binary = policy_for("Communication"), policy_for("Binary")
    assert communication and communication.patient_writes == {CREATE, UPDATE}
    assert binary and binary.interactions == {READ} and not binary.patient_writes
    assert binary.compartment_fields == ("securityContext",)


async def test_a_named_clinician_or_team_from_the_care_team_may_be_written_to(
        harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json=team())
    post = ehr.post("/Communication").respond(201, json={**note(), "id": "c1", "meta": {"versionId": "1"},
                                                         "subject": {"reference": f"Patient/{PT}"}})
    for to in (DOCTOR, TEAM):
        r = await send(harness, "POST", "/fhir/Communication", note(to))
        assert r.status_code == 201, r.text
        assert json.loads(post.calls.last.request.content)["recipient"] == [{"reference": to}]
    # The retry guard: the EHR is asked to create it only if this submission is not there yet.
    assert post.calls.last.request.headers["If-None-Exist"] == (
        f"identifier=urn:portal:message|sub-1234567890abcdef&subject=Patient/{PT}")


async def test_another_patients_care_team_does_not_count(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json=team(OTHER))  # an EHR answer naming someone else's team is ignored
    post = ehr.post("/Communication").respond(201, json={})
    r = await send(harness, "POST", "/fhir/Communication", note(TEAM))
    assert r.status_code == 422 and "care team" in r.json()["issue"][0]["diagnostics"]
    assert not post.called


async def test_a_file_is_stored_as_binary_with_the_message_in_one_transaction(
        harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json=team())
    ehr.get("/Communication").respond(json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    tx = ehr.post("").respond(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "201", "location": "Binary/b/_history/1"}},
        {"response": {"status": "201", "location": "Communication/c5/_history/1"}}]})
    ehr.get("/Communication/c5").respond(json={"resourceType": "Communication", "id": "c5", "status": "completed",
                                               "subject": {"reference": f"Patient/{PT}"}})
    upload = {"contentType": "image/png", "title": "scan.png", "data": base64.b64encode(PDF).decode()}
    r = await send(harness, "POST", "/fhir/Communication", note(files=[upload]))
    assert r.status_code == 201, r.text
    entries = json.loads(tx.calls.last.request.content)["entry"]
    binary, message = entries[0]["resource"], entries[1]["resource"]
    assert binary["resourceType"] == "Binary" and binary["contentType"] == "application/pdf"  # by content
    assert binary["securityContext"] == {"reference": f"Patient/{PT}"}
    assert base64.b64decode(binary["data"]) == PDF
    stored = message["payload"][1]["contentAttachment"]
    assert stored["url"] == f"Binary/{binary['id']}" and "data" not in stored and stored["size"] == len(PDF)
    assert stored["title"] == "scan.pdf"
    assert entries[1]["request"]["ifNoneExist"].startswith("identifier=urn:portal:message|")
    assert {"Communication/c5", f"Binary/{binary['id']}"} <= {ref for rec in harness.audit for ref in rec.entity_refs}


async def test_a_retried_message_with_a_file_writes_nothing(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json=team())
    ehr.get("/Communication").respond(json={"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Communication", "id": "c5", "status": "completed",
                      "subject": {"reference": f"Patient/{PT}"}}}]})
    tx = ehr.post("").respond(200, json={})
    upload = {"contentType": "application/pdf", "data": base64.b64encode(PDF).decode()}
    r = await send(harness, "POST", "/fhir/Communication", note(files=[upload]))
    assert r.status_code == 200 and r.json()["id"] == "c5"
    assert not tx.called


async def test_disguised_pointed_or_oversized_files_are_refused(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json=team())
    writes = ehr.post(url__regex=r".*").respond(201, json={})
    disguised = {"contentType": "image/png", "title": "x.png", "data": base64.b64encode(b"MZ\x90\0exe").decode()}
    pointed = {"contentType": "application/pdf", "url": f"Binary/of-{OTHER}"}
    for bad, words in ((disguised, "not a PDF, JPEG or PNG"), (pointed, "carry its file as data")):
        r = await send(harness, "POST", "/fhir/Communication", note(files=[bad]))
        assert r.status_code == 422 and words in r.json()["issue"][0]["diagnostics"], r.text
    huge = {"contentType": "image/png", "data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * (10 << 20)).decode()}
    r = await send(harness, "POST", "/fhir/Communication", note(files=[huge]))
    assert r.status_code == 422 and "up to 10 MB" in r.json()["issue"][0]["diagnostics"]
    assert not writes.called


async def test_marking_a_message_to_the_patient_as_read_sets_only_received(
        harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Communication/c9").respond(json=to_patient())
    put = ehr.put("/Communication/c9").respond(200, json={**to_patient(received="2026-11-30T10:00:00+00:00"),
                                                          "meta": {"versionId": "4"}})
    body = {**to_patient(), "received": "2020-01-01T00:00:00Z"}
    body.pop("meta")
    r = await send(harness, "PUT", "/fhir/Communication/c9", body)
    assert r.status_code == 200, r.text
    sent = json.loads(put.calls.last.request.content)
    assert put.calls.last.request.headers["If-Match"] == 'W/"3"'
    assert sent["received"] != "2020-01-01T00:00:00Z"  # the gateway's clock, not the caller's
    assert {k: v for k, v in sent.items() if k != "received"} == {k: v for k, v in to_patient().items()
                                                                    if k != "meta"}


async def test_a_message_read_already_is_not_written_again(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Communication/c9").respond(json=to_patient(received="2026-11-02T08:00:00Z"))
    put = ehr.put("/Communication/c9").respond(200, json={})
    r = await send(harness, "PUT", "/fhir/Communication/c9", {**to_patient(), "received": "2026-11-30T10:00:00Z"})
    assert r.status_code == 200 and r.json()["received"] == "2026-11-02T08:00:00Z"
    assert not put.called


async def test_nothing_but_the_read_mark_may_change(harness: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Communication/c9").respond(json=to_patient())
    put = ehr.put("/Communication/c9").respond(200, json={})
    for change in ({"payload": [{"contentString": "Changed"}]}, {"status": "entered-in-error"},
                   {"recipient": [{"reference": "Practitioner/prac-02"}]}):
        r = await send(harness, "PUT", "/fhir/Communication/c9",
                       {**to_patient(), "received": "2026-11-30T10:00:00Z", **change})
        assert r.status_code == 422, change
        assert next(iter(change)) in r.json()["issue"][0]["diagnostics"]
    unread = {k: v for k, v in to_patient(received="2026-11-02T08:00:00Z").items() if k != "received"}
    ehr.get("/Communication/c9").respond(json=to_patient(received="2026-11-02T08:00:00Z"))
    r = await send(harness, "PUT", "/fhir/Communication/c9", unread)
    assert r.status_code == 422 and "unread" in r.json()["issue"][0]["diagnostics"]
    assert not put.called


async def test_a_message_the_patient_sent_or_another_patients_cannot_be_marked(
        harness: Harness, ehr: respx.MockRouter) -> None:
    mine_to_doctor = {**to_patient(), "sender": {"reference": f"Patient/{PT}"}, "recipient": [{"reference": DOCTOR}]}
    ehr.get("/Communication/c9").respond(json=mine_to_doctor)
    put = ehr.put("/Communication/c9").respond(200, json={})
    r = await send(harness, "PUT", "/fhir/Communication/c9", {**mine_to_doctor, "received": "2026-11-30T10:00:00Z"})
    assert r.status_code == 422 and "sent to you" in r.json()["issue"][0]["diagnostics"]
    ehr.get("/Communication/c9").respond(json=to_patient(OTHER))
    r = await send(harness, "PUT", "/fhir/Communication/c9", {**to_patient(OTHER), "received": "2026-11-30T10:00:00Z"})
    assert r.status_code == 404 and OTHER not in r.text
    assert not put.called
    assert harness.audit[-1].outcome != "0"


async def test_a_file_is_read_only_within_its_own_record(harness: Harness, ehr: respx.MockRouter) -> None:
    file = {"resourceType": "Binary", "id": "f1", "contentType": "application/pdf",
            "securityContext": {"reference": f"Patient/{PT}"}, "data": base64.b64encode(PDF).decode()}
    ehr.get("/Binary/f1").respond(json=file)
    ehr.get("/Binary/f2").respond(json={**file, "id": "f2", "securityContext": {"reference": f"Patient/{OTHER}"}})
    async with harness.client() as c:
        headers = {"Authorization": f"Bearer {harness.token(SCOPES, patient=PT)}"}
        mine = await c.get("/fhir/Binary/f1", headers=headers)
        theirs = await c.get("/fhir/Binary/f2", headers=headers)
        search = await c.get("/fhir/Binary", headers=headers)
    assert mine.status_code == 200, mine.text
    assert theirs.status_code == 404 and search.status_code in (404, 405)


async def test_a_failed_transaction_leaves_no_file_and_no_message_behind(harness: Harness,
                                                                        ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json=team())
    ehr.get("/Communication").respond(json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    tx = ehr.post("").respond(500, json={"resourceType": "OperationOutcome", "issue": []})
    single = ehr.post("/Communication").respond(201, json={})
    files = ehr.put(url__regex=r".*/Binary/.*").respond(201, json={})
    upload = {"contentType": "application/pdf", "data": base64.b64encode(PDF).decode()}
    r = await send(harness, "POST", "/fhir/Communication", note(files=[upload]))
    assert r.status_code >= 500 and r.json()["resourceType"] == "OperationOutcome"
    # Only the one all-or-nothing transaction was tried: no file or message was written on its own.
    assert tx.called and not single.called and not files.called
