"""Secure messages in the portal against the running app (real HAPI and Redis): what is written to the
EHR when a patient writes, replies, attaches a file and opens a message, what is refused (and leaves
nothing behind), and that each of it reads in plain words in the patient's access log."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import auth, ehr_search, mint

from .helpers import access_log_text, csrf_of, portal_browser, portal_sign_in, submission_of, text_of

pytestmark = pytest.mark.integration
PATIENT, OTHER = "pt-0011", "pt-0012"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def _messages(ehr_base_url: str, patient_id: str = PATIENT) -> list[dict]:
    return ehr_search(ehr_base_url, "Communication", {"subject": f"Patient/{patient_id}"})


def _care_team_clinician(ehr_base_url: str) -> str:
    team = ehr_search(ehr_base_url, "CareTeam", {"subject": f"Patient/{PATIENT}"})[0]
    return next(p["member"]["reference"] for p in team["participant"]
                if p["member"]["reference"].startswith("Practitioner/")
                and any(c.get("code") == "clinician" for r in p.get("role", []) for c in r.get("coding", [])))



def test_a_patient_writes_to_a_named_clinician_with_a_file_and_a_resend_writes_once(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    clinician = _care_team_clinician(ehr_base_url)
    words = f"Is it OK to take my pills with food? <script>alert('x')</script> {uuid.uuid4().hex[:8]}"
    with portal_browser(gateway) as b:
        assert portal_sign_in(b, patient).status_code == 200
        inbox = b.get("/portal/messages")
        assert inbox.status_code == 200 and "call 911" in text_of(inbox.text)
        form = b.get("/portal/messages/new")
        assert "Billing question" in text_of(form.text) and clinician in form.text
        data = {"csrf_token": csrf_of(form.text), "submission": submission_of(form.text), "to": clinician,
                "topic": "medication", "subject": "Pills and food", "text": words}
        files = {"file": ("my list.png", PDF, "image/png")}  # named and typed as a picture: the content decides
        before = len(_messages(ehr_base_url))
        sent = b.post("/portal/messages", data=data, files=files)
        assert sent.status_code == 303, text_of(sent.text)[:400]
        again = b.post("/portal/messages", data=data, files=files)  # the same form sent twice
        assert again.status_code == 303 and again.headers["location"] == sent.headers["location"]
        after = _messages(ehr_base_url)
        assert len(after) == before + 1
        mine = next(m for m in after if any(p.get("contentString") == words for p in m["payload"]))
        assert mine["recipient"] == [{"reference": clinician}]
        assert mine["sender"]["reference"] == f"Patient/{PATIENT}"
        assert mine["category"][0]["coding"][0]["code"] == "medication" and mine["topic"]["text"] == "Pills and food"
        att = next(p["contentAttachment"] for p in mine["payload"] if "contentAttachment" in p)
        assert att["contentType"] == "application/pdf" and att["title"] == "my list.pdf" and "data" not in att
        binary = httpx.get(f"{ehr_base_url}/{att['url']}", headers={"Accept": "application/fhir+json"},
                           timeout=30).json()
        assert binary["securityContext"]["reference"] == f"Patient/{PATIENT}" and binary["contentType"] == att[
            "contentType"]
        # The conversation shows the text as text, and the file downloads as what it is.
        page = b.get(sent.headers["location"])
        assert "&lt;script&gt;" in page.text and "<script>alert" not in page.text
        assert "Your message was sent" in text_of(page.text)
        download = b.get(f"/portal/messages/{mine['id']}/files/0")
        assert download.status_code == 200 and download.content == PDF
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].startswith("attachment;")
        log = access_log_text(b, "sent a message to your care team")
        assert "sent a message to your care team" in log


def test_a_disguised_or_oversized_file_is_refused_and_nothing_is_written(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    with portal_browser(gateway) as b:
        form = portal_sign_in(b, patient, "/portal/messages/new")
        before = len(_messages(ehr_base_url))
        base = {"csrf_token": csrf_of(form.text), "submission": submission_of(form.text),
                "to": "Organization/org-team-care", "topic": "care", "subject": "Photo", "text": "See the file"}
        disguised = b.post("/portal/messages", data=base,
                           files={"file": ("rash.png", b"MZ\x90\x00 not a picture", "image/png")})
        assert disguised.status_code == 422
        assert "not a PDF, JPEG or PNG" in text_of(disguised.text)
        huge = b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 1024 * 1024)
        oversized = b.post("/portal/messages", data=base, files={"file": ("big.png", huge, "image/png")})
        assert oversized.status_code == 422 and "up to 10 MB" in text_of(oversized.text)
        empty = b.post("/portal/messages", data={**base, "to": "", "topic": "", "subject": "", "text": " "})
        text = text_of(empty.text)
        for problem in ("Choose who should get your message", "Choose what your message is about",
                        "Write your message"):
            assert problem in text
        assert 'aria-invalid="true"' in empty.text
        assert len(_messages(ehr_base_url)) == before


def test_opening_a_message_marks_it_read_and_a_reply_stays_in_the_thread(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    clinician = _care_team_clinician(ehr_base_url)
    # The clinic writes to the patient (straight into the EHR, as the clinic's own system would).
    note = {"resourceType": "Communication", "status": "completed", "subject": {"reference": f"Patient/{PATIENT}"},
            "sender": {"reference": clinician}, "recipient": [{"reference": f"Patient/{PATIENT}"}],
            # Sent now: the inbox shows the newest messages, and an EHR the tests used before holds many.
            "sent": datetime.now(UTC).isoformat(timespec="seconds"),
            "topic": {"text": f"Your test results {secrets.token_hex(3)}"},
            "category": [{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/message-topic",
                                      "code": "care"}], "text": "Question about my care"}],
            "payload": [{"contentString": "Your results are normal."}]}
    created = httpx.post(f"{ehr_base_url}/Communication", json=note, timeout=30,
                         headers={"Prefer": "return=representation"}).json()
    with portal_browser(gateway) as b:
        home = portal_sign_in(b, patient)
        assert re.search(r"\d+ unread message", text_of(home.text))
        inbox = text_of(b.get("/portal/messages").text)
        assert "Unread" in inbox and note["topic"]["text"] in inbox
        page = b.get(f"/portal/messages/{created['id']}")
        assert page.status_code == 200 and "New" in text_of(page.text)
        stored = httpx.get(f"{ehr_base_url}/Communication/{created['id']}", timeout=30).json()
        assert stored["received"] and {k: v for k, v in stored.items() if k not in ("meta", "received")} == {
            k: v for k, v in created.items() if k not in ("meta",)}
        reply = b.post(f"/portal/messages/{created['id']}/reply",
                       data={"csrf_token": csrf_of(page.text), "submission": submission_of(page.text),
                             "text": "Thank you!"})
        assert reply.status_code == 303
        answers = ehr_search(ehr_base_url, "Communication", {"part-of": f"Communication/{created['id']}"})
        assert [a["payload"][0]["contentString"] for a in answers] == ["Thank you!"]
        assert answers[0]["inResponseTo"] == [{"reference": f"Communication/{created['id']}"}]
        assert answers[0]["recipient"] == [{"reference": clinician}] and "received" not in answers[0]
        log = access_log_text(b, "marked a message to you as read")
        assert "marked a message to you as read" in log


def test_another_patients_thread_is_refused_nothing_written_and_audited(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    theirs = _messages(ehr_base_url, OTHER)
    assert theirs, "fixture data has messages for the other patient"
    target = next(m for m in theirs if not m.get("partOf") and m.get("received"))
    before_mine, before_theirs = len(_messages(ehr_base_url)), len(theirs)
    # Straight at the gateway with the patient's own token: a reply into the other thread, and marking
    # the other patient's message read, are both refused.
    token = mint(gateway, "launch/patient openid fhirUser patient/*.rs patient/Communication.cu", patient=PATIENT)
    reply = {"resourceType": "Communication", "status": "completed",
             "recipient": [{"reference": target["sender"]["reference"]}],
             "partOf": [{"reference": f"Communication/{target['id']}"}],
             "inResponseTo": [{"reference": f"Communication/{target['id']}"}],
             "payload": [{"contentString": "Hello"}]}
    refused = httpx.post(f"{gateway.fhir}/Communication", json=reply, headers=auth(token), timeout=30)
    assert refused.status_code == 404 and refused.json()["resourceType"] == "OperationOutcome"
    marked = httpx.put(f"{gateway.fhir}/Communication/{target['id']}", headers=auth(token), timeout=30,
                       json={**{k: v for k, v in target.items() if k != "meta"}, "received": "2026-11-30T10:00:00Z"})
    assert marked.status_code == 404
    with portal_browser(gateway) as b:
        page = portal_sign_in(b, patient, "/portal/messages/new")
        # The same id pasted into the portal's pages and reply form: not found, nothing shown.
        assert b.get(f"/portal/messages/{target['id']}").status_code == 404
        pasted = b.post(f"/portal/messages/{target['id']}/reply",
                        data={"csrf_token": csrf_of(page.text), "submission": submission_of(page.text), "text": "Hi"})
        assert pasted.status_code == 404 and target["id"] not in text_of(pasted.text)
        # The refused send is in the patient's own access log, in words.
        log = access_log_text(b, "tried to send a message to your care team")
        assert "tried to send a message to your care team" in log
    assert len(_messages(ehr_base_url)) == before_mine
    after_theirs = _messages(ehr_base_url, OTHER)
    assert len(after_theirs) == before_theirs
    assert next(m for m in after_theirs if m["id"] == target["id"]) == target
