"""The health notebook in the portal against the running app (real HAPI and Redis): a question for a booked
visit written once however often the form is sent, changed, shared; shown on Home before the visit and on the
printout; in the EHR as the patient's own Observation; and in the access log in plain words."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from mappers.notebook import CATEGORY_SEARCH, VISIT_EXTENSION
from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import ehr_search

from .helpers import access_log_text, csrf_of, portal_browser, portal_sign_in, submission_of, text_of
from .test_portal_forms import booked_visit, cancel

pytestmark = pytest.mark.integration
PATIENT = "pt-0018"


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def entries(ehr_base_url: str) -> list[dict]:
    return ehr_search(ehr_base_url, "Observation", {"patient": f"Patient/{PATIENT}", "category": CATEGORY_SEARCH})


def test_a_question_for_a_visit_is_written_once_changed_shared_shown_and_printed(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    visit = booked_visit(ehr_base_url, PATIENT, ahead=timedelta(hours=2))
    try:
        _question(gateway, ehr_base_url, patient, visit)
    finally:
        cancel(ehr_base_url, visit)


def _question(gateway: GatewayServer, ehr_base_url: str, patient: Person, visit: str) -> None:
    before = {e["id"] for e in entries(ehr_base_url)}
    with portal_browser(gateway) as b:
        form = portal_sign_in(b, patient, "/portal/notebook/new?kind=question")
        assert form.status_code == 200 and "For which visit?" in text_of(form.text)
        assert f'value="{visit}" selected' in form.text  # the next visit is picked for you
        data = {"csrf_token": csrf_of(form.text), "submission": submission_of(form.text), "kind": "question",
                "text": "", "visit": visit}
        empty = b.post("/portal/notebook", data=data)
        assert empty.status_code == 422 and "Write your question." in text_of(empty.text)
        data["text"] = "Can I take my pills with coffee?"
        first = b.post("/portal/notebook", data=data)
        again = b.post("/portal/notebook", data=data)  # the same form sent twice writes once
        assert first.status_code == again.status_code == 303
        made = [e for e in entries(ehr_base_url) if e["id"] not in before]
        assert len(made) == 1, made
        entry = made[0]
        assert entry["status"] == "preliminary" and entry["performer"][0]["reference"] == f"Patient/{PATIENT}"
        assert entry["extension"] == [{"url": VISIT_EXTENSION, "valueReference": {"reference": f"Appointment/{visit}"}}]

        edit = b.get(f"/portal/notebook/{entry['id']}/edit")
        version = re.search(r'name="version" value="([^"]+)"', edit.text).group(1)
        saved = b.post(f"/portal/notebook/{entry['id']}", data={
            "csrf_token": csrf_of(edit.text), "submission": submission_of(edit.text), "version": version,
            "text": "Can I take my pills with coffee or tea?", "visit": visit})
        assert saved.status_code == 303 and "saved=changed" in saved.headers["location"]
        page = b.get("/portal/notebook")
        share = re.search(rf'action="/portal/notebook/{entry["id"]}/share".*?name="submission" value="([^"]+)"'
                          rf'.*?name="version" value="([^"]+)"', page.text, re.S)
        shared = b.post(f"/portal/notebook/{entry['id']}/share", data={
            "csrf_token": csrf_of(page.text), "submission": share.group(1), "version": share.group(2)})
        assert shared.status_code == 303
        stored = next(e for e in entries(ehr_base_url) if e["id"] == entry["id"])
        assert stored["status"] == "final" and stored["valueString"] == "Can I take my pills with coffee or tea?"
        page = text_of(b.get("/portal/notebook").text)
        assert "Shared with your care team" in page and "Can I take my pills with coffee or tea?" in page

        home = text_of(b.get("/portal/").text)
        assert "For your next visit" in home and "Can I take my pills with coffee or tea?" in home
        printout = text_of(b.get("/portal/notebook/print").text)
        assert "Health notebook of" in printout and "Can I take my pills with coffee or tea?" in printout
        log = access_log_text(b, "wrote in your health notebook", "changed or shared a note in your health notebook")
        assert "You from network address 203.0.113.7 wrote in your health notebook" in log
        assert "changed or shared a note in your health notebook" in log
