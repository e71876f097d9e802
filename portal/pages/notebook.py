"""Your health notebook: notes between visits (how you feel, side effects of one of your medicines, questions
for your next visit), kept private until you choose to share them with your care team, and printable to
take to a visit.

Entries live in the EHR as patient-authored Observations (mappers/notebook.py says how); every change is a
write through the gateway's notebook rule. Each form carries a one-off submission id (the request's
Idempotency-Key, so a form sent twice writes once) and an edit or share carries the version it was opened
on (`If-Match`), so an entry changed in another tab is shown again, never silently overwritten.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from mappers.appointments import upcoming_appointments
from mappers.medications import medication_list
from mappers.names import display_name
from mappers.notebook import (
    A_MEDICINE,
    ADD_WORDS,
    CATEGORY_SEARCH,
    KIND_CODES,
    KIND_WORDS,
    QUESTION,
    SEVERITY_WORDS,
    SIDE_EFFECT,
    SYMPTOM,
    TEXT_MAX,
    NotebookEntry,
    entry_errors,
    entry_resource,
    in_words,
    medicine_choices,
    notebook_entries,
    notebook_entry,
    print_heading,
    shared,
    visit_choices,
)
from mappers.validation import is_fhir_id
from web.i18n import gettext as _
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, FormExpired, Portal, Visit
from ..fhir import NotFound, RecordUnavailable, WriteRefused
from ..sections import load_sections
from .messages import me_refs, new_submission, plain_refusal, read_form, submission_of

PAGE = f"{PREFIX}/notebook"
VERSION = re.compile(r"[A-Za-z0-9.\-]{1,64}")
SAVED = {"new": _l("Saved in your notebook. Only you can see it until you share it."),
         "new-shared": _l("Saved and shared with your care team."),
         "changed": _l("Your changes are saved."),
         "shared": _l("Shared with your care team. They can now see it in your record.")}


def notebook_search(visit: Visit) -> Any:
    return visit.fhir.search("Observation", [("patient", visit.patient_id), ("category", CATEGORY_SEARCH),
                                             ("_count", "200")])


def visits_search(visit: Visit) -> Any:
    today = visit.portal.clock.today()
    return visit.fhir.search("Appointment", [("patient", visit.patient_id), ("date", f"ge{today.isoformat()}"),
                                             ("status", "booked"), ("_sort", "date"), ("_count", "10")],
                             all_pages=False)


def entries_of(visit: Visit, resources: list[dict[str, Any]] | None) -> list[NotebookEntry]:
    """The notebook in words, in the reader's language (dates the way their region writes them)."""
    clock = visit.portal.clock
    return notebook_entries(resources or [], clock.today(), mine=me_refs(visit), tz=clock.tz,
                            locale=clock.formats(visit.locale))


async def _choices(visit: Visit) -> tuple[dict[str, str], dict[str, str]]:
    """The patient's own medicines (current first) and upcoming visits, for the form's lists."""
    clock = visit.portal.clock
    parts = await load_sections(
        medicines=visit.fhir.search("MedicationRequest", [("patient", visit.patient_id), ("_count", "200")]),
        visits=visits_search(visit))
    if not parts["medicines"].ok or not parts["visits"].ok:
        raise RecordUnavailable("notebook")
    formats = clock.formats(visit.locale)
    current, past = medication_list(parts["medicines"].value or [], tz=clock.tz, locale=formats)
    views = upcoming_appointments(parts["visits"].value or [], clock.today(), clock.now(), tz=clock.tz,
                                  locale=formats)
    return medicine_choices([*current, *past], formats), visit_choices(views, clock.tz, formats)


async def show_notebook(visit: Visit) -> Response:
    parts = await load_sections(entries=notebook_search(visit))
    entries = entries_of(visit, parts["entries"].value)
    saved = visit.request.query_params.get("saved", "")
    return visit.render("portal/notebook.html", title=_("Your health notebook"), parts=parts,
                        entries=entries, add_words=in_words(ADD_WORDS, visit.locale), saved=SAVED.get(saved, ""),
                        conflict=visit.request.query_params.get("conflict") == "1")


