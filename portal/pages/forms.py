"""Forms: the questionnaires the clinic asked this person to fill in, and one form to fill in, save as a
draft (changed in place as often as they like) and send (after that it can be read, not changed).

A pre-visit check-in is opened for one visit (`?appointment=<id>`); the gateway checks that visit is the
person's own. Every save is a write through the gateway, whose rules decide what is allowed; the page
checks the answers first (mappers.questionnaires) so each problem is shown next to its question. Each form
carries a one-off submission id: the request's Idempotency-Key, so a form sent twice writes once. Our
words are in the reader's language; the form's own (questions, choices) are the clinic's, as written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from locales import gettext_in
from mappers.appointments import appointment as appointment_view
from mappers.form_tasks import TASK_CODE, assigned_forms, response_appointment_id, task_outputs
from mappers.inbound import APPOINTMENT_EXTENSION
from mappers.questionnaires import (
    Question,
    answered,
    answers_of,
    canonical,
    cites,
    condition_hints,
    every_question,
    questions,
    read_form,
    response_items,
    typed_values,
)
from mappers.validation import is_fhir_id
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, Portal, Visit
from ..fhir import NotFound, WriteRefused
from ..sections import load_sections
from .messages import new_submission, submission_of

RESPONSE_IDENTIFIER_SYSTEM = "urn:portal:form-response"
TASK_SYSTEM = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"


def _words(visit: Visit) -> str:
    """The language (and region) dates are worded in for this reader."""
    return visit.portal.clock.formats(visit.locale)


async def _published(visit: Visit) -> list[dict[str, Any]]:
    return await visit.fhir.search("Questionnaire", [("status", "active"), ("_count", "50")], all_pages=False)


async def _responses(visit: Visit) -> list[dict[str, Any]]:
    return await visit.fhir.search("QuestionnaireResponse", [("patient", visit.patient_id), ("_sort", "-authored"),
                                                             ("_count", "100")], all_pages=False)


async def list_forms(visit: Visit) -> Response:
    clock = visit.portal.clock
    parts = await load_sections(
        tasks=visit.fhir.search("Task", [("patient", visit.patient_id), ("code", f"{TASK_SYSTEM}|{TASK_CODE}"),
                                         ("_count", "50")], all_pages=False),
        responses=_responses(visit),
        forms=_published(visit),
    )
    ok = all(p.ok for p in parts.values())
    found = assigned_forms(parts["tasks"].value or [], parts["responses"].value or [], parts["forms"].value or [],
                           clock.today(), clock.tz, clock.formats(visit.locale)) if ok else []
    return visit.render("portal/forms.html", title=_l("Forms"), ok=ok,
                        open_forms=[f for f in found if f.state != "sent"],
                        sent_forms=[f for f in found if f.state == "sent"])


async def _form_and_visit(visit: Visit) -> tuple[dict[str, Any], str | None, Any]:
    """The published form asked for, and the person's own visit it is for (if one is named)."""
    qid = visit.request.path_params["questionnaire_id"]
    if not is_fhir_id(qid):
        raise NotFound("Questionnaire")
    form = await visit.fhir.read("Questionnaire", qid)
    if form.get("status") != "active":
        raise NotFound("Questionnaire")
    appointment_id = visit.request.query_params.get("appointment") or None
    shown = None
    if appointment_id is not None:
        if not is_fhir_id(appointment_id):
            raise NotFound("Appointment")
        clock = visit.portal.clock
        booked = await visit.fhir.read("Appointment", appointment_id)  # someone else's: 404, as not there
        shown = appointment_view(booked, clock.today(), clock.now(), tz=clock.tz, locale=clock.formats(visit.locale))
    return form, appointment_id, shown


async def _current(visit: Visit, form: Mapping[str, Any], appointment_id: str | None) -> dict[str, Any] | None:
    """The person's answers to this form (for this visit): a draft before anything sent, newest first. A
    visit's answers are those naming it, or those the clinic's Task for that visit points to."""
    searches = {"responses": _responses(visit)}
    if appointment_id:
        searches["tasks"] = visit.fhir.search("Task", [("patient", visit.patient_id),
                                                       ("focus", f"Appointment/{appointment_id}")], all_pages=False)
    found = dict(zip(searches, await asyncio.gather(*searches.values()), strict=True))
    outputs = {o for t in found.get("tasks", []) for o in task_outputs(t)}

    def belongs(r: dict[str, Any]) -> bool:
        if r.get("id") in outputs:
            return True
        if response_appointment_id(r) != appointment_id:
            return False
        return appointment_id is not None or not r.get("encounter")  # an answered past visit's is not this

    mine = [r for r in found["responses"] if cites(r.get("questionnaire"), form)
            and r.get("status") in ("in-progress", "completed") and belongs(r)]
    drafts = [r for r in mine if r.get("status") == "in-progress"]
    pick = drafts or mine
    return max(pick, key=lambda r: str(r.get("authored") or "")) if pick else None


