"""Appointments: upcoming and past visits, booking a free time (filtered by clinician, kind of visit and
date, shown a week at a time as a list of days), moving and cancelling within the clinic's rules, an
add-to-calendar file per visit and the check-in questions a kind of visit asks for.

Every change is a write through the gateway, whose rules decide: booking takes the Slot in one
transaction that only one of many racing requests can win, and the loser is told so and offered the
nearest free times. The page reads the Slot first only to explain; the gateway checks again. Each form
carries a one-off submission id that becomes the write's Idempotency-Key. Words are in the reader's
language (the mappers' too); what is written into the record stays English.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from locales import N_, gettext_in, ngettext_in
from mappers.appointments import AppointmentView, appointment, appointment_event
from mappers.booking import (
    CANCELLATION_REASONS,
    VISIT_TYPE_SYSTEM,
    FreeTime,
    all_visit_types,
    booking_errors,
    booking_request,
    cancel_request,
    cancellation_choices,
    clinicians,
    filters_from,
    free_time,
    free_times,
    in_week,
    move_request,
    nearest,
    one_per_time,
    plain_slot_id,
    slot_search,
    visit_types_of,
    week_days,
    week_words,
)
from mappers.calendar_file import calendar_file
from mappers.inbound import change_refusal
from mappers.instants import parse_instant
from mappers.validation import is_fhir_id
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, Portal, Visit
from ..fhir import NotFound, WriteRefused
from ..sections import load_sections
from .messages import new_submission, submission_of

BASE = f"{PREFIX}/appointments"
HISTORY_SIZE = 100
PAST_SHOWN = 12
TAKEN = N_("That time was just taken by someone else.")
NO_SUCH_TIME = N_("We could not find that time. It may have been removed.")
CANNOT_MOVE = _l("This visit cannot be moved")


# -- reading -------------------------------------------------------------------------------------------
async def _appointment(visit: Visit, appointment_id: str) -> dict[str, Any]:
    """One of this record's appointments (the gateway answers 404 for another's, as for none)."""
    if not is_fhir_id(appointment_id):
        raise NotFound("Appointment")
    return await visit.fhir.read("Appointment", appointment_id)


async def _slot(visit: Visit, slot_id: str) -> dict[str, Any] | None:
    """A Slot by the id a form or address gave; None when there is no such time."""
    plain = plain_slot_id(slot_id)
    if plain is None:
        return None
    try:
        return await visit.fhir.read("Slot", plain)
    except NotFound:
        return None


def _words(visit: Visit) -> str:
    """The language (and region) the mappers word dates and times in for this reader."""
    return visit.portal.clock.formats(visit.locale)


def _view(visit: Visit, resource: dict[str, Any]) -> AppointmentView:
    clock = visit.portal.clock
    return appointment(resource, clock.today(), clock.now(), tz=clock.tz, locale=_words(visit))


def _refusal(visit: Visit, resource: dict[str, Any], view: AppointmentView) -> str | None:
    """Why this visit cannot be moved or cancelled online (None: it can). The gateway applies the same rule
    (`change_refusal`) and words it in English; the page says it in the reader's language."""
    now, hours = visit.portal.clock.now(), visit.portal.settings.appointment_change_notice_hours
    start = parse_instant(resource.get("start"))
    if not view.is_upcoming or (start is not None and start <= now):
        return gettext_in(visit.locale, "This visit can no longer be changed.")
    if change_refusal(resource.get("start"), now, hours) is None:
        return None
    return ngettext_in(visit.locale, "Visits cannot be moved or cancelled online in the last hour before they "
                                     "start. Please call the clinic instead.",
                       "Visits cannot be moved or cancelled online in the last %(num)s hours before they start. "
                       "Please call the clinic instead.", hours) % {"num": hours}


async def _schedules(visit: Visit) -> list[dict[str, Any]]:
    return await visit.fhir.search("Schedule", [("active", "true"), ("_count", "100")], all_pages=False)


