"""Your profile: contact details, language, how to reach you and emergency contacts (a Patient update),
insurance cards (shown; a change is a request to the front desk, sent as a message), allergies you report
(an unconfirmed AllergyIntolerance), and links to the sign-in pages that manage passwords and second steps.

Every change is a write through the gateway, whose rules decide what is allowed. Each form carries a
one-off submission id (the request's Idempotency-Key, so a form sent twice writes once); the contact form
also carries the version of the record it was opened on and saves with `If-Match`, so a record that
changed meanwhile (at the front desk, in another tab) is shown again, never silently overwritten.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from redis.exceptions import RedisError

from mappers.allergies import allergy
from mappers.allergy_report import allergy_errors, kinds_in, reported_allergy
from mappers.coverage import CHANGES, HOLDERS, SUBJECT, coverage_cards, insurance_errors, insurance_request_text
from mappers.coverage import in_words as coverage_words
from mappers.messages import TOPICS, outgoing, thread_id
from mappers.notices import CHOOSABLE, notice_email_problem
from mappers.profile import (
    CONTACT_WAYS,
    EMERGENCY_SLOTS,
    FORM_LABELS,
    LANGUAGES,
    PHONE_KINDS,
    US_STATES,
    changed_meanwhile,
    contact_details,
    in_words,
    patient_with_profile,
    profile_errors,
    profile_form,
)
from mappers.validation import is_fhir_id
from web.i18n import gettext

from ..core import PREFIX, FormExpired, Portal, Visit
from ..fhir import WriteRefused
from ..sections import load_sections
from .messages import new_submission, plain_refusal, read_attachment, read_form, submission_of

VERSION = re.compile(r"[A-Za-z0-9.\-]{1,64}")
BILLING_TEAM = TOPICS["billing"][1]  # the front desk and billing staff read insurance requests


def _version(resource: dict[str, Any]) -> str:
    return str((resource.get("meta") or {}).get("versionId") or "")


async def _patient(visit: Visit) -> dict[str, Any]:
    return await visit.fhir.read("Patient", visit.patient_id)


def _mine(visit: Visit) -> set[str]:
    return {f"Patient/{visit.patient_id}", visit.session.fhir_user}


async def overview(visit: Visit) -> Response:
    parts = await load_sections(
        patient=_patient(visit),
        # Every page of both: an allergy or a card cut off by the EHR's page size would simply be missing here.
        coverage=visit.fhir.search("Coverage", [("beneficiary", f"Patient/{visit.patient_id}")]),
        allergies=visit.fhir.search("AllergyIntolerance", [("patient", visit.patient_id)]),
    )
    clock, mine = visit.portal.clock, _mine(visit)
    formats = clock.formats(visit.locale)
    allergies = []
    for resource in parts["allergies"].value or []:
        verification = {c.get("code") for c in (resource.get("verificationStatus") or {}).get("coding") or []}
        if verification & {"entered-in-error", "refuted"}:
            continue
        reported = (resource.get("recorder") or {}).get("reference") in mine
        allergies.append((allergy(resource, clock.tz, formats), reported))
    query = visit.request.query_params
    thread = query.get("thread", "")
    try:
        notice_email, off = await visit.portal.deps.accounts.notice_choices(visit.session.account_id)
        notice_kinds: list[Any] | None = [(kind, kind.name not in off) for kind in CHOOSABLE]
    except (RedisError, OSError):  # the rest of the page does not depend on it
        notice_email, notice_kinds = None, None
    return visit.render(
        "portal/profile.html", title=gettext("Your profile"), parts=parts,
        details=contact_details(parts["patient"].value, visit.locale) if parts["patient"].ok else None,
        cards=coverage_cards(parts["coverage"].value or [], clock.today(), clock.tz, formats),
        allergies=allergies, saved=query.get("saved", ""), thread=thread if is_fhir_id(thread) else "",
        notice_kinds=notice_kinds, notice_email=notice_email or "",
        notice_error=notice_email_problem("x", visit.locale) if query.get("notices") == "bad-email" else None)


# -- notices -------------------------------------------------------------------------------------------
async def save_notices(visit: Visit) -> Response:
    """Which notices the person gets (ticked = on). Kept with the account: it is not clinical. Security
    notices (a new device, changed sign-in settings) are not on the form: they always go out."""
    await visit.check_csrf()
    fields = await visit.request.form()
    email = str(fields.get("notice_email") or "").strip()
    if notice_email_problem(email):
        return RedirectResponse(f"{PREFIX}/profile?notices=bad-email#notices", status_code=303)
    on = set(fields.getlist("on"))
    off = {kind.name for kind in CHOOSABLE if kind.name not in on}
    await visit.portal.deps.accounts.set_notice_choices(visit.session.account_id, email, off)
    return RedirectResponse(f"{PREFIX}/profile?saved=notices#notices", status_code=303)


# -- contact details --------------------------------------------------------------------------------
def _contact_page(visit: Visit, form: dict[str, str], errors: dict[str, list[str]], submission: str, version: str,
                  status: int = 200, on_file: dict[str, str] | None = None) -> Response:
    lang = visit.locale
    return visit.render("portal/profile_contact.html", status, title=gettext("Change your contact details"),
                        form=form, errors=errors, submission=submission, version=version,
                        languages=in_words(LANGUAGES, lang), ways=in_words(CONTACT_WAYS, lang),
                        phone_kinds=in_words(PHONE_KINDS, lang), states=sorted(US_STATES),
                        slots=range(EMERGENCY_SLOTS), on_file=on_file, labels=in_words(FORM_LABELS, lang))


async def contact_form(visit: Visit) -> Response:
    patient = await _patient(visit)
    return _contact_page(visit, profile_form(patient), {}, new_submission(), _version(patient))


async def save_contact(visit: Visit) -> Response:
    await visit.check_csrf()
    fields, _ = await read_form(visit)
    submission = submission_of(fields)
    version = fields.get("version", "")
    if not VERSION.fullmatch(version):
        raise FormExpired()
    errors = profile_errors(fields, visit.locale)
    if errors:
        return _contact_page(visit, fields, errors, submission, version, 422)
    current = await _patient(visit)
    try:
        await visit.fhir.write("PUT", f"Patient/{visit.patient_id}", patient_with_profile(current, fields),
                               idempotency_key=f"profile-{submission}", if_match=f'W/"{version}"')
    except WriteRefused as exc:
        if exc.status in (409, 412):
            # Changed since this form was opened: show what is on file now beside what was typed, and let the
            # person save again knowingly (the form now carries the new version).
            fresh = await _patient(visit)
            return _contact_page(visit, fields, {}, new_submission(), _version(fresh), 409,
                                 on_file=changed_meanwhile(fields, profile_form(fresh), visit.locale))
        return _contact_page(visit, fields, {"form": [plain_refusal(exc)]}, submission, version, 422)
    return RedirectResponse(f"{PREFIX}/profile?saved=contact", status_code=303)


# -- insurance -----------------------------------------------------------------------------------------
def _insurance_page(visit: Visit, form: dict[str, str], errors: dict[str, list[str]], submission: str,
                    status: int = 200) -> Response:
    return visit.render("portal/profile_insurance.html", status, title=gettext("Add or change insurance"), form=form,
                        errors=errors, submission=submission, changes=coverage_words(CHANGES, visit.locale),
                        holders=coverage_words(HOLDERS, visit.locale))


async def insurance_form(visit: Visit) -> Response:
    asked = visit.request.query_params.get("change", "")
    return _insurance_page(visit, {"change": asked if asked in CHANGES else "", "holder": "self"}, {},
                           new_submission())


async def send_insurance(visit: Visit) -> Response:
    await visit.check_csrf()
    fields, upload = await read_form(visit)
    submission = submission_of(fields)
    errors = insurance_errors(fields, visit.portal.clock.today(), visit.locale)
    attachment = await read_attachment(upload, errors)
    if not errors:
        body = outgoing(patient_ref=f"Patient/{visit.patient_id}", recipient=BILLING_TEAM,
                        text=insurance_request_text(fields), submission=submission, topic="billing",
                        subject=SUBJECT, attachment=attachment)
        try:
            written = await visit.fhir.write("POST", "Communication", body,
                                             idempotency_key=f"insurance-{submission}")
        except WriteRefused as exc:
            errors["file" if "file" in exc.reason.lower() else "form"] = [plain_refusal(exc)]
        else:
            return RedirectResponse(f"{PREFIX}/profile?saved=insurance&thread={thread_id(written)}#insurance",
                                    status_code=303)
    return _insurance_page(visit, fields, errors, submission, 422)


# -- allergies -----------------------------------------------------------------------------------------
def _allergy_page(visit: Visit, form: dict[str, str], errors: dict[str, list[str]], submission: str,
                  status: int = 200) -> Response:
    return visit.render("portal/profile_allergy.html", status, title=gettext("Tell us about an allergy"), form=form,
                        errors=errors, submission=submission, kinds=kinds_in(visit.locale),
                        today=visit.portal.clock.today())


async def allergy_form(visit: Visit) -> Response:
    return _allergy_page(visit, {}, {}, new_submission())


async def report_allergy(visit: Visit) -> Response:
    await visit.check_csrf()
    fields, _ = await read_form(visit)
    submission = submission_of(fields)
    patient = await _patient(visit)
    errors = allergy_errors(fields, visit.portal.clock.today(), patient.get("birthDate"), visit.locale)
    if not errors:
        body = reported_allergy(fields, patient_ref=f"Patient/{visit.patient_id}",
                                reporter_ref=visit.session.fhir_user, submission=submission)
        try:
            await visit.fhir.write("POST", "AllergyIntolerance", body, idempotency_key=f"allergy-{submission}")
        except WriteRefused as exc:
            errors["form"] = [plain_refusal(exc)]
        else:
            return RedirectResponse(f"{PREFIX}/profile?saved=allergy#allergies", status_code=303)
    return _allergy_page(visit, fields, errors, submission, 422)


def add_profile_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/profile", include_in_schema=False)(portal.page(overview))
    router.get(f"{PREFIX}/profile/contact", include_in_schema=False)(portal.page(contact_form))
    router.post(f"{PREFIX}/profile/contact", include_in_schema=False)(portal.page(save_contact))
    router.get(f"{PREFIX}/profile/insurance", include_in_schema=False)(portal.page(insurance_form))
    router.post(f"{PREFIX}/profile/insurance", include_in_schema=False)(portal.page(send_insurance))
    router.get(f"{PREFIX}/profile/allergies/new", include_in_schema=False)(portal.page(allergy_form))
    router.post(f"{PREFIX}/profile/allergies", include_in_schema=False)(portal.page(report_allergy))
    router.post(f"{PREFIX}/profile/notices", include_in_schema=False)(portal.page(save_notices))
