"""The profile's pure parts: the contact form read from a Patient, its checks in words, the Patient it
writes (only what a patient may change, everything else kept), insurance in words and the allergy report."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mappers.allergy_report import allergy_errors, kinds_in, reported_allergy
from mappers.coverage import coverage_cards, insurance_errors, insurance_request_text
from mappers.inbound import patient_update
from mappers.inbound import reported_allergy as shaped_allergy
from mappers.profile import (
    changed_meanwhile,
    contact_details,
    normal_phone,
    patient_with_profile,
    profile_errors,
    profile_form,
)

TODAY = date(2026, 12, 1)
PATIENT = {
    "resourceType": "Patient", "id": "pt-1", "meta": {"versionId": "3"}, "birthDate": "1970-05-04",
    "name": [{"family": "Rivera", "given": ["Ana"]}],
    "telecom": [{"system": "phone", "value": "447-555-0174", "use": "mobile", "rank": 1},
                {"system": "phone", "value": "309-555-0100", "use": "work"},
                {"system": "email", "value": "ana@example.net", "use": "home"},
                {"system": "fax", "value": "309-555-0101"}],
    "address": [{"use": "home", "type": "both", "line": ["4798 Washington St", "Apt 1B"], "city": "Springfield",
                 "state": "IL", "postalCode": "62712", "country": "US"},
                {"use": "work", "line": ["1 Main St"], "city": "Peoria", "state": "IL", "postalCode": "61602"}],
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}, "preferred": True}],
    "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131",
                                               "code": "N"}]}], "name": {"text": "Next of kin"}}],
}


def form(**changes: str) -> dict[str, str]:
    return {**profile_form(PATIENT), **changes}


def test_the_form_shows_what_is_on_file() -> None:
    f = profile_form(PATIENT)
    assert (f["phone"], f["phone_kind"], f["email"]) == ("447-555-0174", "mobile", "ana@example.net")
    assert (f["line1"], f["line2"], f["city"], f["state"], f["postal"]) == (
        "4798 Washington St", "Apt 1B", "Springfield", "IL", "62712")
    assert f["language"] == "en-US" and f["contact_by"] == "phone" and f["ec0_name"] == ""
    words = contact_details(PATIENT)
    assert words.language == "English" and words.contact_by == "A phone call"
    assert words.address_lines == ["4798 Washington St", "Apt 1B", "Springfield, IL 62712"]


@pytest.mark.parametrize(("raw", "kept"), [("(217) 555-0123", "217-555-0123"), ("+1 217.555.0123", "217-555-0123"),
                                           ("12175550123", "217-555-0123"), ("+44 20 7946 0958", "+442079460958"),
                                           ("555-0123", None), ("call me", None), ("017-555-0123", None)])
def test_phone_numbers_are_kept_in_one_form_or_refused(raw: str, kept: str | None) -> None:
    assert normal_phone(raw) == kept


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"phone": "555-01"}, "phone", "area code"),
    ({"email": "ana@"}, "email", "name@example.com"),
    ({"phone": "", "email": ""}, "phone", "at least a phone number or an e-mail"),
    ({"postal": "6271"}, "postal", "ZIP code of 5 digits"),
    ({"state": "ZZ"}, "state", "Choose the state"),
    ({"city": ""}, "city", "town or city"),
    ({"language": "xx"}, "language", "Choose the language"),
    ({"contact_by": "email", "email": ""}, "contact_by", "Add an e-mail address"),
    ({"contact_by": "sms", "phone": "", "email": "a@b.example"}, "contact_by", "Add a phone number"),
    ({"ec0_name": "Luis"}, "ec0_phone", "phone number"),
    ({"ec1_phone": "217-555-0100"}, "ec1_name", "name"),
    ({"ec0_name": "Luis", "ec0_phone": "12"}, "ec0_phone", "area code"),
])
def test_each_bad_field_gets_its_own_message(changes: dict, field: str, words: str) -> None:
    errors = profile_errors(form(**changes))
    assert field in errors and words in " ".join(errors[field])


def test_a_good_form_has_no_errors() -> None:
    assert profile_errors(form(ec0_name="Luis Rivera", ec0_phone="(217) 555-0100", ec0_relation="Son")) == {}


def test_the_patient_written_changes_only_what_the_form_shows_and_the_gateway_accepts_it() -> None:
    typed = form(phone="(217) 555 0123", email="ana.r@example.org", line1="12 Elm St", line2="", city="Urbana",
                 state="il", postal="61801", language="es", contact_by="sms", ec0_name="Luis Rivera",
                 ec0_relation="Son", ec0_phone="217-555-0100")
    updated = patient_with_profile(PATIENT, typed)
    assert updated["telecom"][:3] == [
        {"system": "sms", "value": "217-555-0123", "use": "mobile", "rank": 1},
        {"system": "phone", "value": "217-555-0123", "use": "mobile", "rank": 2},
        {"system": "email", "value": "ana.r@example.org", "use": "home", "rank": 3}]
    assert {"system": "phone", "value": "309-555-0100", "use": "work"} in updated["telecom"]  # kept as it was
    assert {"system": "fax", "value": "309-555-0101"} in updated["telecom"]
    home, work = updated["address"]
    assert home == {"use": "home", "type": "both", "country": "US", "line": ["12 Elm St"], "city": "Urbana",
                    "state": "IL", "postalCode": "61801"}
    assert work["city"] == "Peoria"
    assert updated["communication"][0]["language"]["coding"][0]["code"] == "es"
    assert updated["communication"][0]["preferred"] is True and updated["communication"][1]["preferred"] is False
    assert updated["contact"][0]["name"] == {"text": "Next of kin"}  # not an emergency contact: kept
    emergency = updated["contact"][1]
    assert emergency["name"] == {"text": "Luis Rivera"} and emergency["telecom"][0]["value"] == "217-555-0100"
    assert emergency["relationship"][1] == {"text": "Son"}
    assert updated["name"] == PATIENT["name"] and "meta" not in updated
    # The gateway's own rule accepts it: nothing but the editable elements changed.
    assert patient_update(PATIENT, {**updated, "meta": PATIENT["meta"]})["telecom"] == updated["telecom"]
    # Read back, the form shows what was saved; emptying a contact's fields removes them.
    again = profile_form(updated)
    assert (again["contact_by"], again["ec0_name"], again["ec0_relation"], again["language"]) == (
        "sms", "Luis Rivera", "Son", "es")
    assert "contact" not in patient_with_profile({**updated, "contact": [updated["contact"][1]]},
                                                 {**again, "ec0_name": "", "ec0_phone": "", "ec0_relation": ""})


def test_a_changed_record_is_shown_field_by_field() -> None:
    on_file = form(phone="217-555-0999")
    typed = form(email="new@example.org")
    assert changed_meanwhile(typed, on_file) == {"phone": "217-555-0999", "email": "ana@example.net"}


def test_insurance_in_words_current_first_and_the_request_text() -> None:
    cov = {"resourceType": "Coverage", "status": "active", "subscriberId": "BCB77",
           "payor": [{"reference": "Organization/p", "display": "Blue Cross"}],
           "type": {"text": "PRIVATE HEALTH INSURANCE"}, "period": {"start": "2026-01-01"},
           "relationship": {"coding": [{"code": "child"}]},
           "class": [{"type": {"coding": [{"code": "plan"}]}, "value": "P351", "name": "PPO 1500"}]}
    old = {**cov, "subscriberId": "OLD", "period": {"start": "2020-01-01", "end": "2021-01-01"}}
    cards = coverage_cards([old, cov], TODAY)
    assert [c.member_id for c in cards] == ["BCB77", "OLD"]
    assert cards[0].status == "In use" and cards[1].status == "Ended"
    assert cards[0].plan == "PPO 1500 (P351)" and cards[0].how == "Through your parent"
    assert cards[0].kind == "Private health insurance" and cards[0].since == "Thursday 1 January 2026"
    fields = {"change": "add", "insurer": "Acme Health", "member_id": "AB 12345", "holder": "spouse",
              "holder_name": "Luis Rivera", "start": "2027-01-01", "group": "", "note": "New job"}
    assert insurance_errors(fields, TODAY) == {}
    text = insurance_request_text(fields)
    assert "Starts or ended on: 1 January 2027" in text
    assert "Add a new insurance card" in text and "Member ID: AB 12345" in text and "(Luis Rivera)" in text
    bad = insurance_errors({"change": "x", "insurer": "", "member_id": "!", "holder": "other", "start": "1/2/26"},
                           TODAY)
    assert set(bad) == {"change", "insurer", "member_id", "holder_name", "start"}


def test_an_allergy_report_is_checked_and_shaped_as_the_gateway_wants_it() -> None:
    assert set(allergy_errors({"substance": "", "category": "x", "onset": "2030-01-01"}, TODAY)) == {
        "substance", "category", "onset"}
    assert "before you were born" in allergy_errors({"substance": "x", "category": "food", "onset": "1960-01-01"},
                                                    TODAY, "1970-05-04")["onset"][0]
    fields = {"substance": " Peanuts ", "category": "food", "reaction": "Hives", "severity": "severe",
              "onset": "2019-05-30"}
    assert allergy_errors(fields, TODAY) == {}
    assert allergy_errors({**fields, "onset": "5/30/2019"}, TODAY) == {}  # typed without a date field
    assert "real date" in allergy_errors({**fields, "onset": "2/30/2019"}, TODAY)["onset"][0]
    body = reported_allergy(fields, patient_ref="Patient/pt-1", reporter_ref="Patient/pt-1", submission="s" * 20)
    written = shaped_allergy(body, patient_ref="Patient/pt-1", reporter_ref="Patient/pt-1",
                             now=datetime(2026, 12, 1, tzinfo=UTC))
    assert written["code"] == {"text": "Peanuts"} and written["reaction"][0]["severity"] == "severe"
    assert written["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    assert written["identifier"] == body["identifier"] and written["onsetDateTime"] == "2019-05-30"


def test_in_spanish_the_profile_insurance_and_allergy_words_are_spanish_and_the_record_is_not() -> None:
    words = contact_details(PATIENT, "es")
    assert (words.language, words.contact_by, words.phone_kind) == ("Inglés", "Una llamada", "Celular")
    errors = profile_errors(form(phone="12", state="ZZ", line1="x" * 81), "es")
    assert errors["phone"] == ["Escriba un teléfono con su código de área, por ejemplo 217-555-0123."]
    assert errors["state"] == ["Elija el estado."] and errors["line1"] == ["Puede tener 80 letras como máximo."]
    # What is written to the record does not depend on the language the form was read in.
    assert patient_with_profile(PATIENT, form(language="es")) == patient_with_profile(PATIENT, form(language="es"))
    assert changed_meanwhile(form(contact_by="email"), form(), "es") == {"contact_by": "Una llamada"}
    cov = {"resourceType": "Coverage", "status": "active", "period": {"start": "2026-01-01"},
           "relationship": {"coding": [{"code": "self"}]}, "order": 1}
    (card,) = coverage_cards([cov], TODAY, locale="es_US")
    assert (card.status, card.how, card.order, card.insurer) == (
        "En uso", "Usted es el titular de esta póliza", "Seguro principal", "Un seguro sin nombre en su historial")
    assert card.since == "jueves, 1 de enero de 2026"
    assert insurance_errors({"change": "x", "holder": "self", "insurer": "A"}, TODAY, "es")["change"] == [
        "Elija lo que quiere hacer."]
    fields = {"change": "add", "insurer": "Acme", "member_id": "AB 12345", "holder": "self", "start": ""}
    assert "Request: Add a new insurance card" in insurance_request_text(fields)  # for the front desk: English


def test_an_allergy_report_form_speaks_the_readers_language() -> None:
    errors = allergy_errors({"substance": "", "category": "x", "onset": "2030-01-01"}, TODAY, locale="es")
    assert errors["substance"] == ["Escriba a qué tiene alergia, por ejemplo “maní” o “penicilina”."]
    assert errors["onset"] == ["Esta fecha todavía no llegó. Escriba cuándo pasó por primera vez."]
    assert kinds_in("es")["food"] == "Una comida" and kinds_in()["food"] == "A food"
