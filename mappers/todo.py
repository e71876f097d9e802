"""The person's to-do list, from what the other mappers already read out of the record (pure): medicines
that may run out soon, visits coming up, forms the clinic asked for, and vaccines or check-ups due
(`care_due`, whose rules are data naming their guideline). Each to-do says what to do, by when, where to do
it in the portal, and, where it has a date still to come, the calendar event for it. The words are in the
`locale` passed in (English by default); the other mappers' words come in that language already."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from locales import ENGLISH, gettext_in

from .appointments import AppointmentView, with_whom
from .calendar_file import CalendarEvent
from .care_due import DueItem
from .dates import date_words
from .form_tasks import AssignedForm
from .medications import Medication

REFILL_WITHIN_DAYS = 14
VISITS_SHOWN = 3
DEFAULT_VISIT_MINUTES = 30
UID_DOMAIN = "portal.invalid"  # a uid's right-hand side; ids are only unique with one
SAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class ToDo:
    id: str  # stable across page loads: names the calendar file
    kind: str  # refill | visit | form | vaccine | screening
    title: str
    text: str  # what to do and by when, in words
    urgent: bool  # overdue or about to be
    href: str | None  # where in the portal to do it
    link_text: str | None
    day: date | None  # the date it is about, for ordering
    event: CalendarEvent | None  # None where there is no date still to come
    why: str | None = None
    source_title: str | None = None
    source_url: str | None = None


def _id(*parts: str) -> str:
    return "-".join(SAFE_ID.sub("_", p) for p in parts if p)


def _local_id(reference: str | None) -> str:
    return (reference or "").rsplit("/", 1)[-1]


def _refill(med: Medication, today: date, stamp: datetime, locale: str = ENGLISH) -> ToDo | None:
    if not med.is_current or med.runs_out is None or (med.runs_out - today).days > REFILL_WITHIN_DAYS:
        return None
    days = (med.runs_out - today).days
    day = date_words(med.runs_out, locale=locale)
    if days < 0:
        text = gettext_in(locale, "May have run out on %(day)s. Ask for a refill if you still take it.") % {
            "day": day}
    else:
        text = gettext_in(locale, "May run out by %(day)s. Ask for a refill a few days before.") % {"day": day}
    if med.refills_left == 0:
        text += " " + gettext_in(locale, "No refills are left: your care team needs to renew it.")
    tid = _id("refill", _local_id(med.reference) or med.name)
    event = None
    if days >= 0:
        event = CalendarEvent(uid=f"{tid}@{UID_DOMAIN}",
                              summary=gettext_in(locale, "Medicine may run out: %(name)s") % {"name": med.name},
                              start=med.runs_out, stamp=stamp,
                              description=gettext_in(locale, "Ask your care team for a refill before this day."))
    return ToDo(tid, "refill", gettext_in(locale, "Refill: %(name)s") % {"name": med.name}, text, days <= 3,
                "/portal/medications", gettext_in(locale, "Ask for a refill"), med.runs_out, event)


def _visit(visit: AppointmentView, stamp: datetime, tz: tzinfo | None, locale: str = ENGLISH) -> ToDo:
    start = visit.start
    tid = _id("visit", _local_id(visit.reference) or (start.day.isoformat() if start else ""))
    when = f"{visit.when_text[:1].upper()}{visit.when_text[1:]}"
    if visit.with_whom:
        text = gettext_in(locale, "%(when)s with %(people)s.") % {"when": when, "people": ", ".join(visit.with_whom)}
    else:
        text = f"{when}."
    if visit.instructions:
        text += f" {visit.instructions}"
    event = None
    if start is not None:
        moment = start.moment.astimezone(tz) if start.moment is not None and tz is not None else start.moment
        begins: date | datetime = moment if moment is not None else start.day
        ends = begins + timedelta(minutes=visit.minutes or DEFAULT_VISIT_MINUTES) if moment is not None else None
        event = CalendarEvent(uid=f"{tid}@{UID_DOMAIN}", summary=with_whom(visit, locale), start=begins, end=ends,
                              stamp=stamp, location=visit.place,
                              description=visit.instructions)
    return ToDo(tid, "visit", visit.what, text, False, "/portal/appointments", gettext_in(locale, "See your visits"),
                start.local_day(tz) if start else None, event)


def _form_text(form: AssignedForm, locale: str) -> str:
    draft = form.state == "draft"
    if draft:
        what = (gettext_in(locale, "Finish this form for your visit (%(visit)s)") % {"visit": form.visit_text}
                if form.visit_text else gettext_in(locale, "Finish this form"))
    else:
        what = (gettext_in(locale, "Fill in this form for your visit (%(visit)s)") % {"visit": form.visit_text}
                if form.visit_text else gettext_in(locale, "Fill in this form"))
    if not form.due_text:
        return f"{what}."
    if form.is_overdue:
        return gettext_in(locale, "%(what)s, it was due %(day)s.") % {"what": what, "day": form.due_text}
    return gettext_in(locale, "%(what)s, by %(day)s.") % {"what": what, "day": form.due_text}


def _form(form: AssignedForm, today: date, stamp: datetime, locale: str = ENGLISH) -> ToDo:
    tid = _id("form", form.questionnaire_id, form.appointment_id or "")
    event = None
    if form.due is not None and form.due >= today:
        event = CalendarEvent(uid=f"{tid}@{UID_DOMAIN}", start=form.due, stamp=stamp,
                              summary=gettext_in(locale, "Form to fill in: %(title)s") % {"title": form.title})
    link = gettext_in(locale, "Finish the form") if form.state == "draft" else gettext_in(locale, "Fill in the form")
    return ToDo(tid, "form", form.title, _form_text(form, locale), form.is_overdue, form.href, link, form.due, event)


def _care(item: DueItem, today: date, stamp: datetime, locale: str = ENGLISH) -> ToDo:
    tid = _id("care", item.rule_id)
    event = None
    if item.due_date is not None and item.due_date >= today:
        event = CalendarEvent(uid=f"{tid}@{UID_DOMAIN}", start=item.due_date, stamp=stamp, description=item.why,
                              summary=gettext_in(locale, "Due: %(title)s") % {"title": item.title})
    text = item.status_text + "." if not item.status_text.endswith(".") else item.status_text
    if item.last_done_text:
        text += " " + gettext_in(locale, "Last on record: %(when)s.") % {"when": item.last_done_text}
    return ToDo(tid, item.kind if item.kind in ("vaccine", "screening") else "screening", item.title, text,
                item.status == "overdue", "/portal/messages/new?topic=care", gettext_in(locale, "Ask your care team"),
                item.due_date, event, item.why, item.source_title, item.source_url)


def to_dos(*, medicines: Iterable[Medication], visits: Iterable[AppointmentView], forms: Iterable[AssignedForm],
           due: Iterable[DueItem], today: date, now: datetime, tz: tzinfo | None = None,
           locale: str = ENGLISH) -> list[ToDo]:
    """Every to-do, most pressing first: overdue or about to be, then by date (those without one last). The
    visits, forms and what is due come worded in `locale` already."""
    found: list[ToDo] = []
    found += [t for m in medicines if (t := _refill(m, today, now, locale)) is not None]
    found += [_form(f, today, now, locale) for f in forms if f.state != "sent"]
    found += [_care(d, today, now, locale) for d in due]
    upcoming = [_visit(v, now, tz, locale) for v in visits if v.is_upcoming][:VISITS_SHOWN]
    found += upcoming
    found.sort(key=lambda t: (not t.urgent, t.day or date.max, t.kind, t.title))
    return found
