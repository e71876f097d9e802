"""Enrolment: invitation link → identity check → username/password → second factor → recovery codes.

Caregiver invitations follow the same path; their identity check is the e-mail address the patient
invited, and a signed-in account (a caregiver for someone else, or a patient) can accept instead of
creating a new one.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from .context import Ctx
from .factors import send_code, valid_contact
from .identity import display_name, identity_matches
from .mfa import new_recovery_codes, new_totp_secret, provisioning_uri, qr_data_uri, totp_step
from .models import AccountRecord, Invitation
from .passwords import password_problems
from .sessions import PreSession
from .store import UsernameTaken

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$")
FLOW = "enroll"
GENERIC_MISMATCH = "The details you entered do not match our records. Please check them and try again."
INVALID_LINK = (
    "This enrolment link cannot be used. It may have expired, already been used, or been locked after too many "
    "attempts. Please ask the clinic (or the person who invited you) for a new invitation."
)


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def username_problems(username: str) -> list[str]:
    if not USERNAME_RE.match(username):
        return ["Use 3 to 64 letters, digits, dots, dashes, underscores or @, starting with a letter or digit."]
    return []


def add_enrolment_routes(router: APIRouter, ctx: Ctx) -> None:
    async def load(request: Request) -> tuple[PreSession, dict[str, Any] | None, Invitation | None]:
        pre = await ctx.sessions.presession(request)
        flow = pre.flows.get(FLOW)
        invitation = await ctx.store.get_invitation(flow["invitation_id"]) if flow else None
        if not ctx.store.invitation_usable(invitation):
            return pre, None, None
        return pre, flow, invitation

    def invalid(request: Request) -> Response:
        return ctx.message(request, "Enrolment link not valid", INVALID_LINK, 400)

    async def csrf_ok(request: Request, pre: PreSession, form: Any) -> bool:
        return ctx.sessions.verify_csrf(request, pre, _field(form, "csrf_token"))

    def csrf_failed(request: Request) -> Response:
        return ctx.message(
            request, "Form expired", "This form has expired. Please go back, reload the page and try again.", 400
        )

    def identity_page(request: Request, pre: PreSession, invitation: Invitation, error: str | None = None,
                      status: int = 200) -> Response:
        return ctx.sessions.attach(
            ctx.render(request, "enroll_identity.html", status, session=pre, kind=invitation.kind, error=error), pre
        )

    @router.get("/auth/enroll", name="accounts_enroll")
    async def enroll_start(request: Request, code: str = "") -> Response:
        pre = await ctx.sessions.presession(request)
        invitation = await ctx.store.invitation_by_code(code) if code else None
        if invitation is None or not ctx.store.invitation_usable(invitation):
            return ctx.sessions.attach(invalid(request), pre)
        pre.flows[FLOW] = {"invitation_id": invitation.id, "verified": False}
        await ctx.sessions.save_presession(pre)
        return identity_page(request, pre, invitation)

    @router.post("/auth/enroll/verify")
    async def enroll_verify(request: Request) -> Response:
        form = await request.form()
        pre, flow, invitation = await load(request)
        if flow is None or invitation is None:
            return invalid(request)
        if not await csrf_ok(request, pre, form):
            return csrf_failed(request)
        display: str | None = None
        if invitation.kind == "patient":
            patient = await ctx.ehr_read("Patient", invitation.patient_id)
            ok = identity_matches(
                patient,
                birth_date=_field(form, "birth_date"),
                mrn=_field(form, "mrn"),
                ssn_last4=_field(form, "ssn_last4"),
            )
            display = display_name(patient) if ok else None
        else:
            ok = bool(invitation.email) and _field(form, "email").casefold() == (invitation.email or "").casefold()
        if not ok:
            await ctx.audit(request, "enrolment.identity", "failure", patient_id=invitation.patient_id,
                            detail=f"invitation={invitation.id}")
            if await ctx.store.invitation_failed_attempt(invitation, ctx.settings.invitation_max_attempts):
                await ctx.audit(request, "enrolment.locked", "failure", patient_id=invitation.patient_id,
                                detail=f"invitation={invitation.id}")
                pre.flows.pop(FLOW, None)
                await ctx.sessions.save_presession(pre)
                return ctx.message(
                    request,
                    "Invitation locked",
                    "Too many attempts. For your security this invitation is now locked. "
                    "Please contact the clinic for a new one.",
                    403,
                )
            return identity_page(request, pre, invitation, GENERIC_MISMATCH, 400)
        flow["verified"] = True
        flow["display_name"] = display
        await ctx.sessions.save_presession(pre)
        if invitation.kind == "caregiver" and await ctx.sessions.current(request) is not None:
            return RedirectResponse("/auth/enroll/accept", status_code=303)
        return RedirectResponse("/auth/enroll/account", status_code=303)

    def account_page(request: Request, pre: PreSession, status: int = 200, **ctxt: Any) -> Response:
        return ctx.render(request, "enroll_account.html", status, session=pre, **ctxt)

    @router.get("/auth/enroll/account")
    async def enroll_account_form(request: Request) -> Response:
        pre, flow, _ = await load(request)
        if flow is None or not flow.get("verified"):
            return invalid(request)
        return account_page(request, pre, username=flow.get("username", ""), errors={})

    @router.post("/auth/enroll/account")
    async def enroll_account(request: Request) -> Response:
        form = await request.form()
        pre, flow, _ = await load(request)
        if flow is None or not flow.get("verified"):
            return invalid(request)
        if not await csrf_ok(request, pre, form):
            return csrf_failed(request)
        username = _field(form, "username")
        password = form.get("password") if isinstance(form.get("password"), str) else ""
        confirm = form.get("password_confirm") if isinstance(form.get("password_confirm"), str) else ""
        errors: dict[str, list[str]] = {}
        user_problems = username_problems(username)
        if not user_problems and not await ctx.store.username_available(username):
            user_problems = ["That username is taken. Please choose another."]
        if user_problems:
            errors["username"] = user_problems
        pw_problems = [p.message for p in password_problems(str(password), username)]
        if pw_problems:
            errors["password"] = pw_problems
        elif password != confirm:
            errors["password_confirm"] = ["The two passwords do not match."]
        if errors:
            return account_page(request, pre, 400, username=username, errors=errors)
        flow["username"] = username
        flow["password_hash"] = ctx.hashing.hash(str(password))
        await ctx.sessions.save_presession(pre)
        return RedirectResponse("/auth/enroll/mfa", status_code=303)

    async def load_ready(request: Request) -> tuple[PreSession, dict[str, Any] | None, Invitation | None]:
        pre, flow, invitation = await load(request)
        if flow is None or not flow.get("verified") or not flow.get("password_hash"):
            return pre, None, None
        return pre, flow, invitation

    @router.get("/auth/enroll/mfa")
    async def enroll_mfa(request: Request) -> Response:
        pre, flow, invitation = await load_ready(request)
        if flow is None or invitation is None:
            return invalid(request)
        return ctx.render(request, "enroll_mfa.html", session=pre, email=invitation.email or "",
                          phone=invitation.phone or "", errors={})

    def totp_page(request: Request, pre: PreSession, flow: dict[str, Any], status: int = 200,
                  error: str | None = None) -> Response:
        secret = ctx.store.box.unseal(flow["totp_sealed"])
        uri = provisioning_uri(secret, flow["username"], ctx.settings.totp_issuer)
        return ctx.render(request, "enroll_totp.html", status, session=pre, secret=secret, uri=uri,
                          qr=qr_data_uri(uri), error=error)

    @router.get("/auth/enroll/totp")
    async def enroll_totp_form(request: Request) -> Response:
        pre, flow, _ = await load_ready(request)
        if flow is None:
            return invalid(request)
        if not flow.get("totp_sealed"):
            flow["totp_sealed"] = ctx.store.box.seal(new_totp_secret())
            await ctx.sessions.save_presession(pre)
        return totp_page(request, pre, flow)

    @router.post("/auth/enroll/totp")
    async def enroll_totp(request: Request) -> Response:
        form = await request.form()
        pre, flow, invitation = await load_ready(request)
        if flow is None or invitation is None or not flow.get("totp_sealed"):
            return invalid(request)
        if not await csrf_ok(request, pre, form):
            return csrf_failed(request)
        secret = ctx.store.box.unseal(flow["totp_sealed"])
        if totp_step(secret, _field(form, "code"), ctx.now()) is None:
            return totp_page(request, pre, flow, 400, "That code did not work. Enter the 6-digit code your app "
                                                      "shows now (check the phone's clock if it keeps failing).")
        return await finish(request, pre, flow, invitation, method="totp", sealed=flow["totp_sealed"], contact=None)

    @router.post("/auth/enroll/otp/send")
    async def enroll_otp_send(request: Request) -> Response:
        form = await request.form()
        pre, flow, invitation = await load_ready(request)
        if flow is None or invitation is None:
            return invalid(request)
        if not await csrf_ok(request, pre, form):
            return csrf_failed(request)
        channel = _field(form, "channel")
        address = _field(form, "address")
        if not valid_contact(channel, address):
            return ctx.render(request, "enroll_mfa.html", 400, session=pre, email=invitation.email or "",
                              phone=invitation.phone or "",
                              errors={"address": ["Enter a valid e-mail address or mobile number."]})
        flow["otp_channel"] = channel
        flow["otp_address"] = address
        await ctx.sessions.save_presession(pre)
        await send_code(ctx, f"enroll:{pre.id}", channel, address, "enrolment")
        return ctx.render(request, "enroll_otp.html", session=pre, channel=channel, error=None)

    @router.post("/auth/enroll/otp/confirm")
    async def enroll_otp_confirm(request: Request) -> Response:
        form = await request.form()
        pre, flow, invitation = await load_ready(request)
        if flow is None or invitation is None or not flow.get("otp_channel"):
            return invalid(request)
        if not await csrf_ok(request, pre, form):
            return csrf_failed(request)
        slot = f"enroll:{pre.id}"
        if not await ctx.store.check_otp(slot, _field(form, "code"), ctx.settings.otp_max_attempts):
            return ctx.render(request, "enroll_otp.html", 400, session=pre, channel=flow["otp_channel"],
                              error="That code is not right or has expired. Check it, or go back and send a new one.")
        return await finish(request, pre, flow, invitation, method=flow["otp_channel"], sealed=None,
                            contact=flow["otp_address"])

    async def finish(
        request: Request,
        pre: PreSession,
        flow: dict[str, Any],
        invitation: Invitation,
        *,
        method: str,
        sealed: str | None,
        contact: str | None,
    ) -> Response:
        link = await ctx.store.get_proxy(invitation.proxy_link_id) if invitation.proxy_link_id else None
        if invitation.kind == "caregiver" and (link is None or link.status != "invited"):
            return invalid(request)
        if invitation.kind == "patient":
            kind, fhir_user, patient_id = "patient", f"Patient/{invitation.patient_id}", invitation.patient_id
        else:
            kind, fhir_user, patient_id = "caregiver", f"RelatedPerson/{link.related_person_id}", None  # type: ignore[union-attr]
        record = AccountRecord(
            id="",
            username=flow["username"],
            kind=kind,  # type: ignore[arg-type]
            fhir_user=fhir_user,
            patient_id=patient_id,
            password_hash=flow["password_hash"],
            mfa_method=method,  # type: ignore[arg-type]
            totp_secret_sealed=sealed,
            contact=contact,
            display_name=flow.get("display_name"),
        )
        if not await ctx.store.username_available(record.username):
            flow.pop("password_hash", None)
            await ctx.sessions.save_presession(pre)
            return account_page(request, pre, 409, username=record.username,
                                errors={"username": ["That username was just taken. Please choose another."]})
        # Audit first: an enrolment that cannot be recorded does not happen.
        await ctx.audit(request, "enrolment", "success", fhir_user=fhir_user, patient_id=invitation.patient_id,
                        detail=f"kind={kind}")
        await ctx.audit(request, "mfa.setup", "success", fhir_user=fhir_user, detail=f"method={method}")
        if not await ctx.store.consume_invitation(invitation):
            return invalid(request)
        try:
            record = await ctx.store.create(record)
        except UsernameTaken:
            return account_page(request, pre, 409, username=record.username,
                                errors={"username": ["That username was just taken. Please choose another."]})
        if link is not None:
            link.caregiver_account_id = record.id
            link.status = "active"
            await ctx.store.save_proxy(link)
        codes = new_recovery_codes(ctx.settings.recovery_code_count)
        await ctx.store.set_recovery_codes(record.id, codes)
        pre.flows.pop(FLOW, None)
        await ctx.sessions.save_presession(pre)
        return ctx.render(request, "recovery_codes.html", session=pre, codes=codes, username=record.username,
                          enrolled=True)

    @router.get("/auth/enroll/accept")
    async def enroll_accept_form(request: Request) -> Response:
        session = await ctx.sessions.current(request)
        _, flow, invitation = await load(request)
        if flow is None or invitation is None or invitation.kind != "caregiver" or not flow.get("verified"):
            return invalid(request)
        if session is None:
            return RedirectResponse("/auth/enroll/account", status_code=303)
        return ctx.render(request, "enroll_accept.html", session=session, username=session.account.username,
                          staff=session.account.kind == "staff")

    @router.post("/auth/enroll/accept")
    async def enroll_accept(request: Request) -> Response:
        form = await request.form()
        session = await ctx.sessions.current(request)
        pre, flow, invitation = await load(request)
        if flow is None or invitation is None or invitation.kind != "caregiver" or not flow.get("verified"):
            return invalid(request)
        if session is None or session.account.kind == "staff":
            return RedirectResponse("/auth/enroll/account", status_code=303)
        if not ctx.sessions.verify_csrf(request, session, _field(form, "csrf_token")):
            return csrf_failed(request)
        link = await ctx.store.get_proxy(invitation.proxy_link_id or "")
        if link is None or link.status != "invited":
            return invalid(request)
        await ctx.audit(request, "proxy.accept", "success", account_id=session.account.id,
                        fhir_user=session.account.fhir_user, patient_id=link.patient_id,
                        detail=f"related_person={link.related_person_id}")
        if not await ctx.store.consume_invitation(invitation):
            return invalid(request)
        link.caregiver_account_id = session.account.id
        link.status = "active"
        await ctx.store.save_proxy(link)
        pre.flows.pop(FLOW, None)
        await ctx.sessions.save_presession(pre)
        return ctx.message(request, "Access added",
                           "You can now see this person's record from your account.", 200,
                           link_href="/portal/", link_text="Go to the portal")