def _page(visit: Visit, form: Mapping[str, Any], qs: list[Question], appointment: Any,
          appointment_id: str | None, response: Mapping[str, Any] | None, typed: dict[str, list[str]],
          errors: dict[str, list[str]], submission: str, status: int = 200) -> Response:
    by_link = {q.link_id: q for q in every_question(qs)}
    # Errors are shown by field id, so the summary's links land on the question.
    field_errors = {(by_link[k].field_id if k in by_link else "form"): v for k, v in errors.items()}
    # The summary at the top names each question (five times "Please answer this question" says nothing).
    summary = {(by_link[k].field_id if k in by_link else "form"): [f"{by_link[k].text} {m}" if k in by_link else m
                                                                    for m in v] for k, v in errors.items()}
    sent = response is not None and response.get("status") == "completed"
    query = {"appointment": appointment_id} if appointment_id else {}
    return visit.render(
        "portal/form.html", status, title=str(form.get("title") or gettext_in(visit.locale, "Form")), form=form,
        questions=qs, hints=condition_hints(qs, visit.locale), typed=typed, errors=field_errors, summary=summary,
        submission=submission, appointment=appointment, sent=sent, response=response,
        lines=answered(qs, answers_of(response), locale=_words(visit)) if sent and response else [],
        action=f"{PREFIX}/forms/{form['id']}" + (f"?{urlencode(query)}" if query else ""),
        saved=visit.request.query_params.get("saved") == "1",
        just_sent=visit.request.query_params.get("sent") == "1")


async def fill_form(visit: Visit) -> Response:
    form, appointment_id, appointment = await _form_and_visit(visit)
    qs = questions(form, _words(visit))
    response = await _current(visit, form, appointment_id)
    typed = typed_values(qs, answers_of(response)) if response else {}
    return _page(visit, form, qs, appointment, appointment_id, response, typed, {}, new_submission())


async def save_form(visit: Visit) -> Response:
    await visit.check_csrf()
    raw = await visit.request.form()
    submission = submission_of({k: v for k, v in raw.items() if isinstance(v, str)})
    form, appointment_id, appointment = await _form_and_visit(visit)
    qs = questions(form, _words(visit))
    response = await _current(visit, form, appointment_id)
    if response is not None and response.get("status") == "completed":
        return _page(visit, form, qs, appointment, appointment_id, response, {}, {}, submission, 409)
    sending = raw.get("action") == "send"
    reading = read_form(qs, {k: [v for v in raw.getlist(k) if isinstance(v, str)] for k in raw.keys()},
                        completing=sending, locale=visit.locale)
    status = "completed" if sending else "in-progress"
    query = {"appointment": appointment_id} if appointment_id else {}
    query["sent" if sending else "saved"] = "1"
    done = RedirectResponse(f"{PREFIX}/forms/{form['id']}?{urlencode(query)}", status_code=303)
    if not reading.problems and response is not None and response.get("status") == status \
            and answers_of(response) == reading.answers:
        return done  # already saved just so (a form sent twice): nothing to write
    if not reading.problems:
        body: dict[str, Any] = {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": canonical(form),
            "status": status,
            "subject": {"reference": f"Patient/{visit.patient_id}"},
        }
        if appointment_id:
            body["extension"] = [{"url": APPOINTMENT_EXTENSION,
                                  "valueReference": {"reference": f"Appointment/{appointment_id}"}}]
        if items := response_items(qs, reading.answers):
            body["item"] = items
        try:
            if response is None:
                body["identifier"] = {"system": RESPONSE_IDENTIFIER_SYSTEM, "value": submission}
                await visit.fhir.write("POST", "QuestionnaireResponse", body, idempotency_key=f"form-{submission}")
            else:
                body["id"] = response["id"]
                version = (response.get("meta") or {}).get("versionId")
                # One key per version changed: a retry of this very change is answered once; a later change
                # from the same page (after the draft it created) is a change of its own.
                await visit.fhir.write("PUT", f"QuestionnaireResponse/{response['id']}", body,
                                       idempotency_key=f"form-{submission}-{response['id']}-{version}",
                                       if_match=f'W/"{version}"' if version else None)
        except WriteRefused as exc:
            reading.problems[""] = [_plain_refusal(exc, visit.locale)]
        else:
            return done
    return _page(visit, form, qs, appointment, appointment_id, response, reading.typed, reading.problems,
                 submission, 422)


def _plain_refusal(exc: WriteRefused, locale: str) -> str:
    """Why the record refused the answers, in words (the record's own reason is English only)."""
    if exc.status in (409, 412):
        return gettext_in(locale, "This form was changed somewhere else meanwhile. Please reload the page and "
                                  "try again.")
    return exc.reason if exc.reason.endswith(".") else exc.reason + "."


def add_form_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/forms", include_in_schema=False)(portal.page(list_forms))
    router.get(PREFIX + "/forms/{questionnaire_id}", include_in_schema=False)(portal.page(fill_form))
    router.post(PREFIX + "/forms/{questionnaire_id}", include_in_schema=False)(portal.page(save_form))
