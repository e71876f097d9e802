"""Booking in words (the week of free times, the filters, the nearest other times, the clinic's notice rule)
and add-to-calendar files, as a person would notice them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from mappers.appointments import appointment, appointment_event
from mappers.booking import (
    VISIT_TYPE_SYSTEM,
    Clinician,
    VisitType,
    filters_from,
    free_times,
    nearest,
    one_per_time,
    week_days,
    week_words,
)
from mappers.calendar_file import CalendarEvent, calendar_file
from mappers.inbound import change_refusal

TZ = ZoneInfo("America/Chicago")
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # Tuesday 9 am in Chicago
TODAY = NOW.astimezone(TZ).date()
PEOPLE = [Clinician("sched-02", "Dr. Samuel Okafor"), Clinician("sched-01", "Dr. Ana Lee")]


def slot(sid: str, start: str, schedule: str = "sched-02", status: str = "free") -> dict:
    return {"resourceType": "Slot", "id": sid, "status": status, "schedule": {"reference": f"Schedule/{schedule}"},
            "start": start, "end": start,
            "serviceType": [{"coding": [{"system": VISIT_TYPE_SYSTEM, "code": "sick"}], "text": "Sick visit"}]}


def test_a_week_lists_weekdays_with_their_free_times_in_the_clinics_time() -> None:
    slots = [slot("late", "2026-12-03T22:30:00-06:00"), slot("past", "2026-12-01T08:00:00-06:00"),
             slot("busy", "2026-12-02T09:00:00-06:00", status="busy"), slot("wed", "2026-12-02T09:00:00-06:00"),
             slot("sat", "2026-12-05T10:00:00-06:00")]
    times = free_times(slots, PEOPLE, NOW, TODAY, TZ)
    assert [t.slot_id for t in times] == ["wed", "late", "sat"]  # started and busy ones are not offered
    assert times[0].when_text == "tomorrow at 9:00 am" and times[0].clinician == "Dr. Samuel Okafor"
    assert times[1].time_text == "10:30 pm" and times[1].day == date(2026, 12, 3)  # not moved to Friday by UTC
    days = week_days(times, date(2026, 11, 30))
    assert [d.title for d in days] == ["Monday 30 November", "Tuesday 1 December", "Wednesday 2 December",
                                       "Thursday 3 December", "Friday 4 December", "Saturday 5 December"]
    assert [len(d.times) for d in days] == [0, 0, 1, 1, 0, 1]  # an empty Sunday is left out
    assert week_words(date(2026, 11, 30)) == "30 November to 6 December 2026"


def test_a_week_in_spanish_is_written_the_way_spanish_writes_days_times_and_weeks() -> None:
    def spaced(text: str) -> str:  # CLDR puts thin and no-break spaces in times and ranges
        return re.sub(r"\s", " ", text)

    slots = [slot("wed", "2026-12-02T09:00:00-06:00"), slot("late", "2026-12-03T22:30:00-06:00")]
    times = free_times(slots, PEOPLE, NOW, TODAY, TZ, "es_US")
    assert spaced(times[0].when_text) == "mañana, 9:00 a.m." and spaced(times[1].time_text) == "10:30 p.m."
    assert spaced(times[1].when_text) == "jueves, 3 de diciembre de 2026, 10:30 p.m."
    days = week_days(times, date(2026, 11, 30), "es_US")
    assert [d.title for d in days][:3] == ["lunes, 30 de noviembre", "martes, 1 de diciembre",
                                           "miércoles, 2 de diciembre"]
    assert week_words(date(2026, 12, 7), "es_US") == "7\N{EN DASH}13 de diciembre de 2026"
    assert spaced(week_words(date(2026, 12, 28), "es_US")) == "28 de diciembre de 2026 \N{EN DASH} 3 de enero de 2027"
    _, errors = filters_from({"date": "2025-01-01", "clinician": "nobody"}, TODAY, PEOPLE, [], "es_US")
    assert errors == {"clinician": ["Elija a alguien de la lista."], "date": ["Elija hoy o una fecha después de hoy."]}


def test_anyone_shows_each_time_once_and_the_nearest_are_either_side() -> None:
    slots = [slot("a", "2026-12-02T09:00:00-06:00"), slot("b", "2026-12-02T09:00:00-06:00", "sched-01"),
             slot("c", "2026-12-02T09:30:00-06:00"), slot("d", "2026-12-02T08:30:00-06:00"),
             slot("e", "2026-12-09T08:30:00-06:00")]
    times = free_times(slots, PEOPLE, NOW, TODAY, TZ)
    assert [t.slot_id for t in one_per_time(times)] == ["d", "b", "c", "e"]  # Dr. Lee before Dr. Okafor
    taken = next(t.start for t in times if t.slot_id == "a")
    assert [t.slot_id for t in nearest(times, taken, 3, skip="a")] == ["d", "b", "c"]


def test_filters_that_are_wrong_say_so_and_fall_back_to_this_week() -> None:
    kinds = [VisitType("sick", "Sick visit")]
    filters, errors = filters_from({"clinician": "sched-02", "type": "sick", "date": "2026-12-10"}, TODAY, PEOPLE,
                                   kinds)
    assert (filters.clinician, filters.visit_type, filters.week, errors) == ("sched-02", "sick", date(2026, 12, 7), {})
    filters, errors = filters_from({"clinician": "x", "type": "y", "date": "2026-11-02"}, TODAY, PEOPLE, kinds)
    assert filters.week == date(2026, 11, 30) and not filters.clinician and not filters.visit_type
    assert set(errors) == {"clinician", "type", "date"} and errors["date"] == ["Choose today or a later date."]


def test_the_notice_rule_says_why_in_words() -> None:
    assert change_refusal("2026-12-03T09:00:00-06:00", NOW) is None
    soon = change_refusal("2026-12-02T08:00:00-06:00", NOW)
    assert soon and "cannot be moved or cancelled online in the last 24 hours" in soon and "call the clinic" in soon
    assert change_refusal("2026-12-02T08:00:00-06:00", NOW, notice_hours=0) is None
    assert change_refusal("2026-11-30T08:00:00-06:00", NOW) == "Past appointments cannot be changed"


def test_a_visit_becomes_a_calendar_event_that_calendars_read_back() -> None:
    resource = {"resourceType": "Appointment", "id": "a1", "status": "booked", "description": "Sick visit",
                "start": "2026-12-02T09:00:00-06:00", "end": "2026-12-02T09:30:00-06:00",
                "patientInstruction": "Bring your insurance card.",
                "participant": [{"actor": {"reference": "Patient/pt-1"}},
                                {"actor": {"reference": "Practitioner/p2", "display": "Dr. Samuel Okafor"}},
                                {"actor": {"reference": "Location/l1", "display": "Wabash Clinic, Suite 200"}}]}
    view = appointment(resource, TODAY, NOW, tz=TZ)
    event = appointment_event(resource, view, "portal.example.org")
    assert event is not None
    parsed = Calendar.from_ical(calendar_file([event, CalendarEvent("r1", "Flu shot due", date(2026, 12, 9))]))
    first, second = parsed.walk("VEVENT")
    assert str(first["SUMMARY"]) == "Sick visit with Dr. Samuel Okafor"
    assert str(first["LOCATION"]) == "Wabash Clinic, Suite 200" and "insurance card" in str(first["DESCRIPTION"])
    assert first.decoded("DTSTART") == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    assert first.decoded("DTEND") - first.decoded("DTSTART") == timedelta(minutes=30)
    assert str(first["UID"]) == "appointment-a1@portal.example.org" and str(first["STATUS"]) == "CONFIRMED"
    assert second.decoded("DTSTART") == date(2026, 12, 9)  # an all-day reminder stays a day
