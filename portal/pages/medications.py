"""Medicines: the patient's current prescriptions in plain words, asking for a refill (to a pharmacy of
their choice, with a note) and seeing where each request is; a prescription with no refills left offers
"ask for a renewal", which is a medication question sent as a message.

A refill request is a write through the gateway's refill rule (it checks the prescription is the
patient's own, active and has a refill left, and that the pharmacy is one). Each form carries a one-off
submission id that becomes the request's Idempotency-Key, so a form sent twice asks once. The page is in
the reader's language; a renewal message is written to the care team in English, the record's language.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from locales import gettext_in
from mappers.catalogue import Place, pharmacies
from mappers.inbound import NOTE_MAX_CHARS
from mappers.messages import TOPICS, outgoing, thread_id
from mappers.quantities import number_text
from mappers.refills import Prescription, prescriptions, usual_pharmacy
from mappers.validation import is_fhir_id
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, Portal, Visit
from ..fhir import NotFound, RecordUnavailable, WriteRefused
from ..sections import load_sections
from .messages import me_refs, new_submission, send_message, submission_of

PAGE = f"{PREFIX}/medications"


async def _prescriptions(visit: Visit) -> list[Prescription]:
    """The current prescriptions with their fills and refill requests (one search finds both the
    prescriptions and the requests). Without the fills, refills left are what the prescription allows."""
    pid = visit.patient_id
    parts = await load_sections(
        requests=visit.fhir.search("MedicationRequest", [("patient", pid), ("_count", "200")]),
        dispenses=visit.fhir.search("MedicationDispense", [("patient", pid), ("_count", "200")]),
    )
    if not parts["requests"].ok:
        raise RecordUnavailable("MedicationRequest")  # without the prescriptions there is no page
    fills = parts["dispenses"].value if parts["dispenses"].ok else None
    clock = visit.portal.clock
    return prescriptions(parts["requests"].value or [], fills, set(me_refs(visit)), clock.tz,
                         clock.formats(visit.locale))


async def _pharmacies(visit: Visit) -> list[Place]:
    found = await visit.fhir.search("Organization", [("type:text", "Pharmacy"), ("_count", "50")], all_pages=False)
    return pharmacies(found)


async def _one(visit: Visit, rx_id: str) -> Prescription:
    """One of the patient's current prescriptions (anything else, including another person's, is not found)."""
    if not is_fhir_id(rx_id):
        raise NotFound("MedicationRequest")
    found = next((p for p in await _prescriptions(visit) if p.id == rx_id), None)
    if found is None:
        raise NotFound("MedicationRequest")
    return found


async def medicines(visit: Visit) -> Response:
    shown = await _prescriptions(visit)
    asked = visit.request.query_params.get("asked", "")
    return visit.render("portal/medications.html", title=_l("Your medicines"), prescriptions=shown,
                        asked=asked if is_fhir_id(asked) else "")


# -- refills -----------------------------------------------------------------------------------------
def _note_too_long(locale: str) -> str:
    return gettext_in(locale, "Keep your note to %(max)s characters or fewer.") % {
        "max": number_text(NOTE_MAX_CHARS, locale)}


def _refill_errors(fields: dict[str, str], choices: list[Place], locale: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if fields.get("pharmacy", "") not in {p.reference for p in choices}:
        errors["pharmacy"] = [gettext_in(locale, "Choose the pharmacy that should fill your refill.")]
    if len(fields.get("note", "").strip()) > NOTE_MAX_CHARS:
        errors["note"] = [_note_too_long(locale)]
    return errors


def refill_body(patient_id: str, rx_id: str, pharmacy: str, note: str) -> dict[str, Any]:
    """What the portal asks the gateway to write; the gateway's rule copies the medicine, dose and supply
    from the prescription itself."""
    body: dict[str, Any] = {
        "resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
        "medicationCodeableConcept": {"text": "Refill of my prescription"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "basedOn": [{"reference": f"MedicationRequest/{rx_id}"}],
        "dispenseRequest": {"performer": {"reference": pharmacy}},
    }
    if note.strip():
        body["note"] = [{"text": note.strip()}]
    return body


async def _refill_page(visit: Visit, rx: Prescription, form: dict[str, str], errors: dict[str, list[str]],
                       submission: str, status: int = 200, choices: list[Place] | None = None) -> Response:
    choices = choices if choices is not None else await _pharmacies(visit)
    return visit.render("portal/medication_refill.html", status, title=_l("Ask for a refill"), rx=rx, form=form,
                        errors=errors, submission=submission, pharmacies=choices, note_max=NOTE_MAX_CHARS)


async def refill_form(visit: Visit) -> Response:
    rx = await _one(visit, visit.request.path_params["rx_id"])
    if not rx.can_refill:
        return RedirectResponse(f"{PAGE}#rx-{rx.id}", status_code=303)
    return await _refill_page(visit, rx, {"pharmacy": usual_pharmacy([rx]) or ""}, {}, new_submission())


async def refill_send(visit: Visit) -> Response:
    await visit.check_csrf()
    rx_id = visit.request.path_params["rx_id"]
    if not is_fhir_id(rx_id):
        raise NotFound("MedicationRequest")
    form = await visit.request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    submission = submission_of(fields)
    choices = await _pharmacies(visit)
    errors = _refill_errors(fields, choices, visit.portal.clock.formats(visit.locale))
    if not errors:
        # The gateway decides whether this prescription may be refilled (its owner, status, refills left):
        # a prescription that is not this patient's is "not found" there, and nothing is written.
        try:
            await visit.fhir.write("POST", "MedicationRequest",
                                   refill_body(visit.patient_id, rx_id, fields["pharmacy"], fields.get("note", "")),
                                   idempotency_key=f"refill-{submission}")
            return RedirectResponse(f"{PAGE}?asked={rx_id}#rx-{rx_id}", status_code=303)
        except WriteRefused as exc:
            errors["pharmacy" if "pharmacy" in exc.reason.lower() else "note"] = [_plain(exc, visit.locale)]
    return await _refill_page(visit, await _one(visit, rx_id), fields, errors, submission, 422, choices)


def _plain(exc: WriteRefused, locale: str) -> str:
    """Why the record refused a request, in words (the record's own reason is English only)."""
    if exc.status == 409:
        return gettext_in(locale, "Your request is still being sent. Please wait a moment, then look at your "
                                  "medicines.")
    return exc.reason if exc.reason.endswith(".") else exc.reason + "."


# -- renewals (a message to the care team) -------------------------------------------------------------
def renewal_text(rx: Prescription, note: str) -> str:
    med = rx.medicine
    lines = [f"Please renew my prescription for {med.name}. It has no refills left."]
    if med.dose_text:
        lines.append(f"I take it: {med.dose_text}.")
    if note.strip():
        lines.append(note.strip())
    return "\n\n".join(lines)


async def _renewal_page(visit: Visit, rx: Prescription, form: dict[str, str], errors: dict[str, list[str]],
                        submission: str, status: int = 200) -> Response:
    return visit.render("portal/medication_renewal.html", status, title=_l("Ask for a renewal"), rx=rx, form=form,
                        errors=errors, submission=submission, note_max=NOTE_MAX_CHARS)


async def renewal_form(visit: Visit) -> Response:
    rx = await _one(visit, visit.request.path_params["rx_id"])
    return await _renewal_page(visit, rx, {}, {}, new_submission())


async def renewal_send(visit: Visit) -> Response:
    await visit.check_csrf()
    rx = await _one(visit, visit.request.path_params["rx_id"])
    form = await visit.request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    submission = submission_of(fields)
    errors: dict[str, list[str]] = {}
    note = fields.get("note", "")
    if len(note.strip()) > NOTE_MAX_CHARS:
        errors["note"] = [_note_too_long(visit.portal.clock.formats(visit.locale))]
    if not errors:
        body = outgoing(patient_ref=f"Patient/{visit.patient_id}", recipient=TOPICS["medication"][1],
                        text=renewal_text(rx, note), submission=submission, topic="medication",
                        subject=f"Renewal of {rx.medicine.name}"[:120])
        written = await send_message(visit, body, submission, errors)
        if written is not None:
            return RedirectResponse(f"{PREFIX}/messages/{thread_id(written)}?sent=1", status_code=303)
        errors = {"note": [m for msgs in errors.values() for m in msgs]}  # the message's only field here
    return await _renewal_page(visit, rx, fields, errors, submission, 422)


def add_medication_routes(router: APIRouter, portal: Portal) -> None:
    router.get(PAGE, include_in_schema=False)(portal.page(medicines))
    router.get(PAGE + "/{rx_id}/refill", include_in_schema=False)(portal.page(refill_form))
    router.post(PAGE + "/{rx_id}/refill", include_in_schema=False)(portal.page(refill_send))
    router.get(PAGE + "/{rx_id}/renewal", include_in_schema=False)(portal.page(renewal_form))
    router.post(PAGE + "/{rx_id}/renewal", include_in_schema=False)(portal.page(renewal_send))
