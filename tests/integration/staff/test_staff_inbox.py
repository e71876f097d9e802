"""The care team's inbox against the running app (real HAPI and Redis): a patient writes, a nurse on
their care team finds it in the inbox, replies (the patient sees the reply in their thread), assigns it
and marks it done, each a FHIR write through the gateway; the chart opened shows in the patient's access
log by the nurse's name. A nurse outside the care team is refused until they break the glass with a reason.
Every run creates its own conversation (the shared EHR keeps the earlier ones)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import ehr_search
from tests.integration.portal.helpers import (
    access_log_text,
    csrf_of,
    portal_browser,
    portal_sign_in,
    submission_of,
    text_of,
)

from .helpers import care_team_member, outsider, staff_account, staff_sign_in

pytestmark = pytest.mark.integration
PATIENT = "pt-0014"


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def _write(gateway: GatewayServer, patient: Person, words: str) -> str:
    """The patient writes to the care team through their portal; returns the new thread's id."""
    with portal_browser(gateway) as b:
        form = portal_sign_in(b, patient, "/portal/messages/new")
        sent = b.post("/portal/messages", data={
            "csrf_token": csrf_of(form.text), "submission": submission_of(form.text),
            "to": "Organization/org-team-care", "topic": "medication", "subject": f"Dose {words}", "text": words})
        assert sent.status_code == 303, text_of(sent.text)[:300]
        return sent.headers["location"].split("/portal/messages/")[1].split("?")[0]


def test_a_nurse_answers_a_patient_who_then_sees_the_reply(gateway: GatewayServer, ehr_base_url: str,
                                                           patient: Person) -> None:
    words = uuid.uuid4().hex[:10]
    thread = _write(gateway, patient, words)
    nurse_id = care_team_member(ehr_base_url, PATIENT, "nurse")
    clinician_id = care_team_member(ehr_base_url, PATIENT, "clinician")
    nurse = staff_account(gateway, nurse_id)
    answer = f"Take it with food, {words}."
    with portal_browser(gateway, "203.0.113.20") as s:
        inbox = staff_sign_in(s, nurse, "/portal/staff/inbox")
        assert inbox.status_code == 200, text_of(inbox.text)[:300]
        assert f"Dose {words}" in text_of(inbox.text) and f"/portal/staff/inbox/{thread}" in inbox.text
        page = s.get(f"/portal/staff/inbox/{thread}")
        seen = text_of(page.text)
        assert words in seen and "MRN" in seen and "waiting" in seen
        # An empty reply is refused with a field error and writes nothing.
        empty = s.post(f"/portal/staff/inbox/{thread}/reply", data={"csrf_token": csrf_of(page.text), "text": " ",
                                                                    "submission": submission_of(page.text)})
        assert empty.status_code == 400 and "Write your reply" in text_of(empty.text)
        data = {"csrf_token": csrf_of(page.text), "text": answer, "submission": submission_of(page.text)}
        sent = s.post(f"/portal/staff/inbox/{thread}/reply", data=data)
        assert sent.status_code == 303, text_of(sent.text)[:300]
        again = s.post(f"/portal/staff/inbox/{thread}/reply", data=data)  # the same form sent twice
        assert again.status_code == 303
        replies = ehr_search(ehr_base_url, "Communication", {"part-of": f"Communication/{thread}"})
        mine = [r for r in replies if any(p.get("contentString") == answer for p in r["payload"])]
        assert len(mine) == 1
        assert mine[0]["sender"]["reference"] == f"Practitioner/{nurse_id}"
        assert mine[0]["recipient"] == [{"reference": f"Patient/{PATIENT}"}] and mine[0]["sent"]
        # Assign to the clinician, then mark done: one work item, as a Task in the EHR.
        page = s.get(f"/portal/staff/inbox/{thread}")
        assert s.post(f"/portal/staff/inbox/{thread}/assign", data={
            "csrf_token": csrf_of(page.text), "owner": f"Practitioner/{clinician_id}",
            "submission": "a-" + words}).status_code == 303
        assert s.post(f"/portal/staff/inbox/{thread}/done", data={
            "csrf_token": csrf_of(page.text), "submission": "d-" + words}).status_code == 303
        tasks = ehr_search(ehr_base_url, "Task", {"focus": f"Communication/{thread}"})
        assert len(tasks) == 1 and tasks[0]["status"] == "completed"
        assert tasks[0]["owner"]["reference"] == f"Practitioner/{nurse_id}"
        # Assigning to someone off the patient's care team is refused by the gateway.
        page = s.get(f"/portal/staff/inbox/{thread}")
        refused = s.post(f"/portal/staff/inbox/{thread}/assign", data={
            "csrf_token": csrf_of(page.text), "owner": "Practitioner/nobody-here", "submission": "x-" + words})
        assert refused.status_code == 422 and "care team" in text_of(refused.text)
        # The answered conversation has left the waiting list.
        assert f"/portal/staff/inbox/{thread}" not in s.get("/portal/staff/inbox").text
        chart = s.get(f"/portal/staff/patients/{PATIENT}")
        assert chart.status_code == 200 and "MRN" in text_of(chart.text)
    with portal_browser(gateway) as b:
        portal_sign_in(b, patient)
        conversation = text_of(b.get(f"/portal/messages/{thread}").text)
        assert answer in conversation
        nurse_name = re.sub(r"\s+", " ", ehr_search(ehr_base_url, "Practitioner", {"_id": nurse_id})[0]["name"][0]
                            ["family"])
        assert nurse_name in access_log_text(b, nurse_name)


def test_outside_the_care_team_the_chart_is_closed_until_the_glass_is_broken(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    stranger_id = outsider(ehr_base_url, PATIENT, "nurse")
    stranger = staff_account(gateway, stranger_id)
    with portal_browser(gateway, "203.0.113.21") as s:
        staff_sign_in(s, stranger)
        closed = s.get(f"/portal/staff/patients/{PATIENT}")
        assert closed.status_code == 403 and "not on this patient's care team" in text_of(closed.text)
        assert "MRN" not in text_of(closed.text)
        no_reason = s.post(f"/portal/staff/patients/{PATIENT}/break-glass",
                           data={"csrf_token": csrf_of(closed.text), "reason": "  "})
        assert no_reason.status_code == 400 and "Say why" in text_of(no_reason.text)
        opened = s.post(f"/portal/staff/patients/{PATIENT}/break-glass",
                        data={"csrf_token": csrf_of(closed.text), "reason": "Patient collapsed at the front desk"})
        assert opened.status_code == 303
        chart = s.get(opened.headers["location"])
        words = text_of(chart.text)
        assert chart.status_code == 200 and "MRN" in words and "Emergency access" in words
    # The patient reads it in their access log: who, and that it was emergency access.
    family = ehr_search(ehr_base_url, "Practitioner", {"_id": stranger_id})[0]["name"][0]["family"]
    with portal_browser(gateway) as b:
        portal_sign_in(b, patient)
        log = access_log_text(b, "emergency access")
        assert "emergency access, outside your care team" in log and family in log
