"""The to-do list from the record (refills running out from the prescription's supply and its dispenses,
visits coming up, forms asked for, vaccines and check-ups due by the rules' data) and its calendar files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from icalendar import Calendar

from mappers.appointments import upcoming_appointments
from mappers.calendar_file import calendar_file
from mappers.care_due import care_due
from mappers.form_tasks import assigned_forms
from mappers.medications import medication_list
from mappers.todo import to_dos

from .conftest import RAW, TODAY, of_type

TZ = ZoneInfo("America/Chicago")
NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 15, 0, tzinfo=UTC)
PT = "pt-1"


def prescription(rid: str, authored: str, days: int = 30, repeats: int = 0) -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{PT}"}, "medicationCodeableConcept": {"text": f"Medicine {rid}"},
            "authoredOn": authored, "dispenseRequest": {"numberOfRepeatsAllowed": repeats,
                                                       "expectedSupplyDuration": {"value": days, "unit": "days"}}}


def dispense(rid: str, handed: str) -> dict:
    return {"resourceType": "MedicationDispense", "id": f"d-{rid}-{handed}", "status": "completed",
            "authorizingPrescription": [{"reference": f"MedicationRequest/{rid}"}], "whenHandedOver": handed,
            "subject": {"reference": f"Patient/{PT}"}}


def todo_for(requests: list[dict], dispenses: list[dict] | None = None, **kw: object) -> list:
    current, _ = medication_list(requests, dispenses=dispenses)
    return to_dos(medicines=current, visits=kw.get("visits", []), forms=kw.get("forms", []),  # type: ignore[arg-type]
                  due=kw.get("due", []), today=TODAY, now=NOW, tz=TZ)  # type: ignore[arg-type]


def test_a_refill_is_due_from_the_last_fill_and_its_days_of_supply() -> None:
    # Written long ago with refills, last filled 25 days ago for 30 days: runs out in 5 days.
    last_fill = (TODAY - timedelta(days=25)).isoformat()
    found = todo_for([prescription("rx1", "2025-01-01", repeats=5)], [dispense("rx1", last_fill)])
    [refill] = found
    assert refill.kind == "refill" and refill.title == "Refill: Medicine rx1"
    assert refill.day == TODAY + timedelta(days=5) and "May run out by" in refill.text
    assert refill.event is not None and refill.event.start == TODAY + timedelta(days=5)
    # Filled yesterday: nothing to do yet.
    assert todo_for([prescription("rx1", "2025-01-01", repeats=5)],
                    [dispense("rx1", (TODAY - timedelta(days=1)).isoformat())]) == []


def test_without_dispenses_the_prescriptions_validity_decides_and_past_dates_get_no_calendar_file() -> None:
    # 30 days, no refills, written 40 days ago: it ran out 10 days ago.
    [late] = todo_for([prescription("rx2", (TODAY - timedelta(days=40)).isoformat())])
    assert late.urgent and "May have run out" in late.text and "renew" in late.text and late.event is None


def test_visits_forms_and_care_due_come_together_most_pressing_first(records: dict) -> None:
    pid = "pt-0005"  # 86: vaccines and screenings apply; has forms and visits in the demo data
    resources = records[pid]
    visits = upcoming_appointments([{**a, "status": "booked", "start": f"{(TODAY + timedelta(days=3)).isoformat()}"
                                                                       "T09:00:00-06:00",
                                     "end": f"{(TODAY + timedelta(days=3)).isoformat()}T09:30:00-06:00"}
                                    for a in of_type(resources, "Appointment")][:1], TODAY, NOW, tz=TZ)
    patient = next(r for r in resources if r["resourceType"] == "Patient" and r["id"] == pid)
    due = care_due(patient, resources, TODAY)
    forms = assigned_forms(of_type(resources, "Task"), of_type(resources, "QuestionnaireResponse"),
                           of_type(resources, "Questionnaire"), TODAY, TZ)
    found = to_dos(medicines=[], visits=visits, forms=forms, due=due, today=TODAY, now=NOW, tz=TZ)
    kinds = {t.kind for t in found}
    assert "visit" in kinds and kinds & {"vaccine", "screening"}
    urgent = [t.urgent for t in found]
    assert urgent == sorted(urgent, reverse=True)  # the urgent ones first
    visit = next(t for t in found if t.kind == "visit")
    booked = datetime(TODAY.year, TODAY.month, TODAY.day + 3, 9, 0, tzinfo=timezone(timedelta(hours=-6)))
    assert visit.event is not None and visit.event.start == booked  # the same moment, in the clinic's zone
    assert visit.event.end == booked + timedelta(minutes=30)
    care = next(t for t in found if t.kind in ("vaccine", "screening"))
    assert care.source_url and care.source_url.startswith("https://") and care.why
    for t in found:
        assert not RAW.search(t.title + t.text), t
    assert len({t.id for t in found}) == len(found)


def test_a_to_dos_calendar_file_is_read_back_as_the_event_it_describes() -> None:
    last_fill = (TODAY - timedelta(days=25)).isoformat()
    [refill] = todo_for([prescription("rx1", "2025-01-01", repeats=5)], [dispense("rx1", last_fill)])
    assert refill.event is not None
    [event] = Calendar.from_ical(calendar_file([refill.event])).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Medicine may run out: Medicine rx1"
    assert event.decoded("DTSTART") == TODAY + timedelta(days=5)
    assert str(event["UID"]) == "refill-rx1@portal.invalid"  # the same to-do keeps its uid
