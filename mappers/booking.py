"""Booking a visit, in words: the clinic's free times as a week of days, the filters a person narrows them
with, the nearest other times when one was just taken, and the Appointment a booking or a change asks for.

Pure: `now`, `today` and the time zone are always passed in, and so is the `locale` the words are in
(English by default; what is written into the record stays English). The gateway decides what may be
written; the shapes here only make it easy to ask for the right thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from babel import Locale
from babel.dates import format_date, format_interval

from locales import ENGLISH, N_, gettext_in

from .concepts import codes, concept_text
from .dates import WEEKDAYS, _day_and_time, _english, long_date, relative_day, short_date, time_of_day
from .instants import parse_instant
from .references import parse_reference, reference_display
from .validation import is_fhir_id

# The clinic's own code system for the kinds of visit a person can book (Slot/Appointment.serviceType).
VISIT_TYPE_SYSTEM = "http://hospital.example.org/fhir/CodeSystem/visit-type"
BOOKING_IDENTIFIER_SYSTEM = "urn:portal:booking"
REASON_MAX_CHARS = 200
NEAREST = 3
# Why a person cancels: code of HL7's appointment-cancellation-reason -> (their words, the code's display).
# The words are kept in the record in English; the page shows them in the reader's language.
CANCELLATION_REASONS = {
    "pat": (N_("I can't come"), "Patient"),
    "pat-fb": (N_("I feel better"), "Patient: Feeling Better"),
    "pat-lt": (N_("I have no way to get there"), "Patient: Lack of Transportation"),
    "pat-mv": (N_("I'm moving away"), "Patient: Moved/Relocated"),
    "other": (N_("Another reason"), "Other"),
}
CANCELLATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"


@dataclass(frozen=True, slots=True)
class VisitType:
    code: str
    words: str

    @property
    def token(self) -> str:
        """The search value for this visit type (`system|code`)."""
        return f"{VISIT_TYPE_SYSTEM}|{self.code}"

    @property
    def concept(self) -> dict[str, Any]:
        return {"coding": [{"system": VISIT_TYPE_SYSTEM, "code": self.code, "display": self.words}],
                "text": self.words}


@dataclass(frozen=True, slots=True)
class Clinician:
    schedule_id: str
    name: str


@dataclass(frozen=True, slots=True)
class FreeTime:
    slot_id: str
    start: datetime
    end: datetime | None
    day: date  # in the clinic's time zone
    time_text: str  # "9:30 am"
    when_text: str  # "Tuesday 8 December 2026 at 9:30 am"
    clinician: str | None
    schedule_id: str | None
    visit_types: tuple[VisitType, ...]
    is_free: bool = True


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    title: str  # "Tuesday 8 December"
    times: tuple[FreeTime, ...]


@dataclass(frozen=True, slots=True)
class Filters:
    clinician: str  # a schedule id, or "" for anyone
    visit_type: str  # a visit-type code, or "" for any
    week: date  # the Monday of the week shown

    def query(self, **changes: Any) -> dict[str, str]:
        """The booking page's address parameters for these filters (with some changed)."""
        values = {"clinician": self.clinician, "type": self.visit_type, "date": self.week.isoformat()}
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


def visit_types_of(resource: Any) -> tuple[VisitType, ...]:
    """The bookable visit types a Slot (or Appointment) names in `serviceType`, in order."""
    found: list[VisitType] = []
    concepts = resource.get("serviceType") if isinstance(resource, Mapping) else None
    for concept in concepts if isinstance(concepts, list) else []:
        for system, code in sorted(codes(concept)):
            if system == VISIT_TYPE_SYSTEM and all(v.code != code for v in found):
                found.append(VisitType(code, concept_text(concept) or code))
    return tuple(found)


def _schedule_id(slot: Mapping[str, Any]) -> str | None:
    ref = parse_reference(slot.get("schedule"), "Schedule")
    return ref.id if ref else None


def clinicians(schedules: Iterable[Any]) -> list[Clinician]:
    """Who a person can book with: one entry per active schedule, named by its clinician, A to Z."""
    found: list[Clinician] = []
    for schedule in schedules:
        if not isinstance(schedule, Mapping) or schedule.get("active") is False or not schedule.get("id"):
            continue
        actors = schedule.get("actor") if isinstance(schedule.get("actor"), list) else []
        names = [reference_display(a) for a in actors if parse_reference(a, "Practitioner")
                 or parse_reference(a, "PractitionerRole")]
        name = next((n for n in names if n), None)
        if name:
            found.append(Clinician(str(schedule["id"]), name))
    return sorted(found, key=lambda c: c.name.lower())