def _form_page(visit: Visit, *, form: dict[str, str], errors: dict[str, list[str]], submission: str,
               medicines: dict[str, str], visits: dict[str, str], entry: NotebookEntry | None = None,
               version: str = "", status: int = 200) -> Response:
    kind = entry.kind if entry else form.get("kind", "")
    title = _("Change: %(kind)s") % {"kind": _(KIND_WORDS[kind]).lower()} if entry else _(ADD_WORDS[kind])
    return visit.render("portal/notebook_entry.html", status, title=title, form=form, errors=errors,
                        submission=submission, kind=kind, entry=entry, version=version, medicines=medicines,
                        visits=visits, severities=in_words(SEVERITY_WORDS, visit.locale),
                        today=visit.portal.clock.today(), text_max=TEXT_MAX,
                        kinds={"symptom": SYMPTOM, "side_effect": SIDE_EFFECT, "question": QUESTION})


async def new_entry(visit: Visit) -> Response:
    kind = visit.request.query_params.get("kind", "")
    if kind not in KIND_CODES:
        return RedirectResponse(PAGE, status_code=303)
    medicines, visits = await _choices(visit)
    form = {"kind": kind, "day": visit.portal.clock.today().isoformat() if kind != QUESTION else ""}
    if kind == QUESTION and visits:
        form["visit"] = next(iter(visits))
    return _form_page(visit, form=form, errors={}, submission=new_submission(), medicines=medicines, visits=visits)


async def add_entry(visit: Visit) -> Response:
    await visit.check_csrf()
    fields, _ = await read_form(visit)
    submission = submission_of(fields)
    medicines, visits = await _choices(visit)
    errors = entry_errors(fields, visit.portal.clock.today(), medicines=medicines, visits=visits,
                          locale=visit.locale)
    if "kind" in errors:
        raise FormExpired()
    if not errors:
        body = entry_resource(fields, patient_ref=f"Patient/{visit.patient_id}", author_ref=visit.session.fhir_user,
                              submission=submission, today=visit.portal.clock.today(), medicines=medicines,
                              visits=visits)
        if fields.get("share") == "yes":
            body = shared(body)
        try:
            written = await visit.fhir.write("POST", "Observation", body, idempotency_key=f"notebook-{submission}")
        except WriteRefused as exc:
            errors["form"] = [plain_refusal(exc)]
        else:
            saved = "new-shared" if fields.get("share") == "yes" else "new"
            return RedirectResponse(f"{PAGE}?saved={saved}#entry-{written.get('id', '')}", status_code=303)
    return _form_page(visit, form=fields, errors=errors, submission=submission, medicines=medicines,
                      visits=visits, status=422)


async def _own_entry(visit: Visit, entry_id: str) -> tuple[dict[str, Any], NotebookEntry]:
    """One entry of the open record's notebook that the person may change (anything else: not found)."""
    if not is_fhir_id(entry_id):
        raise NotFound("Observation")
    resource = await visit.fhir.read("Observation", entry_id)
    clock = visit.portal.clock
    entry = notebook_entry(resource, clock.today(), mine=me_refs(visit), tz=clock.tz,
                           locale=clock.formats(visit.locale))
    if entry is None or not entry.written_by_me:
        raise NotFound("Observation")
    return resource, entry


async def edit_entry(visit: Visit) -> Response:
    _, entry = await _own_entry(visit, visit.request.path_params["entry_id"])
    medicines, visits = await _choices(visit)
    if entry.medicine_id and entry.medicine_id not in medicines:
        medicines[entry.medicine_id] = entry.medicine or _(A_MEDICINE)
    return _form_page(visit, form=entry.form(), errors={}, submission=new_submission(), medicines=medicines,
                      visits=visits, entry=entry, version=entry.version)


