"""Appointments in words: when, with whom, where, what for, and what to bring or do (in the `locale` passed
in, English by default)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .booking import CANCELLATION_REASONS, CANCELLATION_SYSTEM
from .calendar_file import CalendarEvent
from .concepts import codes, concept_text, concept_texts
from .dates import date_time_words, unknown_date
from .instants import FhirTime, first_time, parse_instant
from .references import parse_reference, reference_display, reference_to

STATUS_WORDS = {"proposed": N_("Requested"), "pending": N_("Waiting to be confirmed"), "booked": N_("Booked"),
                "arrived": N_("Checked in"), "fulfilled": N_("Done"), "cancelled": N_("Cancelled"),
                "noshow": N_("Missed"), "checked-in": N_("Checked in"), "waitlist": N_("On the waiting list")}
UNKNOWN_STATUS = N_("Status not known")
ACTIVE = frozenset({"proposed", "pending", "booked", "arrived", "checked-in", "waitlist"})


@dataclass(frozen=True, slots=True)
class AppointmentView:
    reference: str | None
    what: str
    start: FhirTime | None
    when_text: str  # "tomorrow at 9:30 am"
    minutes: int | None
    status_text: str
    is_upcoming: bool
    with_whom: tuple[str, ...]
    place: str | None
    reason: str | None
    instructions: str | None
    cancel_reason: str | None
    status: str = ""  # the FHIR status code (status_text is its words)


def appointment(resource: Any, today: date, now: datetime | None = None, resources: Mapping[str, Any] | None = None,
                tz: tzinfo | None = None, locale: str = ENGLISH) -> AppointmentView:
    item: Mapping[str, Any] = resource if isinstance(resource, Mapping) else {}
    start = first_time(item, "start")
    end = first_time(item, "end")
    status = str(item.get("status") or "")
    people, place = [], None
    for participant in item.get("participant") or []:
        actor = participant.get("actor") if isinstance(participant, Mapping) else None
        ref = parse_reference(actor)
        if ref is None or ref.type in ("Patient", "RelatedPerson"):
            continue
        name = reference_display(actor, resources)
        if ref.type in ("Location", "HealthcareService"):
            place = place or name
        elif name:
            people.append(name)
    minutes = item.get("minutesDuration")
    if not isinstance(minutes, int) and start and end and start.moment and end.moment:
        minutes = int((end.moment - start.moment).total_seconds() // 60)
    when = date_time_words(start, today, tz, locale) if start else unknown_date(locale)
    upcoming = status in ACTIVE and start is not None and (
        start.moment > now if (now is not None and start.moment is not None) else start.local_day(tz) >= today)
    return AppointmentView(
        reference=reference_to(item),
        what=(concept_text(item.get("serviceType")) or concept_text(item.get("appointmentType"))
              or (item.get("description") if isinstance(item.get("description"), str) else None)
              or gettext_in(locale, "Appointment")),
        start=start,
        when_text=when,
        minutes=minutes if isinstance(minutes, int) and minutes > 0 else None,
        status_text=gettext_in(locale, STATUS_WORDS.get(status, UNKNOWN_STATUS)),
        is_upcoming=upcoming,
        with_whom=tuple(dict.fromkeys(people)),
        place=place,
        reason=", ".join(concept_texts(item.get("reasonCode"))) or None,
        instructions=item["patientInstruction"].strip() if isinstance(item.get("patientInstruction"), str)
        and item["patientInstruction"].strip() else None,
        cancel_reason=_cancel_reason(item.get("cancelationReason"), locale) if status == "cancelled" else None,
        status=status,
    )


def _cancel_reason(concept: Any, locale: str) -> str | None:
    """Why a visit was cancelled: a reason the patient picked here in their language, else the record's words."""
    text = concept_text(concept)
    for system, code in codes(concept):
        if system == CANCELLATION_SYSTEM and code in CANCELLATION_REASONS:
            words = CANCELLATION_REASONS[code][0]
            if text in (None, words):
                return gettext_in(locale, words)
    return text


def upcoming_appointments(resources: Iterable[Any], today: date, now: datetime | None = None,
                          lookup: Mapping[str, Any] | None = None, tz: tzinfo | None = None,
                          locale: str = ENGLISH) -> list[AppointmentView]:
    """Booked (or requested) appointments still to come, soonest first."""
    shown = [appointment(r, today, now, lookup, tz, locale) for r in resources if isinstance(r, Mapping)]
    upcoming = [a for a in shown if a.is_upcoming]
    upcoming.sort(key=lambda a: a.start.sort_key().timestamp() if a.start else 0.0)
    return upcoming


def appointment_event(resource: Any, view: AppointmentView, uid_domain: str,
                      locale: str = ENGLISH) -> CalendarEvent | None:
    """A visit as a calendar event (None when it has no start time to put in a calendar)."""
    item: Mapping[str, Any] = resource if isinstance(resource, Mapping) else {}
    start, end = parse_instant(item.get("start")), parse_instant(item.get("end"))
    if start is None or not isinstance(item.get("id"), str):
        return None
    if end is None and view.minutes:
        end = start + timedelta(minutes=view.minutes)
    summary = with_whom(view, locale)
    reason = gettext_in(locale, "Reason: %(reason)s") % {"reason": view.reason} if view.reason else None
    lines = [line for line in (view.instructions, reason) if line]
    return CalendarEvent(
        uid=f"appointment-{item['id']}@{uid_domain}", summary=summary, start=start, end=end,
        description="\n".join(lines) or None, location=view.place,
        status="CANCELLED" if item.get("status") == "cancelled" else "CONFIRMED",
        stamp=parse_instant((item.get("meta") or {}).get("lastUpdated")))


def with_whom(view: AppointmentView, locale: str = ENGLISH) -> str:
    """`Check-up with Dr. Lee, Dr. Ortiz`: what the visit is, and with whom when the record says."""
    if not view.with_whom:
        return view.what
    return gettext_in(locale, "%(what)s with %(people)s") % {"what": view.what, "people": ", ".join(view.with_whom)}