async def _nearby(visit: Visit, moment: datetime, visit_type: str, skip: str) -> list[FreeTime]:
    """Free times close to `moment` (of the same kind of visit, when one was chosen)."""
    clock = visit.portal.clock
    start = max(moment - timedelta(days=3), clock.now()).date()
    params = [("status", "free"), ("start", f"ge{start.isoformat()}"),
              ("start", f"lt{(moment + timedelta(days=10)).date().isoformat()}"), ("_sort", "start"),
              ("_count", "500")]
    if visit_type:
        params.append(("service-type", f"{VISIT_TYPE_SYSTEM}|{visit_type}"))
    slots, schedules = await visit.fhir.search("Slot", params, all_pages=False), await _schedules(visit)
    times = free_times(slots, clinicians(schedules), clock.now(), clock.today(), clock.tz, _words(visit))
    # Each time once (the same time with another clinician is one choice), then the closest either side.
    return nearest(one_per_time(t for t in times if t.slot_id != skip), moment)


# -- the list and one visit ----------------------------------------------------------------------------
async def list_page(visit: Visit) -> Response:
    found = await visit.fhir.search("Appointment", [("patient", visit.patient_id), ("_sort", "-date"),
                                                    ("_count", str(HISTORY_SIZE))], all_pages=False)
    shown = [(r, _view(visit, r)) for r in found if r.get("resourceType") == "Appointment"]
    upcoming = sorted((pair for pair in shown if pair[1].is_upcoming),
                      key=lambda pair: pair[1].start.sort_key() if pair[1].start else datetime.max)
    past = sorted((pair for pair in shown if not pair[1].is_upcoming),
                  key=lambda pair: pair[1].start.sort_key().timestamp() if pair[1].start else 0.0, reverse=True)
    return visit.render("portal/appointments.html", title=_l("Appointments"),
                        upcoming=[(r["id"], v) for r, v in upcoming],
                        past=[(r["id"], v) for r, v in past[:PAST_SHOWN]], more_past=len(past) > PAST_SHOWN)


async def _checkin_forms(visit: Visit, resource: dict[str, Any]) -> list[dict[str, str]]:
    """The clinic's forms for this kind of visit (Questionnaire.useContext names the visit types)."""
    kinds = visit_types_of(resource)
    if not kinds:
        return []
    found = await visit.fhir.search("Questionnaire", [("context", ",".join(k.token for k in kinds)),
                                                      ("status", "active")], all_pages=False)
    untitled = gettext_in(visit.locale, "Questions before your visit")
    return [{"id": q["id"], "title": str(q.get("title") or untitled)}
            for q in found if q.get("resourceType") == "Questionnaire" and is_fhir_id(str(q.get("id", "")))]


def _detail_page(visit: Visit, resource: dict[str, Any], forms: list[dict[str, str]] | None,
                 errors: dict[str, list[str]], submission: str, status: int = 200) -> Response:
    view = _view(visit, resource)
    query = visit.request.query_params
    flash = next((k for k in ("booked", "moved", "cancelled") if query.get(k) == "1"), None)
    return visit.render("portal/appointment.html", status, title=view.what, appointment_id=resource["id"],
                        a=view, refusal=_refusal(visit, resource, view), forms=forms, errors=errors,
                        submission=submission, reasons=cancellation_choices(visit.locale), flash=flash)


async def detail(visit: Visit) -> Response:
    resource = await _appointment(visit, visit.request.path_params["appointment_id"])
    view = _view(visit, resource)
    forms: list[dict[str, str]] | None = []
    if view.is_upcoming:
        parts = await load_sections(forms=_checkin_forms(visit, resource))
        forms = parts["forms"].value if parts["forms"].ok else None
    return _detail_page(visit, resource, forms, {}, new_submission())


