"""The profile pages with respx standing in for the gateway's /fhir: what a person reads, what each form
sends (once, with If-Match for the record), and what a stale form or a refusal shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import respx

from portal.pages import profile

from .pages_harness import AccountChoices
from .test_messages_pages import FHIR, PT, bundle, gw, text, visit  # noqa: F401 (gw is a fixture)

PATIENT = {"resourceType": "Patient", "id": PT, "meta": {"versionId": "5"}, "birthDate": "1970-05-04",
           "name": [{"family": "Rivera", "given": ["Ana"]}],
           "telecom": [{"system": "phone", "value": "447-555-0174", "use": "mobile", "rank": 1}],
           "address": [{"use": "home", "line": ["1 Oak St"], "city": "Springfield", "state": "IL",
                        "postalCode": "62712"}],
           "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]},
                              "preferred": True}]}
COVERAGE = {"resourceType": "Coverage", "id": "cov-1", "status": "active", "subscriberId": "BCB773528200",
            "beneficiary": {"reference": f"Patient/{PT}"},
            "payor": [{"reference": "Organization/org-payer-bcbs", "display": "Blue Cross and Blue Shield"}],
            "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": "5"}], "text": "PRIVATE HEALTH INSURANCE"}}
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CLINIC_ALLERGY = {"resourceType": "AllergyIntolerance", "id": "al-1", "code": {"text": "Penicillin"},
                  "patient": {"reference": f"Patient/{PT}"}, "recorder": {"reference": "Practitioner/prac-01"},
                  "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]}}
MY_ALLERGY = {"resourceType": "AllergyIntolerance", "id": "al-2", "code": {"text": "Peanuts"},
              "patient": {"reference": f"Patient/{PT}"}, "recorder": {"reference": f"Patient/{PT}"},
              "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "unconfirmed"}]}}
GOOD = {"csrf_token": "csrf-1", "submission": "s" * 24, "version": "5", "phone": "(217) 555-0123",
        "phone_kind": "mobile", "email": "ana@example.org", "line1": "1 Oak St", "line2": "", "city": "Springfield",
        "state": "IL", "postal": "62712", "language": "es", "contact_by": "email",
        "ec0_name": "Luis Rivera", "ec0_relation": "Son", "ec0_phone": "217-555-0100"}


async def test_the_overview_says_it_all_in_words(tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get(f"/Patient/{PT}").respond(json=PATIENT)
    coverage = gw.get("/Coverage").respond(json=bundle(COVERAGE))
    gw.get("/AllergyIntolerance").respond(json=bundle(CLINIC_ALLERGY, MY_ALLERGY))
    words = text(await profile.overview(visit(tmp_path, path="/portal/profile")))
    assert "447-555-0174 (mobile phone)" in words and "Spanish (Español)" in words and "A phone call" in words
    assert "Blue Cross and Blue Shield" in words and "Member ID: BCB773528200" in words and "In use" in words
    assert "Peanuts You told us Not confirmed yet" in words and "Penicillin" in words
    assert "You have not told us who to call in an emergency" in words
    assert "Change your password" in words and "urn:" not in words and "unconfirmed" not in words
    assert dict(coverage.calls.last.request.url.params)["beneficiary"] == f"Patient/{PT}"


async def test_every_allergy_shows_however_many_pages_the_ehr_answers_in(tmp_path: Path,
                                                                         gw: respx.MockRouter) -> None:  # noqa: F811
    """An allergy must never be left off for being on the EHR's second page of answers."""
    gw.get(f"/Patient/{PT}").respond(json=PATIENT)
    gw.get("/Coverage").respond(json=bundle(COVERAGE))
    first = {**bundle(CLINIC_ALLERGY), "link": [{"relation": "next", "url": f"{FHIR}?page=2"}]}
    gw.get("/AllergyIntolerance").respond(json=first)
    gw.get("", params={"page": "2"}).respond(json=bundle(MY_ALLERGY))
    words = text(await profile.overview(visit(tmp_path, path="/portal/profile")))
    assert "Penicillin" in words and "Peanuts You told us Not confirmed yet" in words


