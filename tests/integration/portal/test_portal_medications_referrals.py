"""Medicines and referrals in the portal against the running app (real HAPI and Redis): what a refill
request and a referral request write to the EHR, that a form sent twice writes once, that another
patient's prescription posted to the refill form is refused and leaves nothing behind, how each request's
status reads as the care team moves it along, and that each write reads in plain words in the access log."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest

from mappers.medications import medication
from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import ehr_search

from .helpers import access_log_text, csrf_of, portal_browser, portal_sign_in, submission_of, text_of

pytestmark = pytest.mark.integration
PATIENT, OTHER = "pt-0021", "pt-0025"


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def _refillable(base: str, patient_id: str) -> dict[str, Any]:
    active = ehr_search(base, "MedicationRequest", {"patient": f"Patient/{patient_id}", "status": "active",
                                                    "intent": "order"})
    fills = ehr_search(base, "MedicationDispense", {"patient": f"Patient/{patient_id}"})
    return next(rx for rx in active if medication(rx, dispenses=fills).refills_left)


def _requests(base: str, rx_id: str) -> list[dict[str, Any]]:
    return ehr_search(base, "MedicationRequest", {"identifier": f"urn:portal:refill-request|{rx_id}"})


def _care_team_sets(base: str, resource: dict[str, Any], **changes: Any) -> None:
    body = {k: v for k, v in resource.items() if k != "meta"} | changes
    httpx.put(f"{base}/{resource['resourceType']}/{resource['id']}", json=body, timeout=60).raise_for_status()


def _page_once_it_shows(b: httpx.Client, path: str, *wanted: str) -> str:
    """A page once it shows every wanted phrase: a change made in the EHR itself (the care team's) reaches
    the gateway's cache within its bounded delay (5 s by default)."""
    text = ""
    for _ in range(12):
        text = text_of(b.get(path).text)
        if all(w in text for w in wanted):
            return text
        time.sleep(1)
    return text


def test_refill_request_from_the_portal(gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    rx = _refillable(ehr_base_url, PATIENT)
    for earlier in _requests(ehr_base_url, rx["id"]):  # what an interrupted run left open
        if earlier["status"] in ("draft", "active", "on-hold"):
            _care_team_sets(ehr_base_url, earlier, status="cancelled")
    theirs = _refillable(ehr_base_url, OTHER)
    note = f"Out on Friday {uuid.uuid4().hex[:8]}"
    with portal_browser(gateway) as b:
        assert portal_sign_in(b, patient, "/portal/medications").status_code == 200
        page = b.get("/portal/medications")
        assert f"/portal/medications/{rx['id']}/refill" in page.text
        form = b.get(f"/portal/medications/{rx['id']}/refill")
        assert form.status_code == 200 and "Which pharmacy" in text_of(form.text)
        pharmacy = re.search(r'name="pharmacy" value="(Organization/[^"]+)"', form.text).group(1)
        data = {"csrf_token": csrf_of(form.text), "submission": submission_of(form.text), "pharmacy": pharmacy,
                "note": note}
        sent = b.post(f"/portal/medications/{rx['id']}/refill", data=data)
        again = b.post(f"/portal/medications/{rx['id']}/refill", data=data)  # the same form sent twice
        assert sent.status_code == again.status_code == 303, text_of(sent.text)[:300]
        open_ones = [r for r in _requests(ehr_base_url, rx["id"]) if r["status"] == "draft"]
        assert len(open_ones) == 1
        stored = open_ones[0]
        assert stored["note"][0]["text"] == note and stored["dispenseRequest"]["performer"]["reference"] == pharmacy
        assert "Sent" in text_of(b.get("/portal/medications").text)

        # Another patient's prescription id posted to the same form: refused, nothing written.
        before = len(_requests(ehr_base_url, theirs["id"]))
        refused = b.post(f"/portal/medications/{theirs['id']}/refill",
                         data={**data, "submission": uuid.uuid4().hex})
        assert refused.status_code == 404 and "could not find" in text_of(refused.text)
        assert len(_requests(ehr_base_url, theirs["id"])) == before

        # The care team declines it, with a reason: the patient reads it, and may ask again.
        _care_team_sets(ehr_base_url, stored, status="cancelled",
                        statusReason={"text": "Please book a blood pressure check first"})
        shown = _page_once_it_shows(b, "/portal/medications", "Declined")
        assert "Declined" in shown and "Please book a blood pressure check first" in shown
        log = access_log_text(b, "asked for a prescription refill", "tried to ask for a prescription refill")
        assert "asked for a prescription refill" in log and "tried to ask for a prescription refill" in log


def test_referral_request_from_the_portal(gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    reason = f"Knee pain on stairs {uuid.uuid4().hex[:8]}"
    with portal_browser(gateway) as b:
        assert portal_sign_in(b, patient, "/portal/referrals").status_code == 200
        form = b.get("/portal/referrals/new")
        practice = re.search(r'name="practice" value="(Organization/[^"]*orthopedics)"', form.text).group(1)
        data = {"csrf_token": csrf_of(form.text), "submission": submission_of(form.text), "practice": practice,
                "reason": reason, "note": ""}
        empty = b.post("/portal/referrals", data={**data, "reason": "", "practice": ""})
        assert empty.status_code == 422 and "Choose the kind of specialist" in text_of(empty.text)
        sent = b.post("/portal/referrals", data=data)
        again = b.post("/portal/referrals", data=data)
        assert sent.status_code == again.status_code == 303
        stored = [sr for sr in ehr_search(ehr_base_url, "ServiceRequest", {"patient": f"Patient/{PATIENT}",
                                                                            "intent": "proposal"})
                  if sr.get("reasonCode") == [{"text": reason}]]
        assert len(stored) == 1
        assert stored[0]["status"] == "active" and stored[0]["performer"][0]["reference"] == practice
        page = text_of(b.get("/portal/referrals").text)
        assert "Bones and joints (orthopedics)" in page and reason in page and "Sent" in page
        # The care team makes the referral: the request reads as done, naming the practice.
        order = {k: v for k, v in stored[0].items() if k not in ("id", "meta", "identifier", "note")}
        order.update(intent="order", basedOn=[{"reference": f"ServiceRequest/{stored[0]['id']}"}])
        httpx.post(f"{ehr_base_url}/ServiceRequest", json=order, timeout=60).raise_for_status()
        _care_team_sets(ehr_base_url, stored[0], status="completed")
        page = _page_once_it_shows(b, "/portal/referrals", "Referral made")
        assert "Referral made" in page and "Springfield Orthopaedic" in page
        assert "asked for a referral to a specialist" in access_log_text(b, "asked for a referral to a specialist")
