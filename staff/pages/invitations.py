"""/portal/staff/invitations: invite a patient to the portal (an e-mail with a one-time link, or a printed
letter with a code), see who was invited, who enrolled and who is locked out, and reset a patient's second
factor after checking their identity.

Front desk and clinicians work this page (they see patients at the desk or with the chart open); the
accounts service (`smart_auth.accounts.staff_invitations`) checks the role again and records every action.
The patient is always read through the gateway first, so the care-team rule and the access log apply to
inviting exactly as to opening the chart.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from mappers.portal_access import DELIVERY_WORDS, FACTOR_WORDS, STATUS_WORDS, day_of, patient_facts
from mappers.validation import is_fhir_id
from smart_auth.accounts.staff_invitations import (
    IdentityNotConfirmed,
    InvalidAddress,
    NoPortalAccount,
    PatientUnknown,
    StaffActionRefused,
    StaffInvitations,
    StaffMember,
)

from ..core import StaffArea, StaffVisit, WrongRole
from ..settings import PREFIX

PAGE = f"{PREFIX}/invitations"
NOTICES = {
    "sent": "The invitation e-mail is on its way. The link works once, for 7 days.",
    "reset": "Done. The patient now gets a code by e-mail when they sign in; their old authenticator app and "
             "recovery codes no longer work, and every sign-in of theirs has ended.",
}


def _member(visit: StaffVisit) -> StaffMember:
    return StaffMember(visit.practitioner, visit.role, visit.session.account_id)


async def _form(visit: StaffVisit) -> dict[str, str]:
    await visit.check_csrf()
    return {k: v.strip() for k, v in (await visit.request.form()).items() if isinstance(v, str)}


def add_invitation_routes(router: APIRouter, area: StaffArea, service: StaffInvitations) -> None:
    tz = ZoneInfo(area.settings.timezone)

    def when(epoch: float) -> str:
        return day_of(epoch, tz)

    async def patient_of(visit: StaffVisit, patient_id: str) -> dict[str, Any]:
        if not is_fhir_id(patient_id):
            raise PatientUnknown(patient_id)
        return await visit.fhir.read("Patient", patient_id)  # the gateway decides; the access log records it

    async def page(visit: StaffVisit, patient_id: str = "", status: int = 200, **extra: Any) -> Response:
        facts = patient_facts(await patient_of(visit, patient_id)) if patient_id else None
        overview = (await service.overview(patient_id) if patient_id else
                    await service.overview(among=await service.care_team_patients(_member(visit))))
        extra.setdefault("email", facts.email if facts else "")
        return visit.render("staff/invitations.html", status, title="Portal invitations", patient=facts,
                            overview=overview, status_words=STATUS_WORDS, delivery_words=DELIVERY_WORDS,
                            factor_words=FACTOR_WORDS, when=when,
                            notice=NOTICES.get(visit.request.query_params.get("done", "")), **extra)

    async def show(visit: StaffVisit) -> Response:
        return await page(visit, visit.request.query_params.get("patient", "").strip())

    async def invite(visit: StaffVisit) -> Response:
        form = await _form(visit)
        patient_id, delivery = form.get("patient", ""), form.get("delivery", "")
        patient = await patient_of(visit, patient_id)
        if delivery not in ("email", "letter"):
            return await page(visit, patient_id, 400, errors={"delivery": "Choose e-mail or a printed letter."},
                              email=form.get("email", ""))
        try:
            issued = await service.invite(visit.request, _member(visit), patient_id, delivery=delivery,  # type: ignore[arg-type]
                                          email=form.get("email"))
        except InvalidAddress:
            return await page(visit, patient_id, 400, errors={"email": "Enter the patient's e-mail address, like "
                                                                        "name@example.com."},
                              email=form.get("email", ""), delivery="email")
        except StaffActionRefused as exc:
            raise WrongRole("invitations") from exc
        if delivery == "email":
            return RedirectResponse(f"{PAGE}?patient={patient_id}&done=sent", status_code=303)
        # A letter is shown once, to print: the code is not kept anywhere it could be shown again.
        return visit.render("staff/invitation_letter.html", title="Invitation letter", patient=patient_facts(patient),
                            code=issued.code, enroll_page=issued.enroll_page,
                            expires_words=when(issued.invitation.expires_at))

    async def reset(visit: StaffVisit) -> Response:
        form = await _form(visit)
        patient_id = form.get("patient", "")
        await patient_of(visit, patient_id)
        kept = {"email": form.get("email", ""), "reset_email": form.get("reset_email", "")}
        try:
            await service.reset_second_factor(visit.request, _member(visit), patient_id,
                                              birth_date=form.get("birth_date", ""), mrn=form.get("mrn", ""),
                                              ssn_last4=form.get("ssn_last4", ""), email=form.get("reset_email", ""))
        except InvalidAddress:
            return await page(visit, patient_id, 400, reset_errors={
                "reset_email": "Enter the e-mail address the patient gave you."}, **kept)
        except IdentityNotConfirmed:
            return await page(visit, patient_id, 400, reset_errors={
                "identity": "These details do not match the chart. Nothing was changed. Check the patient's "
                            "photo ID and ask again."}, **kept)
        except NoPortalAccount:
            return await page(visit, patient_id, 400, reset_errors={
                "identity": "This patient has no portal account yet: invite them instead."}, **kept)
        except StaffActionRefused as exc:
            raise WrongRole("invitations") from exc
        return RedirectResponse(f"{PAGE}?patient={patient_id}&done=reset", status_code=303)

    async def guarded(fn: Any, visit: StaffVisit) -> Response:
        try:
            return await fn(visit)
        except PatientUnknown:
            return area.message(visit.request, "Page not found", "We could not find that record.", 404,
                                session=visit.session)

    async def show_page(visit: StaffVisit) -> Response:
        return await guarded(show, visit)

    async def invite_form(visit: StaffVisit) -> Response:
        return await guarded(invite, visit)

    async def reset_form(visit: StaffVisit) -> Response:
        return await guarded(reset, visit)

    router.get(PAGE, include_in_schema=False)(area.page(show_page, queue="invitations"))
    router.post(PAGE, include_in_schema=False)(area.page(invite_form, queue="invitations"))
    router.post(f"{PAGE}/reset-second-factor", include_in_schema=False)(area.page(reset_form, queue="invitations"))