def all_visit_types(slots: Iterable[Any], schedules: Iterable[Any] = ()) -> list[VisitType]:
    found: dict[str, VisitType] = {}
    for resource in [*schedules, *slots]:
        for v in visit_types_of(resource):
            found.setdefault(v.code, v)
    return sorted(found.values(), key=lambda v: v.words.lower())


def cancellation_choices(locale: str = ENGLISH) -> dict[str, str]:
    """Why a person may cancel: {code: their words}."""
    return {code: gettext_in(locale, words) for code, (words, _display) in CANCELLATION_REASONS.items()}


def free_time(slot: Mapping[str, Any], names: Mapping[str, str], today: date, tz: tzinfo | None,
              locale: str = ENGLISH) -> FreeTime | None:
    start = parse_instant(slot.get("start"))
    if start is None or not isinstance(slot.get("id"), str):
        return None
    local = start.astimezone(tz) if tz else start
    schedule_id = _schedule_id(slot)
    near = (local.date() - today).days in (0, 1)  # "today" and "tomorrow"; any other day by its date
    day = (relative_day(local.date(), today, locale) if near else None) or long_date(local.date(), locale)
    return FreeTime(
        slot_id=slot["id"], start=start, end=parse_instant(slot.get("end")), day=local.date(),
        time_text=time_of_day(start, tz, locale),
        when_text=_day_and_time(day, time_of_day(start, tz, locale), locale),
        clinician=names.get(schedule_id or ""), schedule_id=schedule_id, visit_types=visit_types_of(slot),
        is_free=slot.get("status") == "free")


def free_times(slots: Iterable[Any], clinician_list: Iterable[Clinician], now: datetime, today: date,
               tz: tzinfo | None = None, locale: str = ENGLISH) -> list[FreeTime]:
    """Free, future slots soonest first (a slot the search still called free but that has started is not)."""
    names = {c.schedule_id: c.name for c in clinician_list}
    found = [t for s in slots if isinstance(s, Mapping) and s.get("status") == "free"
             and (t := free_time(s, names, today, tz, locale)) is not None and t.start > now]
    return sorted(found, key=lambda t: (t.start, t.clinician or ""))


def one_per_time(times: Iterable[FreeTime]) -> list[FreeTime]:
    """For "anyone": one free time per starting time (the first clinician's), so a day lists each time once."""
    seen: set[datetime] = set()
    out: list[FreeTime] = []
    for t in times:
        if t.start not in seen:
            seen.add(t.start)
            out.append(t)
    return out


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _babel(locale: str) -> str:
    return locale.replace("-", "_")


def day_title(day: date, locale: str = ENGLISH) -> str:
    """`Tuesday 8 December` (`martes, 8 de diciembre`): the language's month-and-weekday pattern, with the
    weekday written out in full (CLDR's pattern abbreviates it)."""
    if not _english(locale):
        pattern = Locale.parse(_babel(locale)).datetime_skeletons["MMMMEd"].pattern
        return format_date(day, re.sub(r"(?<!E)E{1,3}(?!E)", "EEEE", pattern), locale=_babel(locale))
    return f"{WEEKDAYS[day.weekday()]} {short_date(day).rsplit(' ', 1)[0]}"


def week_days(times: Iterable[FreeTime], week: date, locale: str = ENGLISH) -> list[Day]:
    """The week from Monday as a list of days, each with its free times; weekend days only when they have some."""
    by_day: dict[date, list[FreeTime]] = {}
    for t in times:
        by_day.setdefault(t.day, []).append(t)
    days = []
    for offset in range(7):
        day = week + timedelta(days=offset)
        if day.weekday() >= 5 and not by_day.get(day):
            continue
        days.append(Day(day, day_title(day, locale), tuple(by_day.get(day, []))))
    return days


def week_words(week: date, locale: str = ENGLISH) -> str:
    """`7 to 13 December 2026`, `28 December 2026 to 3 January 2027` (`7-13 de diciembre de 2026`, with an en dash)."""
    end = week + timedelta(days=6)
    if not _english(locale):
        return format_interval(week, end, "yMMMMd", locale=_babel(locale))
    if (week.year, week.month) == (end.year, end.month):
        first = str(week.day)
    elif week.year == end.year:
        first = short_date(week).rsplit(" ", 1)[0]
    else:
        first = short_date(week)
    return f"{first} to {short_date(end)}"


def nearest(times: Iterable[FreeTime], moment: datetime, n: int = NEAREST, *, skip: str | None = None
            ) -> list[FreeTime]:
    """The `n` free times closest to `moment` (before or after), in time order."""
    close = sorted((t for t in times if t.slot_id != skip), key=lambda t: (abs(t.start - moment), t.start))[:n]
    return sorted(close, key=lambda t: t.start)


