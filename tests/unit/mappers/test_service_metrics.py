"""Adoption and service figures from AuditEvents and EHR resources (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from audit.events import auth_event
from mappers.booking import BOOKING_IDENTIFIER_SYSTEM
from mappers.inbound import REFILL_IDENTIFIER_SYSTEM
from mappers.portal_access import duration_words, patient_facts, share_words
from mappers.service_metrics import (
    adoption,
    message_service,
    next_business_day_deadline,
    online_booking,
    refill_turnaround,
)

CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # a Tuesday


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def test_adoption_counts_distinct_patients_and_only_patients_signing_in_lately() -> None:
    events = [
        auth_event("invitation", "success", fhir_user="Practitioner/d", patient_id="p1", recorded=ago(days=90)),
        auth_event("invitation", "success", fhir_user="Practitioner/d", patient_id="p1", recorded=ago(days=80)),
        auth_event("invitation", "success", fhir_user="Practitioner/d", patient_id="p2", recorded=ago(days=5)),
        auth_event("invitation", "failure", fhir_user="Practitioner/d", patient_id="p3", recorded=ago(days=5)),
        auth_event("enrolment", "success", fhir_user="Patient/p1", patient_id="p1", recorded=ago(days=70)),
        auth_event("enrolment", "success", fhir_user="Patient/p2", patient_id="p2", recorded=ago(days=4)),
        # A caregiver enrolling for p1 and staff signing in are not patients adopting the portal.
        auth_event("enrolment", "success", fhir_user="RelatedPerson/r1", patient_id="p1", recorded=ago(days=3)),
        auth_event("login", "success", fhir_user="Practitioner/d", recorded=ago(days=1)),
        auth_event("login", "success", fhir_user="Patient/p1", patient_id="p1", recorded=ago(days=45)),
        auth_event("login", "success", fhir_user="Patient/p2", patient_id="p2", recorded=ago(days=2)),
        auth_event("login", "success", fhir_user="Patient/p2", patient_id="p2", recorded=ago(days=1)),
        auth_event("login", "failure", fhir_user="Patient/p1", patient_id="p1", recorded=ago(hours=1)),
    ]
    figures = adoption(events, NOW)
    assert (figures.invited, figures.enrolled, figures.active) == (2, 2, 1)


def _appointment(created: datetime | None, *, online: bool, status: str = "booked") -> dict[str, Any]:
    a: dict[str, Any] = {"resourceType": "Appointment", "status": status,
                         "start": (NOW + timedelta(days=3)).isoformat()}
    if created:
        a["created"] = created.date().isoformat()
    if online:
        a["identifier"] = [{"system": BOOKING_IDENTIFIER_SYSTEM, "value": "x"}]
    return a


def test_share_of_appointments_booked_online_in_the_window() -> None:
    appointments = [_appointment(ago(days=2), online=True), _appointment(ago(days=3), online=True),
                    _appointment(ago(days=10), online=False), _appointment(ago(days=40), online=True),
                    _appointment(ago(days=1), online=False, status="entered-in-error")]
    booked = online_booking(appointments, NOW)
    assert (booked.online, booked.total) == (2, 3) and abs((booked.share or 0) - 2 / 3) < 1e-9
    assert online_booking([], NOW).share is None


def test_one_business_day_skips_the_weekend() -> None:
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=CHICAGO)
    assert next_business_day_deadline(friday, CHICAGO) == datetime(2026, 11, 30, 15, 0, tzinfo=CHICAGO)
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=CHICAGO)
    assert next_business_day_deadline(saturday, CHICAGO) == datetime(2026, 12, 1, 0, 0, tzinfo=CHICAGO)


def _message(mid: str, sent: datetime, sender: str, thread: str | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"resourceType": "Communication", "id": mid, "status": "completed",
                         "sent": sent.isoformat(), "sender": {"reference": sender}}
    if thread:
        m["partOf"] = [{"reference": f"Communication/{thread}"}]
    return m


def test_messages_answered_within_a_business_day_and_median_response() -> None:
    messages = [
        _message("a", ago(days=6), "Patient/p1"), _message("a2", ago(days=6, hours=-2), "Practitioner/d", "a"),
        _message("b", ago(days=8), "Patient/p2"), _message("b2", ago(days=4), "Practitioner/d", "b"),
        _message("c", ago(days=5), "Patient/p3"),  # never answered, deadline long past
        _message("d", ago(hours=3), "Patient/p4"),  # unanswered, still within its business day
        _message("e", ago(days=3), "Practitioner/d"),  # the care team writing first is not a patient message
        _message("f", ago(days=50), "Patient/p5"), _message("f2", ago(days=2), "Practitioner/d", "f"),  # too old
    ]
    service = message_service(messages, NOW, CHICAGO)
    assert (service.answered_in_time, service.due, service.waiting) == (1, 3, 1)
    assert service.median_response_seconds == timedelta(days=2, hours=1).total_seconds()  # median of 2 h and 4 d


def _refill(status: str, asked: datetime, decided: datetime | None) -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": "MedicationRequest", "intent": "proposal", "status": status,
                         "authoredOn": asked.isoformat(), "identifier": [{"system": REFILL_IDENTIFIER_SYSTEM,
                                                                          "value": "rx-1"}]}
    if decided:
        r["meta"] = {"lastUpdated": decided.isoformat()}
    return r


def test_refill_turnaround_is_the_median_from_request_to_decision() -> None:
    refills = [_refill("completed", ago(days=3), ago(days=3, hours=-4)),
               _refill("cancelled", ago(days=2), ago(days=1)),
               _refill("completed", ago(days=5), ago(days=5, hours=-6)),
               _refill("draft", ago(hours=5), ago(hours=5)),
               {**_refill("completed", ago(days=3), ago(days=2)), "identifier": []},  # not a portal refill request
               _refill("completed", ago(days=60), ago(days=59))]  # decided before the window
    turnaround = refill_turnaround(refills, NOW)
    assert (turnaround.decided, turnaround.waiting) == (3, 1)
    assert turnaround.median_seconds == timedelta(hours=6).total_seconds()


def test_figures_and_patient_facts_in_words() -> None:
    assert [duration_words(s) for s in (None, 20, 60, 3 * 3600 + 20 * 60, 2 * 86400 + 4 * 3600, 86400)] == [
        "—", "under a minute", "1 minute", "3 hours 20 minutes", "2 days 4 hours", "1 day"]
    assert (share_words(None), share_words(2 / 3)) == ("—", "67%")
    facts = patient_facts({"resourceType": "Patient", "id": "p1", "birthDate": "1988-03-11",
                           "name": [{"given": ["Ada"], "family": "Okafor"}],
                           "identifier": [{"system": "http://hospital.example.org/mrn", "value": "20000014"}],
                           "telecom": [{"system": "email", "value": "old@example.org", "rank": 2},
                                       {"system": "phone", "value": "555"},
                                       {"system": "email", "value": "ada@example.org", "rank": 1}]})
    assert (facts.name, facts.mrn, facts.email) == ("Ada Okafor", "20000014", "ada@example.org")
    assert "11 March 1988" in facts.birth_date
    assert patient_facts({"resourceType": "Patient", "id": "p2"}).name == "Name not recorded"