async def test_one_part_failing_leaves_the_rest(tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get(f"/Patient/{PT}").respond(json=PATIENT)
    gw.get("/Coverage").respond(503)
    gw.get("/AllergyIntolerance").respond(json=bundle())
    words = text(await profile.overview(visit(tmp_path, path="/portal/profile")))
    assert "We can't show your insurance right now" in words and "447-555-0174" in words


async def test_saving_contact_details_sends_the_patient_once_with_if_match(tmp_path: Path,
                                                                          gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get(f"/Patient/{PT}").respond(json=PATIENT)
    put = gw.put(f"/Patient/{PT}").respond(200, json=PATIENT)
    page = await profile.save_contact(visit(tmp_path, "POST", "/portal/profile/contact", data=GOOD))
    assert page.status_code == 303 and page.headers["location"] == "/portal/profile?saved=contact"
    request = put.calls.last.request
    assert request.headers["If-Match"] == 'W/"5"' and request.headers["Idempotency-Key"] == "profile-" + "s" * 24
    sent = json.loads(request.content)
    assert sent["telecom"][0] == {"system": "email", "value": "ana@example.org", "use": "home", "rank": 1}
    assert sent["contact"][0]["name"] == {"text": "Luis Rivera"} and sent["name"] == PATIENT["name"]
    assert put.call_count == 1


async def test_bad_fields_are_named_and_nothing_is_sent(tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    put = gw.put(f"/Patient/{PT}").respond(200, json=PATIENT)
    data = {**GOOD, "phone": "12", "postal": "abc", "email": "x@"}
    page = await profile.save_contact(visit(tmp_path, "POST", "/portal/profile/contact", data=data))
    words = text(page)
    assert page.status_code == 422 and "area code" in words and "ZIP code of 5 digits" in words
    assert 'aria-invalid="true"' in page.body.decode() and 'value="12"' in page.body.decode()  # nothing lost
    assert not put.called


async def test_a_form_opened_on_an_older_record_shows_what_changed_and_saves_nothing(
        tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    newer = {**PATIENT, "meta": {"versionId": "6"},
             "telecom": [{"system": "phone", "value": "309-555-0199", "use": "home", "rank": 1}]}
    gw.get(f"/Patient/{PT}").respond(json=newer)
    put = gw.put(f"/Patient/{PT}").respond(412, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "conflict", "diagnostics": "Patient/pt-1 has changed since you read it"}]})
    page = await profile.save_contact(visit(tmp_path, "POST", "/portal/profile/contact", data=GOOD))
    words, html = text(page), page.body.decode()
    assert page.status_code == 409 and "changed since you opened this page" in words
    assert "On file now: 309-555-0199" in words and 'value="(217) 555-0123"' in html  # both shown
    assert 'name="version" value="6"' in html and put.call_count == 1


async def test_an_insurance_change_is_a_message_to_the_front_desk(tmp_path: Path,
                                                                 gw: respx.MockRouter) -> None:  # noqa: F811
    post = gw.post("/Communication").respond(201, json={"resourceType": "Communication", "id": "c-7"})
    data = {"csrf_token": "csrf-1", "submission": "i" * 24, "change": "add", "insurer": "Acme Health",
            "member_id": "AB12345", "group": "", "holder": "self", "holder_name": "", "start": "", "note": ""}
    page = await profile.send_insurance(visit(tmp_path, "POST", "/portal/profile/insurance", data=data,
                                              files={"file": ("card.png", b"%PDF-1.4\n%%EOF\n", "image/png")}))
    assert page.status_code == 303 and "saved=insurance&thread=c-7" in page.headers["location"]
    sent = json.loads(post.calls.last.request.content)
    assert sent["recipient"] == [{"reference": "Organization/org-team-billing"}]
    assert sent["topic"] == {"text": "Insurance card update"} and "Member ID: AB12345" in sent["payload"][0][
        "contentString"]
    assert sent["payload"][1]["contentAttachment"]["contentType"] == "application/pdf"
    assert post.calls.last.request.headers["Idempotency-Key"] == "insurance-" + "i" * 24


async def test_an_allergy_report_is_sent_unconfirmed_and_a_refusal_is_shown(tmp_path: Path,
                                                                           gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get(f"/Patient/{PT}").respond(json=PATIENT)
    post = gw.post("/AllergyIntolerance").respond(201, json={**MY_ALLERGY})
    data = {"csrf_token": "csrf-1", "submission": "a" * 24, "substance": "Peanuts", "category": "food",
            "reaction": "Hives", "severity": "mild", "onset": "2019-05-30"}
    page = await profile.report_allergy(visit(tmp_path, "POST", "/portal/profile/allergies", data=data))
    assert page.status_code == 303
    sent = json.loads(post.calls.last.request.content)
    assert sent["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    assert sent["patient"] == sent["recorder"] == {"reference": f"Patient/{PT}"}
    post.respond(422, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "business-rule", "diagnostics": "An allergy you report stays unconfirmed"}]})
    page = await profile.report_allergy(visit(tmp_path, "POST", "/portal/profile/allergies", data=data))
    assert page.status_code == 422 and "An allergy you report stays unconfirmed." in text(page)
    bad = await profile.report_allergy(visit(tmp_path, "POST", "/portal/profile/allergies",
                                             data={**data, "onset": "1960-01-01"}))
    assert bad.status_code == 422 and "before you were born" in text(bad) and post.call_count == 2


