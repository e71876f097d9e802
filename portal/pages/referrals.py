"""Referrals: the patient's referrals to specialists and their status, and asking for a new one.

A request is a ServiceRequest with `intent=proposal` written through the gateway's referral rule (the
patient's own record, `status=active`, a practice from the referral catalogue); the care team turns it
into a referral (an order based on it) or declines it with a reason. The form's one-off submission id
is both the request's identifier and its Idempotency-Key, so a form sent twice asks once. The page is in
the reader's language; what is written into the record (the specialty's name) stays English.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from locales import gettext_in
from mappers.catalogue import Place, specialists
from mappers.inbound import NOTE_MAX_CHARS, REFERRAL_IDENTIFIER_SYSTEM, REFERRAL_REASON_MAX
from mappers.quantities import number_text
from mappers.referrals import referrals
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, Portal, Visit
from ..fhir import WriteRefused
from .messages import me_refs, new_submission, submission_of

PAGE = f"{PREFIX}/referrals"


async def _practices(visit: Visit) -> list[Place]:
    found = await visit.fhir.search("Organization", [("active", "true"), ("_count", "100")], all_pages=False)
    return specialists(found)


async def overview(visit: Visit) -> Response:
    found = await visit.fhir.search("ServiceRequest", [("patient", visit.patient_id), ("_count", "100")])
    clock = visit.portal.clock
    shown = referrals(found, set(me_refs(visit)), clock.tz, clock.formats(visit.locale))
    return visit.render("portal/referrals.html", title=_l("Referrals"), referrals=shown,
                        asked=visit.request.query_params.get("asked") == "1")


def referral_errors(fields: dict[str, str], choices: list[Place], locale: str) -> dict[str, list[str]]:
    """Field-level problems with the form, in `locale` (its numbers written that locale's way)."""
    errors: dict[str, list[str]] = {}
    if fields.get("practice", "") not in {p.reference for p in choices}:
        errors["practice"] = [gettext_in(locale, "Choose the kind of specialist you would like to see.")]
    reason = fields.get("reason", "").strip()
    if not reason:
        errors["reason"] = [gettext_in(locale, "Tell us in a few words why you would like to see a specialist.")]
    elif len(reason) > REFERRAL_REASON_MAX:
        errors["reason"] = [gettext_in(locale, "Keep this to %(max)s characters or fewer.")
                            % {"max": number_text(REFERRAL_REASON_MAX, locale)}]
    if len(fields.get("note", "").strip()) > NOTE_MAX_CHARS:
        errors["note"] = [gettext_in(locale, "Keep your note to %(max)s characters or fewer.")
                          % {"max": number_text(NOTE_MAX_CHARS, locale)}]
    return errors


def referral_body(patient_id: str, practice: Place, reason: str, note: str, submission: str) -> dict[str, Any]:
    """What the portal asks the gateway to write (the rule shapes the rest)."""
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
        "identifier": [{"system": REFERRAL_IDENTIFIER_SYSTEM, "value": submission}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "performerType": practice.specialty.concept if practice.specialty else {},
        "performer": [{"reference": practice.reference}],
        "reasonCode": [{"text": reason.strip()}],
    }
    if note.strip():
        body["note"] = [{"text": note.strip()}]
    return body


def _form_page(visit: Visit, choices: list[Place], form: dict[str, str], errors: dict[str, list[str]],
               submission: str, status: int = 200) -> Response:
    # Each practice's specialty in the reader's words (the Place keeps the English the record is written in).
    words = {p.reference: gettext_in(visit.locale, p.specialty.words) if p.specialty else p.name for p in choices}
    return visit.render("portal/referral_new.html", status, title=_l("Ask for a referral"), practices=choices,
                        specialty_words=words, form=form, errors=errors, submission=submission,
                        reason_max=REFERRAL_REASON_MAX, note_max=NOTE_MAX_CHARS)


async def new_form(visit: Visit) -> Response:
    return _form_page(visit, await _practices(visit), {}, {}, new_submission())


async def send(visit: Visit) -> Response:
    await visit.check_csrf()
    form = await visit.request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    submission = submission_of(fields)
    choices = await _practices(visit)
    errors = referral_errors(fields, choices, visit.portal.clock.formats(visit.locale))
    if not errors:
        practice = next(p for p in choices if p.reference == fields["practice"])
        body = referral_body(visit.patient_id, practice, fields["reason"], fields.get("note", ""), submission)
        try:
            await visit.fhir.write("POST", "ServiceRequest", body, idempotency_key=f"referral-{submission}")
            return RedirectResponse(f"{PAGE}?asked=1", status_code=303)
        except WriteRefused as exc:
            field = "practice" if "practice" in exc.reason.lower() or "specialty" in exc.reason.lower() else "reason"
            errors[field] = [exc.reason if exc.reason.endswith(".") else exc.reason + "."]
    return _form_page(visit, choices, fields, errors, submission, 422)


def add_referral_routes(router: APIRouter, portal: Portal) -> None:
    router.get(PAGE, include_in_schema=False)(portal.page(overview))
    router.get(PAGE + "/new", include_in_schema=False)(portal.page(new_form))
    router.post(PAGE, include_in_schema=False)(portal.page(send))
