"""The care team's queues and decisions in words (pure): what is open and oldest first, who sees which queue,
what a decision writes, and what the patient then reads on their medicines and referrals pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mappers import decisions, queues
from mappers.coverage import insurance_request_text
from mappers.inbound import REFILL_IDENTIFIER_SYSTEM
from mappers.messages import TOPIC_SYSTEM
from mappers.referrals import referrals
from mappers.refills import prescriptions
from mappers.validation import InboundError

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PT = "Patient/pt-1"
DOC = "Practitioner/prac-01"
PATIENT = {"resourceType": "Patient", "id": "pt-1", "birthDate": "1960-04-02",
           "name": [{"use": "official", "family": "Rivera", "given": ["Ana"]}],
           "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "MRN-001"}]}
PATIENTS = queues.patients_by_ref([PATIENT])


def rx(rid: str = "rx-1", status: str = "active", **extra: object) -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": PT}, "authoredOn": "2026-01-05",
            "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
            "dosageInstruction": [{"text": "1 tablet a day"}],
            "dispenseRequest": {"numberOfRepeatsAllowed": 3}, **extra}


def ask(rid: str = "rq-1", status: str = "draft", when: str = "2026-11-28T09:00:00Z", basis: str = "rx-1") -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "proposal",
            "identifier": [{"system": REFILL_IDENTIFIER_SYSTEM, "value": basis}], "subject": {"reference": PT},
            "authoredOn": when, "basedOn": [{"reference": f"MedicationRequest/{basis}"}],
            "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
            "note": [{"authorReference": {"reference": PT}, "text": "Running low"}],
            "dispenseRequest": {"performer": {"reference": "Organization/org-pharm-cvs", "display": "CVS"}}}


# -- who sees what -----------------------------------------------------------------------------------------
def test_within_changes_allergies_are_clinical_and_insurance_is_the_front_desks() -> None:
    assert queues.sections_for("nurse") == ["allergies"]
    assert queues.sections_for("front-desk") == queues.sections_for("billing") == ["insurance"]


def test_staff_roles_come_from_active_practitioner_roles_only() -> None:
    role = {"resourceType": "PractitionerRole", "active": True,
            "code": [{"coding": [{"system": decisions.STAFF_ROLE_SYSTEM, "code": "nurse"},
                                 {"system": "other", "code": "clinician"}]}]}
    assert decisions.staff_roles([role, {**role, "active": False, "code": [{"coding": [
        {"system": decisions.STAFF_ROLE_SYSTEM, "code": "clinician"}]}]}]) == {"nurse"}
    assert decisions.may_decide("refill-deny", {"nurse"}) and not decisions.may_decide("refill-approve", {"nurse"})


# -- queues ------------------------------------------------------------------------------------------------
def test_the_refill_queue_lists_open_requests_oldest_first_with_the_patient_banner() -> None:
    items = queues.refill_items([rx(), ask("rq-new", when="2026-11-30T09:00:00Z"), ask("rq-old"),
                                 ask("rq-done", status="completed")], PATIENTS, NOW)
    assert [i.id for i in items] == ["rq-old", "rq-new"]
    first = items[0]
    assert first.patient.name == "Ana Rivera" and first.patient.mrn == "MRN-001" and first.patient.born
    assert first.what == "Lisinopril 10 MG Oral Tablet" and first.note == "Running low"
    assert ("Pharmacy", "CVS") in first.facts and first.waiting == "waiting 3 days"


def test_the_referral_queue_leaves_out_requests_already_made_into_referrals() -> None:
    request = {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "proposal",
               "subject": {"reference": PT}, "authoredOn": "2026-11-20",
               "performerType": {"text": "Cardiology"}, "reasonCode": [{"text": "Palpitations"}]}
    second = {**request, "id": "sr-2"}
    order = {**request, "id": "so-1", "intent": "order", "basedOn": [{"reference": "ServiceRequest/sr-1"}]}
    items = queues.referral_items([request, second, order], PATIENTS, NOW)
    assert [i.id for i in items] == ["sr-2"] and ("Reason", "Palpitations") in items[0].facts


def test_the_allergy_section_lists_unchecked_reports_only() -> None:
    def allergy(aid: str, code: str) -> dict:
        return {"resourceType": "AllergyIntolerance", "id": aid, "patient": {"reference": PT},
                "verificationStatus": {"coding": [{"system": decisions.VERIFICATION_SYSTEM, "code": code}]},
                "code": {"text": "Peanuts"}, "category": ["food"], "recordedDate": "2026-11-20T10:00:00Z",
                "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "moderate"}]}
    items = queues.allergy_items([allergy("a1", "unconfirmed"), allergy("a2", "confirmed")], PATIENTS, NOW)
    assert [i.id for i in items] == ["a1"] and items[0].what == "Peanuts"
    assert ("Reaction", "Hives (moderate)") in items[0].facts


def message(mid: str, *, topic: str, sender: str = PT, part_of: str | None = None, sent: str = "2026-11-25T08:00:00Z",
            text: str = "When is my bill due?") -> dict:
    body = {"resourceType": "Communication", "id": mid, "status": "completed",
            "category": [{"coding": [{"system": TOPIC_SYSTEM, "code": "billing"}]}], "topic": {"text": topic},
            "subject": {"reference": PT}, "sender": {"reference": sender}, "sent": sent,
            "payload": [{"contentString": text}]}
    if part_of:
        body["partOf"] = [{"reference": f"Communication/{part_of}"}]
    return body


def test_insurance_requests_leave_the_queue_once_a_card_names_them() -> None:
    text = insurance_request_text({"change": "add", "insurer": "Acme Health", "member_id": "ZX123456",
                                   "holder": "self", "group": "G-77"})
    asked = message("m1", topic="Insurance card update", text=text)
    done = message("m2", topic="Insurance card update", text=text)
    card = {"resourceType": "Coverage", "id": "c1",
            "identifier": [{"system": decisions.INSURANCE_REQUEST_SYSTEM, "value": "m2"}]}
    withdrawn = {**message("m3", topic="Insurance card update", text=text), "status": "entered-in-error"}
    items = queues.insurance_items([asked, done, withdrawn], [card], PATIENTS, NOW)
    assert [i.id for i in items] == ["m1"]
    assert items[0].what == "Add a new insurance card" and ("Member ID", "ZX123456") in items[0].facts
    form = queues.coverage_form(asked)
    assert form == {"insurer": "Acme Health", "member_id": "ZX123456", "group": "G-77", "holder": "self"}
    body = queues.coverage_body(asked, form)
    assert decisions.confirmed_coverage(body, asked)["subscriberId"] == "ZX123456"
    # A card that ended is not confirmed as a new one.
    ended = message("m4", topic="Insurance card update", text=insurance_request_text(
        {"change": "end", "insurer": "Acme Health", "holder": "self"}))
    assert [i.confirmable for i in queues.insurance_items([ended], [], PATIENTS, NOW)] == [False]
    with pytest.raises(InboundError, match="end a card"):
        decisions.confirmed_coverage(queues.coverage_body(ended, {**form, "member_id": "ZX1"}), ended)


def test_the_billing_queue_holds_questions_whose_last_word_is_the_patients() -> None:
    waiting = message("q1", topic="My statement")
    answered = message("q2", topic="A charge")
    reply = message("q2r", topic="A charge", sender="Practitioner/staff-bill", part_of="q2",
                    sent="2026-11-26T08:00:00Z")
    insurance = message("q3", topic="Insurance card update")
    items = queues.billing_items([waiting, answered, reply, insurance], PATIENTS, NOW)
    assert [(i.id, i.thread, i.what) for i in items] == [("q1", "q1", "My statement")]


# -- decisions and what the patient then reads --------------------------------------------------------------
def test_an_approved_refill_renews_the_prescription_and_the_patient_sees_it_sent_to_the_pharmacy() -> None:
    request, prescription = ask(), rx()
    order = decisions.refill_order(queues.approve_refill_body("rq-1", "pt-1"), request, prescription,
                                   prescriber_ref=DOC, now=NOW)
    assert order["priorPrescription"] == {"reference": "MedicationRequest/rx-1"}
    assert order["dispenseRequest"]["performer"]["display"] == "CVS"
    stored = [{**order, "id": "rx-2"}, decisions.refill_answered(request) | {"id": "rq-1"},
              decisions.prescription_replaced(prescription) | {"id": "rx-1"}]
    (current,) = prescriptions(stored, [], {PT})
    assert current.id == "rx-2"
    assert [r.status.key for r in current.requests] == ["pharmacy"]  # the request follows the renewed medicine
    assert "CVS" in (current.requests[0].status.detail or "")


def test_a_declined_refill_shows_the_reason_on_the_patients_medicines_page() -> None:
    denied = decisions.refill_denied(ask(), queues.deny_refill_body(ask(), "Please book a check-up first."),
                                     decider_ref=DOC, now=NOW)
    (current,) = prescriptions([rx(), denied], [], {PT})
    (request,) = current.requests
    assert request.status.key == "declined" and request.status.detail == "Please book a check-up first."
    assert current.can_refill  # they may ask again


@pytest.mark.parametrize(("stored", "proposed", "words"), [
    (ask(status="cancelled"), {"status": "cancelled", "statusReason": {"text": "x"}}, "already been answered"),
    (ask(), {"status": "cancelled", "statusReason": {"text": " "}}, "Say why"),
    (ask(), {"status": "cancelled", "statusReason": {"text": "x" * 501}}, "500"),
    (ask(), {"status": "cancelled", "statusReason": {"text": "x"}, "note": []}, "Notes already"),
])
def test_a_refill_decline_outside_the_rule_is_refused(stored: dict, proposed: dict, words: str) -> None:
    with pytest.raises(InboundError, match=words):
        decisions.refill_denied(stored, {**stored, **proposed}, decider_ref=DOC, now=NOW)


def test_a_declined_referral_reads_as_declined_with_the_clinicians_words() -> None:
    request = {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "proposal",
               "subject": {"reference": PT}, "category": [{"coding": [{"code": "3457005"}]}],
               "performerType": {"text": "Cardiology"}, "authoredOn": "2026-11-20"}
    declined = decisions.referral_declined(request, queues.decline_referral_body(request, "See me first."),
                                           decider_ref=DOC, now=NOW)
    (shown,) = referrals([declined], {PT})
    assert shown.status_key == "declined" and shown.detail == "See me first."


def test_an_allergy_check_changes_only_its_verification() -> None:
    reported = {"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": PT},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                         "allergyintolerance-clinical", "code": "active"}]},
                "verificationStatus": {"coding": [{"system": decisions.VERIFICATION_SYSTEM, "code": "unconfirmed"}]},
                "code": {"text": "Peanuts"}}
    checked = decisions.allergy_checked(reported, queues.check_allergy_body(reported, "refuted"), checker_ref=DOC,
                                        now=NOW)
    assert decisions.verification_code(checked) == "refuted" and checked["code"] == {"text": "Peanuts"}
    with pytest.raises(InboundError, match="confirmed or refuted"):
        decisions.allergy_checked(reported, queues.check_allergy_body(reported, "presumed"), checker_ref=DOC, now=NOW)
