"""Forms and the to-do list in the portal against the running app (real HAPI and Redis): a pre-visit check-in
saved as a draft (once, however often the form is sent), corrected, sent, then read-only; another patient's
visit pasted into the address refused with nothing written; the access log in plain words; the to-do list
and a visit's calendar file."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from icalendar import Calendar

from mappers.inbound import APPOINTMENT_EXTENSION
from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import ehr_search

from .helpers import access_log_text, csrf_of, portal_browser, portal_sign_in, submission_of, text_of

pytestmark = pytest.mark.integration
PATIENT, OTHER = "pt-0012", "pt-0011"
CHECKIN = "q-previsit-checkin"
GOOD = {"q-1": "My knee still hurts", "q-3": "2", "q-4": "no", "q-6": "no", "q-7-1": "0", "q-7-2": "1",
        "q-9": "yes"}


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def booked_visit(ehr_base_url: str, patient_id: str, ahead: timedelta = timedelta(days=2)) -> str:
    """A visit the clinic booked for the patient just now (each run its own, so its check-in is undone)."""
    start = (datetime.now(UTC) + ahead).replace(second=0, microsecond=0)
    body = {"resourceType": "Appointment", "status": "booked", "serviceType": [{"text": "Follow-up visit"}],
            "description": f"Follow-up {uuid.uuid4().hex[:6]}", "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(), "minutesDuration": 30,
            "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}]}
    created = httpx.post(f"{ehr_base_url}/Appointment", json=body, timeout=30,
                         headers={"Content-Type": "application/fhir+json", "Prefer": "return=representation"})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def cancel(ehr_base_url: str, appointment_id: str) -> None:
    """The visit made for the test is cancelled again, so runs do not pile up visits in the shared EHR."""
    current = httpx.get(f"{ehr_base_url}/Appointment/{appointment_id}", timeout=30).json()
    httpx.put(f"{ehr_base_url}/Appointment/{appointment_id}", json={**current, "status": "cancelled"}, timeout=30)


def answers_for(ehr_base_url: str, appointment_id: str) -> list[dict]:
    return [r for r in ehr_search(ehr_base_url, "QuestionnaireResponse", {"subject": f"Patient/{PATIENT}"})
            if any(e.get("url") == APPOINTMENT_EXTENSION
                   and e["valueReference"]["reference"] == f"Appointment/{appointment_id}"
                   for e in r.get("extension", []))]


def test_a_check_in_is_saved_once_corrected_sent_and_then_read_only(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    visit = booked_visit(ehr_base_url, PATIENT)
    try:
        _check_in(gateway, ehr_base_url, patient, visit)
    finally:
        cancel(ehr_base_url, visit)


def _check_in(gateway: GatewayServer, ehr_base_url: str, patient: Person, visit: str) -> None:
    page_url = f"/portal/forms/{CHECKIN}?appointment={visit}"
    with portal_browser(gateway) as b:
        page = portal_sign_in(b, patient, page_url)
        assert page.status_code == 200 and "Pre-visit check-in" in text_of(page.text)
        assert "Follow-up visit" in text_of(page.text)
        draft = {"csrf_token": csrf_of(page.text), "submission": submission_of(page.text), "action": "save",
                 "q-1": "My knee"}
        saved = b.post(page_url, data=draft)
        assert saved.status_code == 303, text_of(saved.text)[:300]
        assert b.post(page_url, data=draft).status_code == 303  # the same form sent twice
        [stored] = answers_for(ehr_base_url, visit)
        assert stored["status"] == "in-progress" and stored["item"][0]["answer"] == [{"valueString": "My knee"}]
        page = b.get(saved.headers["location"])
        assert "Your draft is saved" in text_of(page.text) and 'value="My knee"' not in page.text
        assert ">My knee</textarea>" in page.text  # the draft filled back in
        wrong = b.post(page_url, data={**GOOD, "q-3": "12", "csrf_token": csrf_of(page.text),
                                       "submission": submission_of(page.text), "action": "send"})
        assert wrong.status_code == 422 and "Please enter a number from 0 to 10." in text_of(wrong.text)
        assert [r["status"] for r in answers_for(ehr_base_url, visit)] == ["in-progress"]
        sent = b.post(page_url, data={**GOOD, "csrf_token": csrf_of(page.text),
                                      "submission": submission_of(wrong.text), "action": "send"})
        assert sent.status_code == 303, text_of(sent.text)[:300]
        [done] = answers_for(ehr_base_url, visit)
        assert done["id"] == stored["id"] and done["status"] == "completed"  # changed in place
        assert done["subject"]["reference"] == f"Patient/{PATIENT}"
        page = b.get(sent.headers["location"])
        assert "It can no longer be changed" in text_of(page.text) and "My knee still hurts" in text_of(page.text)
        late = b.post(page_url, data={**GOOD, "q-1": "Changed", "csrf_token": csrf_of(page.text),
                                      "submission": submission_of(wrong.text), "action": "send"})
        assert late.status_code == 409
        assert answers_for(ehr_base_url, visit)[0]["meta"]["versionId"] == done["meta"]["versionId"]
        text = access_log_text(b, "saved answers to a form", "saved or sent answers to a form")
        assert "saved answers to a form" in text and "saved or sent answers to a form" in text


def test_another_patients_visit_in_the_address_is_refused_and_nothing_written(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    theirs = ehr_search(ehr_base_url, "Appointment", {"patient": f"Patient/{OTHER}"})[0]["id"]  # only pasted
    with portal_browser(gateway) as b:
        home = portal_sign_in(b, patient, "/portal/todo")
        assert home.status_code == 200
        looked = b.get(f"/portal/forms/{CHECKIN}?appointment={theirs}")
        assert looked.status_code == 404 and OTHER not in looked.text
        posted = b.post(f"/portal/forms/{CHECKIN}?appointment={theirs}",
                        data={**GOOD, "csrf_token": csrf_of(home.text), "submission": secrets.token_urlsafe(18),
                              "action": "send"})
        assert posted.status_code == 404
    everyone = ehr_search(ehr_base_url, "QuestionnaireResponse", {"_lastUpdated": f"gt{datetime.now(UTC).date()}"})
    assert not [r for r in everyone for e in r.get("extension", [])
                if e.get("valueReference", {}).get("reference") == f"Appointment/{theirs}"]


def test_the_to_do_list_offers_a_visit_as_a_calendar_file(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    visit = booked_visit(ehr_base_url, PATIENT, timedelta(hours=2))  # sooner than any other: among the first
    try:
        with portal_browser(gateway) as b:
            page = portal_sign_in(b, patient, "/portal/todo")
            assert page.status_code == 200 and "To do" in text_of(page.text)
            assert re.findall(r'href="(/portal/todo/visit-[^"]+\.ics)"', page.text), text_of(page.text)[:600]
            ics = b.get(f"/portal/todo/visit-{visit}.ics")
            unknown = b.get("/portal/todo/visit-someone-else.ics")
    finally:
        cancel(ehr_base_url, visit)
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    [event] = Calendar.from_ical(ics.content).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Follow-up visit"
    assert event.decoded("DTSTART") > datetime.now(UTC) + timedelta(hours=1)
    assert unknown.status_code == 404
