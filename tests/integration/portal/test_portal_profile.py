"""The profile pages against the running app (real HAPI and Redis): what is written to the EHR when a patient
changes their contact details, asks for an insurance change and reports an allergy; that a form sent twice
writes once, a form opened on an older record writes nothing, writes for another record are refused; and
that each reads in plain words in the patient's access log."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import auth, ehr_search, mint

from .helpers import access_log_text, csrf_of, portal_browser, portal_sign_in, text_of

pytestmark = pytest.mark.integration
PATIENT, OTHER = "pt-0019", "pt-0020"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Iterator[Person]:
    """The patient, enrolled; their record is put back as it was afterwards. The contact form here makes Spanish
    the record's language, and the EHR is shared: a later test enrolling this patient (the browser suite hands
    out every demo patient) must find the record as the demo data made it."""
    original = {k: v for k, v in _ehr_patient(ehr_base_url).items() if k != "meta"}
    yield enrol_patient(gateway, ehr_base_url, PATIENT)
    restored = httpx.put(f"{ehr_base_url}/Patient/{PATIENT}", json=original, timeout=30)
    assert restored.status_code == 200, restored.text[:300]


def _ehr_patient(base: str, pid: str = PATIENT) -> dict:
    return httpx.get(f"{base}/Patient/{pid}", timeout=30).json()


def _hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def _in_english(b: httpx.Client, html: str) -> None:
    """Read the portal in English with the language switch: the form below makes Spanish this record's
    preferred language, and the words checked here are the English ones (the Spanish pages are checked in
    tests/unit/portal/test_self_service_in_spanish.py)."""
    switched = b.post("/portal/language", data={"csrf_token": csrf_of(html), "lang": "en", "next": "/portal/"})
    assert switched.status_code == 303, text_of(switched.text)[:300]


def _contact_form(html: str, **changes: str) -> dict[str, str]:
    data = {"csrf_token": csrf_of(html), "submission": _hidden(html, "submission"), "version": _hidden(html, "version"),
            "phone_kind": "mobile", "email": "", "line1": "12 Elm St", "line2": "", "city": "Urbana", "state": "IL",
            "postal": "61801", "language": "es", "contact_by": "phone", "ec0_name": "", "ec0_relation": "",
            "ec0_phone": "", "ec1_name": "", "ec1_relation": "", "ec1_phone": ""}
    return data | changes



def test_contact_details_are_saved_once_and_a_stale_form_saves_nothing(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    phone = f"217-555-{random.randint(100, 199):04d}"
    with portal_browser(gateway) as b:
        form = portal_sign_in(b, patient, "/portal/profile/contact")
        assert form.status_code == 200, text_of(form.text)[:300]
        _in_english(b, form.text)
        before = _ehr_patient(ehr_base_url)
        data = _contact_form(form.text, phone=f"({phone[:3]}) {phone[4:]}", ec0_name="Maria Zhang",
                             ec0_relation="Sister", ec0_phone="217-555-0142")
        saved = b.post("/portal/profile/contact", data=data)
        assert saved.status_code == 303 and saved.headers["location"] == "/portal/profile?saved=contact", \
            text_of(saved.text)[:400]
        again = b.post("/portal/profile/contact", data=data)  # the same form sent twice
        assert again.status_code == 303
        after = _ehr_patient(ehr_base_url)
        assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
        assert after["telecom"][0] == {"system": "phone", "value": phone, "use": "mobile", "rank": 1}
        assert after["address"][0]["city"] == "Urbana" and after["communication"][0]["language"]["coding"][0][
            "code"] == "es"
        emergency = after["contact"][-1]
        assert emergency["name"] == {"text": "Maria Zhang"} and emergency["telecom"][0]["value"] == "217-555-0142"
        assert {k: after[k] for k in ("name", "birthDate", "identifier")} == {
            k: before[k] for k in ("name", "birthDate", "identifier")}
        page = text_of(b.get("/portal/profile?saved=contact").text)
        assert "Your contact details are saved" in page and phone in page and "Maria Zhang (Sister)" in page

        # The front desk changes the record while the patient has the form open: saving it writes nothing.
        opened = b.get("/portal/profile/contact")
        desk = {k: v for k, v in after.items() if k != "meta"}
        desk["telecom"] = [*after["telecom"], {"system": "email", "value": "front.desk@example.org"}]
        assert httpx.put(f"{ehr_base_url}/Patient/{PATIENT}", json=desk, timeout=30).status_code == 200
        changed = _ehr_patient(ehr_base_url)
        stale = b.post("/portal/profile/contact", data=_contact_form(opened.text, phone="217-555-0111"))
        assert stale.status_code == 409 and "changed since you opened this page" in text_of(stale.text)
        assert _ehr_patient(ehr_base_url)["meta"]["versionId"] == changed["meta"]["versionId"]
        assert 'value="217-555-0111"' in stale.text  # what was typed is not lost

        bad = b.post("/portal/profile/contact", data=_contact_form(
            opened.text, submission=uuid.uuid4().hex, phone="12", postal="ABCDE", email="me@"))
        assert bad.status_code == 422 and "area code" in text_of(bad.text) and "ZIP code" in text_of(bad.text)
        assert _ehr_patient(ehr_base_url)["meta"]["versionId"] == changed["meta"]["versionId"]
        assert "changed your personal details" in access_log_text(b, "changed your personal details")


def test_an_insurance_change_reaches_the_front_desk_and_an_allergy_is_recorded_unconfirmed(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    member = f"ZX{random.randint(10_000, 99_999)}"
    substance = f"Kiwi {uuid.uuid4().hex[:6]}"
    with portal_browser(gateway) as b:
        form = portal_sign_in(b, patient, "/portal/profile/insurance")
        _in_english(b, form.text)
        data = {"csrf_token": csrf_of(form.text), "submission": _hidden(form.text, "submission"), "change": "add",
                "insurer": "Acme Health", "member_id": member, "group": "G-100", "holder": "self",
                "holder_name": "", "start": "2027-01-01", "note": "New job"}
        sent = b.post("/portal/profile/insurance", data=data, files={"file": ("card.jpg", PDF, "image/jpeg")})
        assert sent.status_code == 303, text_of(sent.text)[:400]
        again = b.post("/portal/profile/insurance", data=data, files={"file": ("card.jpg", PDF, "image/jpeg")})
        assert again.headers["location"] == sent.headers["location"]
        requests = [m for m in ehr_search(ehr_base_url, "Communication", {"subject": f"Patient/{PATIENT}"})
                    if member in m["payload"][0].get("contentString", "")]
        assert len(requests) == 1
        assert requests[0]["recipient"] == [{"reference": "Organization/org-team-billing"}]
        assert requests[0]["topic"]["text"] == "Insurance card update"
        assert requests[0]["payload"][1]["contentAttachment"]["contentType"] == "application/pdf"
        page = text_of(b.get(sent.headers["location"]).text)
        assert "We sent your insurance details to the front desk" in page

        form = b.get("/portal/profile/allergies/new")
        data = {"csrf_token": csrf_of(form.text), "submission": _hidden(form.text, "submission"),
                "substance": substance, "category": "food", "reaction": "Itchy mouth", "severity": "mild",
                "onset": "2020-06-01"}
        assert b.post("/portal/profile/allergies", data=data).status_code == 303
        assert b.post("/portal/profile/allergies", data=data).status_code == 303
        mine = [a for a in ehr_search(ehr_base_url, "AllergyIntolerance", {"patient": f"Patient/{PATIENT}"})
                if a["code"].get("text") == substance]
        assert len(mine) == 1
        assert mine[0]["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
        assert mine[0]["recorder"]["reference"] == f"Patient/{PATIENT}"
        assert mine[0]["reaction"][0]["manifestation"][0]["text"] == "Itchy mouth"
        page = text_of(b.get("/portal/profile").text)
        assert f"{substance} You told us Not confirmed yet" in page
        log = access_log_text(b, "added an allergy to your record", "sent a message to your care team")
        assert "added an allergy to your record" in log and "sent a message to your care team" in log


def test_writes_for_another_record_are_refused_nothing_written_and_audited(
        gateway: GatewayServer, ehr_base_url: str, patient: Person) -> None:
    theirs = _ehr_patient(ehr_base_url, OTHER)
    their_allergies = ehr_search(ehr_base_url, "AllergyIntolerance", {"patient": f"Patient/{OTHER}"})
    token = mint(gateway, "launch/patient openid fhirUser patient/*.rs patient/Patient.u "
                          "patient/AllergyIntolerance.c", patient=PATIENT)
    body = {**{k: v for k, v in theirs.items() if k != "meta"},
            "telecom": [{"system": "phone", "value": "217-555-0100"}]}
    put = httpx.put(f"{gateway.fhir}/Patient/{OTHER}", json=body, headers=auth(token), timeout=30)
    assert put.status_code == 404 and put.json()["resourceType"] == "OperationOutcome"
    allergy = {"resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{OTHER}"},
               "code": {"text": "Peanuts"}, "category": ["food"]}
    post = httpx.post(f"{gateway.fhir}/AllergyIntolerance", json=allergy, headers=auth(token), timeout=30)
    assert post.status_code == 422 and "your own record" in post.json()["issue"][0]["diagnostics"]
    assert _ehr_patient(ehr_base_url, OTHER)["meta"] == theirs["meta"]
    assert ehr_search(ehr_base_url, "AllergyIntolerance", {"patient": f"Patient/{OTHER}"}) == their_allergies
    with portal_browser(gateway) as b:
        portal_sign_in(b, patient)
        log = access_log_text(b, "tried to add an allergy to your record")
        assert "tried to add an allergy to your record" in log