async def save_entry(visit: Visit) -> Response:
    await visit.check_csrf()
    fields, _ = await read_form(visit)
    submission = submission_of(fields)
    version = fields.get("version", "")
    if not VERSION.fullmatch(version):
        raise FormExpired()
    current, entry = await _own_entry(visit, visit.request.path_params["entry_id"])
    medicines, visits = await _choices(visit)
    if entry.medicine_id and entry.medicine_id not in medicines:
        medicines[entry.medicine_id] = entry.medicine or _(A_MEDICINE)
    fields = {**fields, "kind": entry.kind}
    errors = entry_errors(fields, visit.portal.clock.today(), medicines=medicines, visits=visits,
                          locale=visit.locale)
    if not errors:
        body = entry_resource(fields, patient_ref=f"Patient/{visit.patient_id}", author_ref=visit.session.fhir_user,
                              submission=submission, today=visit.portal.clock.today(), medicines=medicines,
                              visits=visits, current=current)
        try:
            await visit.fhir.write("PUT", f"Observation/{entry.id}", body, idempotency_key=f"notebook-{submission}",
                                   if_match=f'W/"{version}"')
        except WriteRefused as exc:
            if exc.status in (409, 412):
                return RedirectResponse(f"{PAGE}?conflict=1#entry-{entry.id}", status_code=303)
            errors["form"] = [plain_refusal(exc)]
        else:
            return RedirectResponse(f"{PAGE}?saved=changed#entry-{entry.id}", status_code=303)
    return _form_page(visit, form=fields, errors=errors, submission=submission, medicines=medicines,
                      visits=visits, entry=entry, version=version, status=422)


async def share_entry(visit: Visit) -> Response:
    await visit.check_csrf()
    fields, _ = await read_form(visit)
    submission = submission_of(fields)
    version = fields.get("version", "")
    if not VERSION.fullmatch(version):
        raise FormExpired()
    current, entry = await _own_entry(visit, visit.request.path_params["entry_id"])
    if entry.shared:
        return RedirectResponse(f"{PAGE}?saved=shared#entry-{entry.id}", status_code=303)
    try:
        await visit.fhir.write("PUT", f"Observation/{entry.id}", shared(current),
                               idempotency_key=f"notebook-share-{submission}", if_match=f'W/"{version}"')
    except WriteRefused as exc:
        if exc.status in (409, 412):
            return RedirectResponse(f"{PAGE}?conflict=1#entry-{entry.id}", status_code=303)
        raise
    return RedirectResponse(f"{PAGE}?saved=shared#entry-{entry.id}", status_code=303)


async def print_notebook(visit: Visit) -> Response:
    """The notebook on paper: questions first (what to ask at the visit), then how you felt and side effects."""
    clock = visit.portal.clock
    parts = await load_sections(entries=notebook_search(visit), patient=visit.fhir.read("Patient", visit.patient_id),
                                visits=visits_search(visit))
    if not parts["entries"].ok:
        raise RecordUnavailable("notebook")
    entries = entries_of(visit, parts["entries"].value)
    formats = clock.formats(visit.locale)
    views = upcoming_appointments(parts["visits"].value or [], clock.today(), clock.now(), tz=clock.tz,
                                  locale=formats)
    name = display_name(parts["patient"].value) if parts["patient"].ok else None
    return visit.render("portal/notebook_print.html", title=_("Your health notebook to print"),
                        heading=print_heading(name, clock.today(), formats), entries=entries,
                        visits=visit_choices(views, clock.tz, formats), next_visit=views[0] if views else None)


def add_notebook_routes(router: APIRouter, portal: Portal) -> None:
    router.get(PAGE, include_in_schema=False)(portal.page(show_notebook))
    router.get(f"{PAGE}/new", include_in_schema=False)(portal.page(new_entry))
    router.post(PAGE, include_in_schema=False)(portal.page(add_entry))
    router.get(f"{PAGE}/print", include_in_schema=False)(portal.page(print_notebook))
    router.get(PAGE + "/{entry_id}/edit", include_in_schema=False)(portal.page(edit_entry))
    router.post(PAGE + "/{entry_id}", include_in_schema=False)(portal.page(save_entry))
    router.post(PAGE + "/{entry_id}/share", include_in_schema=False)(portal.page(share_entry))