async def test_the_forms_render_with_labels_for_every_field(tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get(f"/Patient/{PT}").respond(json=PATIENT)
    contact = (await profile.contact_form(visit(tmp_path, path="/portal/profile/contact"))).body.decode()
    assert 'name="version" value="5"' in contact and 'value="447-555-0174"' in contact
    for html in (contact, (await profile.insurance_form(visit(tmp_path))).body.decode(),
                 (await profile.allergy_form(visit(tmp_path))).body.decode()):
        ids = set(re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', html))
        labelled = set(re.findall(r'<label for="([^"]+)"', html))
        assert ids and ids <= labelled, ids - labelled


async def test_notice_choices_show_and_save_with_the_account(tmp_path: Path, gw: respx.MockRouter) -> None:  # noqa: F811
    gw.get(f"/Patient/{PT}").respond(json=PATIENT)
    gw.get("/Coverage").respond(json=bundle())
    gw.get("/AllergyIntolerance").respond(json=bundle())
    choices = AccountChoices()
    choices.off = {"reminder"}
    page = await profile.overview(visit(tmp_path, path="/portal/profile", accounts=choices))
    html = page.body.decode()
    assert 'value="demo@example.test"' in html
    assert re.search(r'value="message" checked', html) and not re.search(r'value="reminder" checked', html)
    assert "always tell you about a sign-in from a new device" in text(page)
    saved = await profile.save_notices(visit(tmp_path, "POST", "/portal/profile/notices", accounts=choices,
                                             data={"csrf_token": "csrf-1", "notice_email": " ana@example.org ",
                                                   "on": ["reminder", "result"]}))
    assert saved.headers["location"] == "/portal/profile?saved=notices#notices"
    assert choices.email == "ana@example.org" and choices.off == {"message", "request", "appointment"}
    bad = await profile.save_notices(visit(tmp_path, "POST", "/portal/profile/notices", accounts=choices,
                                           data={"csrf_token": "csrf-1", "notice_email": "not an address"}))
    assert bad.headers["location"] == "/portal/profile?notices=bad-email#notices"
    assert choices.email == "ana@example.org"  # nothing changed
    shown = await profile.overview(visit(tmp_path, path="/portal/profile", accounts=choices,
                                         query="notices=bad-email"))
    assert "Enter an e-mail address like name@example.com" in text(shown)
