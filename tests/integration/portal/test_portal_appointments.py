"""Appointments in the portal against the running app (real HAPI and Redis): a booking, a move and a
cancellation as the EHR stores them, a booking form sent twice writing once, the calendar file, the
check-in link, what is refused (a made-up time, another patient's visit) leaving nothing behind, and
each change in plain words in the patient's access log."""

from __future__ import annotations

import random
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mappers.booking import VISIT_TYPE_SYSTEM
from notifications.catchall import body_of
from tests.conftest import GatewayServer, MailServer
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import ehr_search

from .helpers import choose_language, csrf_of, portal_browser, portal_sign_in, text_of

pytestmark = pytest.mark.integration
PATIENT = "pt-0013"  # prefers Spanish in the EHR: a test reading the English words chooses English first


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def _get(base: str, path: str) -> dict:
    return httpx.get(f"{base}/{path}", timeout=30).json()


def _kind(slot: dict) -> str:
    return next(c["code"] for t in slot["serviceType"] for c in t.get("coding", []) if c["system"] == VISIT_TYPE_SYSTEM)


def _free_slots(base: str, kind: str | None = None) -> list[dict]:
    """Free times two days ahead or more (outside the clinic's notice), in random order: runs sharing one
    EHR must not race each other for the first one."""
    after = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
    params = {"status": "free", "start": f"gt{after}", "_count": "200"}
    if kind:
        params["service-type"] = f"{VISIT_TYPE_SYSTEM}|{kind}"
    slots = ehr_search(base, "Slot", params)
    assert slots, "the fixtures leave free times in the next 30 days"
    return random.sample(slots, len(slots))


def _form(html: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
    assert form, f"no form posting to {action}"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))


def _mine(base: str) -> list[dict]:
    return ehr_search(base, "Appointment", {"patient": f"Patient/{PATIENT}", "_count": "200"})


def _access_log_text(b: httpx.Client, *wanted: str) -> str:
    text = ""
    for _ in range(4):
        time.sleep(1)
        text = text_of(b.get("/portal/access-log").text)
        if all(w in text for w in wanted):
            return text
    return text


