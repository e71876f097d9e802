"""Every portal page as a patient and a caregiver use it, against the running app (real HAPI and Redis):
what each page says, that it shows only the open record, and what editing ids or forms can reach."""

from __future__ import annotations

import json
import re
import secrets

import httpx
import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient, person_from_cli, portal_auth
from tests.integration.gateway.helpers import ehr_search

from .helpers import choose_language, csrf_of, follow, page_showing, portal_browser, portal_sign_in, text_of

pytestmark = pytest.mark.integration
PATIENT = "pt-0001"  # prefers Spanish in the EHR: a test reading the English words chooses English first


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def _name(ehr_base_url: str, patient_id: str) -> str:
    name = httpx.get(f"{ehr_base_url}/Patient/{patient_id}", timeout=30).json()["name"][0]
    return " ".join([*name.get("given", []), name["family"]])


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_each_page_shows_the_patients_own_record_in_words(gateway: GatewayServer, ehr_base_url: str,
                                                          patient: Person) -> None:
    name = _name(ehr_base_url, PATIENT)
    expected = {
        "/portal/": ["Your next visits", "New test results", "Your medicines", "Albuterol",
                     "Vaccines and check-ups due"],
        "/portal/record": ["Visits", "Health problems", "Medicines", "Allergies", "Vaccinations", "Prescribed by"],
        "/portal/results": ["Lab results", "A1C (average blood sugar)", "Normal range", "Changes over time",
                            "What this test measures"],
        "/portal/access-log": ["Who has looked at your record", "You", "the patient portal"],
        "/portal/caregivers": ["People who can see your record", "Invite a caregiver"],
        "/portal/download": ["Download your whole record", "Download a summary", "A health summary to print"],
        "/portal/account": ["Where you are signed in", "this device"],
    }
    with portal_browser(gateway) as b:
        home = portal_sign_in(b, patient)
        assert home.status_code == 200
        choose_language(b, home, "en")
        for path, words in expected.items():
            page = page_showing(b, path, *words) if path == "/portal/access-log" else b.get(path)
            assert page.status_code == 200, (path, page.text[:300])
            text = text_of(page.text)
            assert f"Your record: {name}" in text, path
            for word in words:
                assert word in text, (path, word)
            # No PHI in titles; no raw FHIR JSON or codes where a person reads.
            assert name.split()[0] not in _title(page.text) and PATIENT not in _title(page.text), path
            assert '"resourceType"' not in page.text and "http://loinc.org" not in page.text, path
            assert page.headers["cache-control"] == "no-store"
            assert "script-src 'self'" in page.headers["content-security-policy"]
        # Flags are words as well as colour.
        results = text_of(b.get("/portal/results").text)
        assert re.search(r"(High|Low|Normal)", results)


def test_the_whole_record_downloads_as_fhir_json_of_this_patient_only(gateway: GatewayServer,
                                                                      patient: Person) -> None:
    with portal_browser(gateway) as b:
        assert portal_sign_in(b, patient).status_code == 200
        answer = b.get("/portal/download/record.json")
        assert answer.status_code == 200
        assert answer.headers["content-disposition"] == 'attachment; filename="health-record.json"'
        bundle = json.loads(answer.content)
        kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
        assert {"Patient", "Observation", "Encounter", "MedicationRequest"} <= kinds
        assert "AuditEvent" not in kinds, "the access log has its own page"
        patients = {e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"}
        assert patients == {PATIENT}
        subjects = set()
        for entry in bundle["entry"]:
            subject = entry["resource"].get("subject", [])
            # Most types name one subject; Account names a list of them.
            for reference in subject if isinstance(subject, list) else [subject]:
                subjects.add(reference["reference"])
        assert subjects <= {f"Patient/{PATIENT}"}
        # The summary: either the EHR's IPS document or a plain "not offered here".
        summary = b.get("/portal/download/summary.json")
        if summary.headers["content-type"].startswith("application/fhir+json"):
            assert summary.json()["resourceType"] == "Bundle"
        else:
            assert "does not make patient summaries yet" in text_of(summary.text)


def test_the_health_summary_prints_and_downloads_as_a_pdf(gateway: GatewayServer, ehr_base_url: str,
                                                          patient: Person) -> None:
    with portal_browser(gateway) as b:
        assert portal_sign_in(b, patient).status_code == 200
        page = b.get("/portal/download/summary")
        assert page.status_code == 200
        text = text_of(page.text)
        assert _name(ehr_base_url, PATIENT) in text and "Latest test results" in text and "Medicines" in text
        progress = b.get("/portal/download/making-pdf")
        assert 'http-equiv="refresh"' in progress.text and "<progress" in progress.text
        pdf = b.get("/portal/download/summary.pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-") and pdf.headers["cache-control"] == "no-store"


def test_edited_ids_and_forged_forms_reach_nothing(gateway: GatewayServer, patient: Person) -> None:
    with portal_browser(gateway) as b:
        page = portal_sign_in(b, patient, "/portal/account")
        token = csrf_of(page.text)
        # Another session id (anyone's) in the URL: not found, nothing ended.
        other = b.post(f"/portal/account/sessions/{secrets.token_hex(32)}/end", data={"csrf_token": token})
        assert other.status_code == 404
        # There is no page that takes a patient id: a patient's id in the URL or the query changes nothing.
        assert b.get("/portal/Patient/pt-0002").status_code == 404
        results = b.get("/portal/results", params={"patient": "pt-0002"})
        assert results.status_code == 200 and "pt-0002" not in results.text
        # Switching records without the form token is refused.
        assert b.post("/portal/switch", data={"csrf_token": "nope"}).status_code == 400
        assert b.get("/portal/account").status_code == 200


def test_a_caregiver_picks_whose_record_and_the_banner_follows(gateway: GatewayServer,
                                                               ehr_base_url: str) -> None:
    related = ehr_search(ehr_base_url, "RelatedPerson", {"_count": 50})
    targets = []
    for rp in related:
        pid = rp["patient"]["reference"].split("/")[-1]
        if pid not in [t[0] for t in targets]:
            targets.append((pid, rp["id"]))
        if len(targets) == 2:
            break
    assert len(targets) == 2
    username = f"it-carer-{secrets.token_hex(3)}"
    outputs = [portal_auth(gateway, "proxy", "link", "--patient", pid, "--related-person", rp_id,
                           "--caregiver-username", username) for pid, rp_id in targets]
    carer = person_from_cli(outputs[0])  # the first link created the account and printed its secrets once
    (first, _), (second, _) = targets
    with portal_browser(gateway) as b:
        home = portal_sign_in(b, carer, pick=first)
        assert home.status_code == 200
        text = text_of(home.text)
        assert f"You are looking at the record of {_name(ehr_base_url, first)}" in text and "caregiver" in text
        page = b.get("/portal/caregivers")
        switched = follow(b, b.post("/portal/switch", data={"csrf_token": csrf_of(page.text)}), carer, pick=second)
        assert switched.status_code == 200
        assert f"You are looking at the record of {_name(ehr_base_url, second)}" in text_of(switched.text)
        assert _name(ehr_base_url, first) not in text_of(switched.text)