async def calendar(visit: Visit) -> Response:
    """The visit as an add-to-calendar file (a download; calendars import it)."""
    resource = await _appointment(visit, visit.request.path_params["appointment_id"])
    view = _view(visit, resource)
    domain = urlsplit(visit.portal.settings.public_url).hostname or "portal"
    event = appointment_event(resource, view, domain, visit.locale)
    if event is None:
        raise NotFound("Appointment")
    day = event.start.astimezone(visit.portal.clock.tz).date() if isinstance(event.start, datetime) else event.start
    return Response(calendar_file([event]), media_type="text/calendar; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="visit-{day.isoformat()}.ics"', "Cache-Control": "no-store"})


async def cancel(visit: Visit) -> Response:
    await visit.check_csrf()
    fields = {k: v for k, v in (await visit.request.form()).items() if isinstance(v, str)}
    submission = submission_of(fields)
    resource = await _appointment(visit, visit.request.path_params["appointment_id"])
    if resource.get("status") == "cancelled":  # the form sent again: what was asked for is done
        return RedirectResponse(f"{BASE}/{resource['id']}?cancelled=1", status_code=303)
    errors: dict[str, list[str]] = {}
    if fields.get("reason", "") not in CANCELLATION_REASONS:
        errors["reason"] = [gettext_in(visit.locale, "Choose why you are cancelling.")]
    else:
        version = (resource.get("meta") or {}).get("versionId")
        try:
            await visit.fhir.write("PUT", f"Appointment/{resource['id']}", cancel_request(resource, fields["reason"]),
                                   idempotency_key=f"cancel-{submission}",
                                   if_match=f'W/"{version}"' if version else None)
        except WriteRefused as exc:
            errors["reason"] = [_plain_refusal(exc, visit.locale)]
        else:
            await visit.notify("appointment", f"{BASE}/{resource['id']}", key=f"appointment-cancel:{submission}")
            return RedirectResponse(f"{BASE}/{resource['id']}?cancelled=1", status_code=303)
    return _detail_page(visit, resource, [], errors, submission, 422)


def _plain_refusal(exc: WriteRefused, locale: str) -> str:
    """Why the record refused a change, in words (the record's own reason is English only)."""
    if exc.status in (409, 412):
        return gettext_in(locale, "This visit or that time changed meanwhile. Please look again and try once more.")
    return exc.reason if exc.reason.endswith(".") else exc.reason + "."


# -- booking and moving: the week of free times ---------------------------------------------------------
async def book(visit: Visit) -> Response:
    """The free times of one week, narrowed by clinician, kind of visit and date. With `move=<id>` the
    same page picks a new time for one of the person's visits."""
    clock = visit.portal.clock
    query = visit.request.query_params
    moving = None
    if query.get("move"):
        resource = await _appointment(visit, query["move"])
        view = _view(visit, resource)
        if refusal := _refusal(visit, resource, view):
            return visit.render("portal/message.html", 409, title=CANNOT_MOVE, text=refusal)
        moving = {"id": resource["id"], "view": view, "types": [v.code for v in visit_types_of(resource)]}
    schedules = await _schedules(visit)
    people = clinicians(schedules)
    kinds = all_visit_types([], schedules)
    params = dict(query)
    if moving and not params.get("type") and moving["types"]:
        params["type"] = moving["types"][0]
    filters, errors = filters_from(params, clock.today(), people, kinds, visit.locale)
    slots = await visit.fhir.search("Slot", slot_search(filters, clock.today()), all_pages=False)
    times = in_week(free_times(slots, people, clock.now(), clock.today(), clock.tz, _words(visit)), filters.week)
    if not filters.clinician:
        times = one_per_time(times)  # "anyone": each time once, with whoever is free then
    days = week_days(times, filters.week, _words(visit))
    this_week = filters.week <= clock.today()

    def link(t: FreeTime) -> str:
        if moving:
            return f"{BASE}/{moving['id']}/move/{t.slot_id}"
        return f"{BASE}/book/{t.slot_id}" + (f"?{urlencode({'type': filters.visit_type})}"
                                             if filters.visit_type else "")

    def week_link(offset: int) -> str:
        extra = {"move": moving["id"]} if moving else {}
        return "?" + urlencode(filters.query(date=(filters.week + timedelta(days=7 * offset)).isoformat(), **extra))

    return visit.render("portal/appointment_book.html", 200 if not errors else 422,
                        title=_l("Move a visit") if moving else _l("Book a visit"), filters=filters, errors=errors,
                        clinicians=people, kinds=kinds, days=days, free_count=len(times), link=link,
                        week_text=week_words(filters.week, _words(visit)),
                        previous=None if this_week else week_link(-1), following=week_link(1), moving=moving)


async def _confirm_page(visit: Visit, slot: dict[str, Any] | None, *, action: str, chosen_type: str,
                        fields: dict[str, str], errors: dict[str, list[str]], submission: str,
                        moving: dict[str, Any] | None = None, status: int = 200, refused: str | None = None
                        ) -> Response:
    """Confirm a chosen time; or, when it is gone, say so and offer the nearest free ones."""
    clock = visit.portal.clock
    schedules = await _schedules(visit)
    names = {c.schedule_id: c.name for c in clinicians(schedules)}
    time = free_time(slot, names, clock.today(), clock.tz, _words(visit)) if slot else None
    gone = refused or (None if time is not None and time.is_free and time.start > clock.now() else TAKEN)
    if slot is None:
        gone = NO_SUCH_TIME
    taken = gettext_in(visit.locale, gone) if gone else None
    offers: list[FreeTime] = []
    if taken and time is not None:
        offers = await _nearby(visit, time.start, chosen_type, time.slot_id)
        status = max(status, 409)
    elif taken:
        status = max(status, 404)

    def offer_link(t: FreeTime) -> str:
        if moving:
            return f"{BASE}/{moving['id']}/move/{t.slot_id}"
        return f"{BASE}/book/{t.slot_id}" + (f"?{urlencode({'type': chosen_type})}" if chosen_type else "")

    offered = list(time.visit_types) if time else []
    if not chosen_type and len(offered) == 1:
        chosen_type = offered[0].code
    title = _l("Choose another time") if taken else _l("Confirm your visit")
    return visit.render("portal/appointment_confirm.html", status, title=title, time=time,
                        taken=taken, offers=offers, offer_link=offer_link, offered=offered, action=action,
                        form={"type": chosen_type, **fields}, errors=errors, submission=submission, moving=moving,
                        book_again=f"{BASE}/book" + (f"?move={moving['id']}" if moving else ""))


async def confirm_booking(visit: Visit) -> Response:
    slot = await _slot(visit, visit.request.path_params["slot_id"])
    return await _confirm_page(visit, slot, action=BASE, chosen_type=visit.request.query_params.get("type", ""),
                               fields={"slot": str((slot or {}).get("id", ""))}, errors={},
                               submission=new_submission())


async def _form(visit: Visit) -> dict[str, str]:
    await visit.check_csrf()
    return {k: v for k, v in (await visit.request.form()).items() if isinstance(v, str)}


async def book_post(visit: Visit) -> Response:
    fields = await _form(visit)
    submission = submission_of(fields)
    # The slot is read only to check the form; whether it is still free is the gateway's to decide (a form
    # sent twice must reach it again, to get the first answer back).
    slot = await _slot(visit, fields.get("slot", ""))
    if slot is None:
        return await _confirm_page(visit, slot, action=BASE, chosen_type=fields.get("type", ""), fields=fields,
                                   errors={}, submission=new_submission())
    offered = visit_types_of(slot)
    errors = booking_errors(fields, offered, visit.locale)
    if not errors:
        kind = next(v for v in offered if v.code == fields["type"])
        body = booking_request(patient_ref=f"Patient/{visit.patient_id}", slot_id=slot["id"], visit_type=kind,
                               reason=fields.get("reason", ""), submission=submission)
        try:
            written = await visit.fhir.write("POST", "Appointment", body, idempotency_key=f"booking-{submission}")
        except WriteRefused as exc:
            if await _gone(visit, slot, exc):
                return await _confirm_page(visit, slot, action=BASE, chosen_type=fields["type"], fields=fields,
                                           errors={}, submission=new_submission(), refused=TAKEN)
            errors["slot"] = [_plain_refusal(exc, visit.locale)]
        else:
            await visit.notify("appointment", f"{BASE}/{written.get('id')}", key=f"appointment-book:{submission}")
            return RedirectResponse(f"{BASE}/{written.get('id')}?booked=1", status_code=303)
    return await _confirm_page(visit, slot, action=BASE, chosen_type=fields.get("type", ""), fields=fields,
                               errors=errors, submission=submission, status=422)


async def _gone(visit: Visit, slot: dict[str, Any], exc: WriteRefused) -> bool:
    """Whether a refused booking or move was refused because the time is taken (lost the race, or taken
    before the form was sent), rather than for a reason to show at the form."""
    if exc.status == 409:
        return True
    now = await _slot(visit, str(slot.get("id", "")))
    return now is None or now.get("status") != "free"


async def _moving(visit: Visit) -> dict[str, Any]:
    resource = await _appointment(visit, visit.request.path_params["appointment_id"])
    view = _view(visit, resource)
    return {"id": resource["id"], "view": view, "resource": resource, "refusal": _refusal(visit, resource, view),
            "types": [v.code for v in visit_types_of(resource)]}


async def confirm_move(visit: Visit) -> Response:
    moving = await _moving(visit)
    if moving["refusal"]:
        return visit.render("portal/message.html", 409, title=CANNOT_MOVE, text=moving["refusal"])
    slot = await _slot(visit, visit.request.path_params["slot_id"])
    return await _confirm_page(visit, slot, action=f"{BASE}/{moving['id']}/move",
                               chosen_type=(moving["types"] or [""])[0],
                               fields={"slot": str((slot or {}).get("id", ""))}, errors={},
                               submission=new_submission(), moving=moving)


async def move_post(visit: Visit) -> Response:
    fields = await _form(visit)
    submission = submission_of(fields)
    moving = await _moving(visit)
    action = f"{BASE}/{moving['id']}/move"
    chosen = (moving["types"] or [""])[0]
    if f"Slot/{fields.get('slot', '')}" in [s.get("reference") for s in moving["resource"].get("slot") or []]:
        return RedirectResponse(f"{BASE}/{moving['id']}?moved=1", status_code=303)  # the form sent again
    if moving["refusal"]:
        return visit.render("portal/message.html", 409, title=CANNOT_MOVE, text=moving["refusal"])
    slot = await _slot(visit, fields.get("slot", ""))
    if slot is None:
        return await _confirm_page(visit, slot, action=action, chosen_type=chosen, fields=fields, errors={},
                                   submission=new_submission(), moving=moving)
    resource = moving["resource"]
    version = (resource.get("meta") or {}).get("versionId")
    try:
        await visit.fhir.write("PUT", f"Appointment/{resource['id']}", move_request(resource, slot["id"]),
                               idempotency_key=f"move-{submission}", if_match=f'W/"{version}"' if version else None)
    except WriteRefused as exc:
        if await _gone(visit, slot, exc):
            return await _confirm_page(visit, slot, action=action, chosen_type=chosen, fields=fields, errors={},
                                       submission=new_submission(), moving=moving, refused=TAKEN)
        return await _confirm_page(visit, slot, action=action, chosen_type=chosen, fields=fields,
                                   errors={"slot": [_plain_refusal(exc, visit.locale)]}, submission=submission,
                                   moving=moving,
                                   status=422)
    await visit.notify("appointment", f"{BASE}/{resource['id']}", key=f"appointment-move:{submission}")
    return RedirectResponse(f"{BASE}/{resource['id']}?moved=1", status_code=303)


def add_appointment_routes(router: APIRouter, portal: Portal) -> None:
    router.get(BASE, include_in_schema=False)(portal.page(list_page))
    router.post(BASE, include_in_schema=False)(portal.page(book_post))
    router.get(f"{BASE}/book", include_in_schema=False)(portal.page(book))
    router.get(BASE + "/book/{slot_id}", include_in_schema=False)(portal.page(confirm_booking))
    router.get(BASE + "/{appointment_id}", include_in_schema=False)(portal.page(detail))
    router.get(BASE + "/{appointment_id}/calendar.ics", include_in_schema=False)(portal.page(calendar))
    router.post(BASE + "/{appointment_id}/cancel", include_in_schema=False)(portal.page(cancel))
    router.get(BASE + "/{appointment_id}/move/{slot_id}", include_in_schema=False)(portal.page(confirm_move))
    router.post(BASE + "/{appointment_id}/move", include_in_schema=False)(portal.page(move_post))