def test_book_move_and_cancel_through_the_pages(gateway: GatewayServer, ehr_base_url: str, patient: Person,
                                                mail_server: MailServer) -> None:
    first = _free_slots(ehr_base_url)[0]
    kind = _kind(first)
    second = next(s for s in _free_slots(ehr_base_url, kind) if s["id"] != first["id"])
    address = f"visits-{uuid.uuid4().hex[:8]}@example.test"
    with portal_browser(gateway) as b:
        profile = portal_sign_in(b, patient, "/portal/profile")
        assert profile.status_code == 200
        choose_language(b, profile, "en")  # the record prefers Spanish; this test reads the English words
        # Where the appointment notices go (each form sent twice below still gives one notice).
        b.post("/portal/profile/notices", data={"csrf_token": csrf_of(profile.text), "notice_email": address,
                                                "on": ["appointment"]})
        week = b.get("/portal/appointments/book", params={"type": kind, "date": first["start"][:10],
                                                          "clinician": first["schedule"]["reference"].split("/")[1]})
        assert week.status_code == 200 and f"/portal/appointments/book/{first['id']}" in week.text
        confirm = b.get(f"/portal/appointments/book/{first['id']}", params={"type": kind})
        assert confirm.status_code == 200 and "Book this time" in text_of(confirm.text)
        data = {**_form(confirm.text, "/portal/appointments"), "csrf_token": csrf_of(confirm.text), "type": kind,
                "reason": "Checking my blood pressure"}
        before = len(_mine(ehr_base_url))
        booked = b.post("/portal/appointments", data=data)
        again = b.post("/portal/appointments", data=data)  # the same form sent twice
        assert booked.status_code == 303, text_of(booked.text)[:400]
        assert again.status_code == 303 and again.headers["location"] == booked.headers["location"]
        appt_id = re.fullmatch(r"/portal/appointments/([\w.-]+)\?booked=1", booked.headers["location"]).group(1)
        assert len(_mine(ehr_base_url)) == before + 1
        stored = _get(ehr_base_url, f"Appointment/{appt_id}")
        assert stored["status"] == "booked" and stored["slot"] == [{"reference": f"Slot/{first['id']}"}]
        assert stored["reasonCode"] == [{"text": "Checking my blood pressure"}]
        assert _kind(stored) == kind and _get(ehr_base_url, f"Slot/{first['id']}")["status"] == "busy"

        detail = b.get(booked.headers["location"])
        words = text_of(detail.text)
        assert "Your visit is booked" in words and "Cancel this visit" in words
        forms = ehr_search(ehr_base_url, "Questionnaire", {"context": f"{VISIT_TYPE_SYSTEM}|{kind}"})
        for q in forms:
            assert f"/portal/forms/{q['id']}?appointment={appt_id}" in detail.text
        ics = b.get(f"/portal/appointments/{appt_id}/calendar.ics")
        assert ics.headers["content-type"].startswith("text/calendar") and "BEGIN:VEVENT" in ics.text

        move = b.get(f"/portal/appointments/{appt_id}/move/{second['id']}")
        assert move.status_code == 200 and "Move my visit" in text_of(move.text)
        move_form = {**_form(move.text, f"/portal/appointments/{appt_id}/move"), "csrf_token": csrf_of(move.text)}
        moved = b.post(f"/portal/appointments/{appt_id}/move", data=move_form)
        assert moved.status_code == 303 and moved.headers["location"].endswith("?moved=1"), text_of(moved.text)[:400]
        moved_again = b.post(f"/portal/appointments/{appt_id}/move", data=move_form)
        assert moved_again.status_code == 303 and moved_again.headers["location"].endswith("?moved=1")
        assert _get(ehr_base_url, f"Appointment/{appt_id}")["slot"] == [{"reference": f"Slot/{second['id']}"}]
        assert _get(ehr_base_url, f"Slot/{first['id']}")["status"] == "free"
        assert _get(ehr_base_url, f"Slot/{second['id']}")["status"] == "busy"

        detail = b.get(f"/portal/appointments/{appt_id}")
        cancel = {**_form(detail.text, f"/portal/appointments/{appt_id}/cancel"), "csrf_token": csrf_of(detail.text),
                  "reason": "pat-fb"}
        cancelled = b.post(f"/portal/appointments/{appt_id}/cancel", data=cancel)
        assert cancelled.status_code == 303 and cancelled.headers["location"].endswith("?cancelled=1")
        version = _get(ehr_base_url, f"Appointment/{appt_id}")["meta"]["versionId"]
        again = b.post(f"/portal/appointments/{appt_id}/cancel", data=cancel)
        assert again.status_code == 303 and again.headers["location"].endswith("?cancelled=1")
        assert _get(ehr_base_url, f"Appointment/{appt_id}")["meta"]["versionId"] == version  # nothing new written
        stored = _get(ehr_base_url, f"Appointment/{appt_id}")
        assert stored["status"] == "cancelled" and stored["cancelationReason"]["coding"][0]["code"] == "pat-fb"
        assert _get(ehr_base_url, f"Slot/{second['id']}")["status"] == "free"

        log = _access_log_text(b, "booked an appointment", "moved or cancelled an appointment")
        assert "booked an appointment" in log and "moved or cancelled an appointment" in log
    notices = mail_server.wait_for(address, 3)
    time.sleep(1)  # a fourth (a form sent twice noticed twice) would have arrived by now
    assert [m["Subject"] for m in mail_server.to(address)] == ["Your appointments changed"] * 3
    assert all(f"{gateway.url}/portal/appointments/{appt_id}" in body_of(m) for m in notices)


def test_a_made_up_time_or_another_patients_visit_is_refused_and_nothing_is_written(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    theirs = ehr_search(ehr_base_url, "Appointment", {"patient": "Patient/pt-0001", "_count": "1"})[0]
    with portal_browser(gateway) as b:
        home = portal_sign_in(b, patient)
        assert home.status_code == 200
        choose_language(b, home, "en")
        page = b.get("/portal/appointments")
        token = csrf_of(page.text)
        before = len(_mine(ehr_base_url))
        made_up = b.post("/portal/appointments", data={"csrf_token": token, "submission": "made-up-time-0123456789",
                                                       "slot": "no-such-slot-0001", "type": "sick"})
        assert made_up.status_code == 404 and "could not find that time" in text_of(made_up.text)
        for action in ("cancel", "move"):
            refused = b.post(f"/portal/appointments/{theirs['id']}/{action}",
                             data={"csrf_token": token, "submission": f"their-visit-{action}-0123456789",
                                   "reason": "pat", "slot": _free_slots(ehr_base_url)[0]["id"]})
            assert refused.status_code == 404 and "Page not found" in text_of(refused.text)
        seen = b.get(f"/portal/appointments/{theirs['id']}")
        assert seen.status_code == 404
    assert len(_mine(ehr_base_url)) == before
    after = _get(ehr_base_url, f"Appointment/{theirs['id']}")
    assert after["meta"]["versionId"] == theirs["meta"]["versionId"] and after["status"] == theirs["status"]