def filters_from(params: Mapping[str, str], today: date, known_clinicians: Iterable[Clinician],
                 known_types: Iterable[VisitType], locale: str = ENGLISH) -> tuple[Filters, dict[str, list[str]]]:
    """The booking page's filters from its address, with a plain-words problem per field that is wrong
    (a wrong field is ignored, never guessed at)."""
    errors: dict[str, list[str]] = {}
    clinician = params.get("clinician", "").strip()
    if clinician and clinician not in {c.schedule_id for c in known_clinicians}:
        errors["clinician"] = [gettext_in(locale, "Choose a clinician from the list.")]
        clinician = ""
    visit_type = params.get("type", "").strip()
    if visit_type and visit_type not in {v.code for v in known_types}:
        errors["type"] = [gettext_in(locale, "Choose a kind of visit from the list.")]
        visit_type = ""
    week = monday_of(today)
    raw = params.get("date", "").strip()
    if raw:
        try:
            asked = date.fromisoformat(raw)
        except ValueError:
            errors["date"] = [gettext_in(locale, "Enter a date like 2026-12-07, or use the date picker.")]
        else:
            if asked < today:
                errors["date"] = [gettext_in(locale, "Choose today or a later date.")]
            elif asked > today + timedelta(days=365):
                errors["date"] = [gettext_in(locale, "Choose a date within the next year.")]
            else:
                week = monday_of(asked)
    return Filters(clinician, visit_type, week), errors


def slot_search(filters: Filters, today: date) -> list[tuple[str, str]]:
    """The Slot search for one week (a day either side, so no time is lost to time zones)."""
    first = max(filters.week, today) - timedelta(days=1)
    params = [("status", "free"), ("start", f"ge{first.isoformat()}"),
              ("start", f"lt{(filters.week + timedelta(days=8)).isoformat()}"), ("_sort", "start"), ("_count", "500")]
    if filters.clinician:
        params.append(("schedule", f"Schedule/{filters.clinician}"))
    if filters.visit_type:
        params.append(("service-type", f"{VISIT_TYPE_SYSTEM}|{filters.visit_type}"))
    return params


def in_week(times: Iterable[FreeTime], week: date) -> list[FreeTime]:
    return [t for t in times if week <= t.day < week + timedelta(days=7)]


def booking_errors(fields: Mapping[str, str], offered: Iterable[VisitType],
                   locale: str = ENGLISH) -> dict[str, list[str]]:
    """Field-level problems with a booking form ({} when it can be sent)."""
    errors: dict[str, list[str]] = {}
    offered_codes = [v.code for v in offered]
    chosen = fields.get("type", "")
    if not chosen:
        errors["type"] = [gettext_in(locale, "Choose what kind of visit this is.")]
    elif chosen not in offered_codes:
        errors["type"] = [gettext_in(locale, "This time is not offered for that kind of visit. Choose one from the "
                                             "list.")]
    reason = fields.get("reason", "").strip()
    if len(reason) > REASON_MAX_CHARS:
        errors["reason"] = [gettext_in(locale, "Keep the reason short: %(max)s characters at most (you wrote "
                                               "%(count)s).") % {"max": REASON_MAX_CHARS, "count": len(reason)}]
    return errors


def booking_request(*, patient_ref: str, slot_id: str, visit_type: VisitType, reason: str,
                    submission: str) -> dict[str, Any]:
    """The Appointment a person asks for (the gateway fills in who it is with and when, from the Slot)."""
    body: dict[str, Any] = {
        "resourceType": "Appointment", "status": "booked",
        "identifier": [{"system": BOOKING_IDENTIFIER_SYSTEM, "value": submission}],
        "serviceType": [visit_type.concept], "description": visit_type.words,
        "slot": [{"reference": f"Slot/{slot_id}"}],
        "participant": [{"actor": {"reference": patient_ref}, "status": "accepted"}],
    }
    if reason.strip():
        body["reasonCode"] = [{"text": reason.strip()}]
    return body


def _unversioned(current: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in current.items() if k != "meta"}


def move_request(current: Mapping[str, Any], slot_id: str) -> dict[str, Any]:
    body = _unversioned(current)
    body["slot"] = [{"reference": f"Slot/{slot_id}"}]
    return body


def cancel_request(current: Mapping[str, Any], reason_code: str) -> dict[str, Any]:
    body = _unversioned(current)
    body["status"] = "cancelled"
    code = reason_code if reason_code in CANCELLATION_REASONS else "pat"
    words, display = CANCELLATION_REASONS[code]
    body["cancelationReason"] = {"coding": [{"system": CANCELLATION_SYSTEM, "code": code, "display": display}],
                                 "text": words}
    return body


def plain_slot_id(value: str) -> str | None:
    """A slot id as a form sends it, or None when it cannot be one."""
    value = (value or "").strip()
    return value if is_fhir_id(value) else None
