"""Notices from the running app (its own outbox in its Redis, its sender, the real SMTP catch-all of the test
fixtures): the patient chooses where notices go on their profile; a sign-in from a new browser and a password
change each send one e-mail there, with a link and nothing about the person; a known browser sends none."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from notifications.catchall import body_of
from tests.conftest import GatewayServer, MailServer
from tests.integration.e2e_smart.flows import Person, enrol_patient, sign_in

from .helpers import csrf_of, portal_browser, portal_sign_in, text_of

pytestmark = pytest.mark.integration
PATIENT = "pt-0018"
NEW_PASSWORD = "Harbor-Quiet-Lantern-58"


def test_new_device_and_password_change_notices_reach_the_address_on_the_profile(
        gateway: GatewayServer, ehr_base_url: str, mail_server: MailServer) -> None:
    person: Person = enrol_patient(gateway, ehr_base_url, PATIENT)
    address = f"notices-{uuid.uuid4().hex[:8]}@example.test"
    with portal_browser(gateway) as first:
        profile = portal_sign_in(first, person, "/portal/profile")
        assert profile.status_code == 200 and "E-mail notices" in text_of(profile.text)
        saved = first.post("/portal/profile/notices", data={"csrf_token": csrf_of(profile.text),
                                                            "notice_email": address, "on": ["message", "result"]})
        assert saved.headers["location"] == "/portal/profile?saved=notices#notices"
        shown = first.get("/portal/profile?saved=notices")
        assert f'value="{address}"' in shown.text and 'value="appointment" checked' not in shown.text
        device = first.cookies.get("portal_device")
        assert device

    with portal_browser(gateway) as second:  # another browser: no device cookie
        assert sign_in(second, person, "/portal/").status_code == 303
        [mail] = mail_server.wait_for(address)
        assert mail["Subject"] == "A new sign-in to your account"
        body = body_of(mail)
        assert f"{gateway.url}/auth/account/security" in body
        assert person.username not in body and PATIENT not in body

        page = second.get("/auth/account/password")
        done = second.post("/auth/account/password", data={
            "csrf_token": csrf_of(page.text), "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD,
            "current_password": person.password, "current_code": person.next_code()})
        assert done.status_code == 303, text_of(done.text)[:300]
        person.password = NEW_PASSWORD
        mails = mail_server.wait_for(address, 2)
        assert mails[-1]["Subject"] == "Your sign-in settings changed"

    with portal_browser(gateway) as known:  # the first browser again, with its device cookie
        known.cookies.set("portal_device", device)
        assert sign_in(known, person, "/portal/").status_code == 303
        time.sleep(3)  # the sender would have sent a notice by now
    assert len(mail_server.to(address)) == 2
    metrics = httpx.get(gateway.url + "/metrics", timeout=30).text
    sent = re.search(r'^portal_notices_settled_total\{outcome="sent:email"\} (\S+)$', metrics, re.M)
    assert sent and float(sent.group(1)) >= 2


def test_a_result_made_final_in_the_ehr_is_announced_once_without_saying_what_it_is(
        gateway: GatewayServer, ehr_base_url: str, mail_server: MailServer) -> None:
    person: Person = enrol_patient(gateway, ehr_base_url, PATIENT)
    address = f"results-{uuid.uuid4().hex[:8]}@example.test"
    with portal_browser(gateway) as b:
        profile = portal_sign_in(b, person, "/portal/profile")
        b.post("/portal/profile/notices", data={"csrf_token": csrf_of(profile.text), "notice_email": address,
                                                "on": ["result"]})
    # The clinic releases a lab report straight in the EHR (not through us): the change feed sees it.
    marker = uuid.uuid4().hex[:10]
    report = {"resourceType": "DiagnosticReport", "status": "final",
              "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
              "code": {"text": f"Potassium {marker}"}, "subject": {"reference": f"Patient/{PATIENT}"},
              "issued": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "conclusion": f"Low {marker}"}
    made = httpx.post(f"{ehr_base_url}/DiagnosticReport", json=report, timeout=30)
    assert made.status_code == 201
    try:
        [mail] = mail_server.wait_for(address, timeout=60)
        assert mail["Subject"] == "A new result is ready"
        body = body_of(mail)
        assert f"{gateway.url}/portal/results" in body and marker not in str(mail) and "Potassium" not in body
        # A second result the same day adds no second e-mail.
        again = httpx.post(f"{ehr_base_url}/DiagnosticReport", json=report, timeout=30)
        assert again.status_code == 201
        time.sleep(5)
        assert len(mail_server.to(address)) == 1
        httpx.delete(f"{ehr_base_url}/DiagnosticReport/{again.json()['id']}", timeout=30)
    finally:
        httpx.delete(f"{ehr_base_url}/DiagnosticReport/{made.json()['id']}", timeout=30)
