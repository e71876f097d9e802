"""Enrolment: invitation link → identity check → username/password → second factor → recovery codes.

Caregiver invitations follow the same path; their identity check is the e-mail address the patient
invited, and a signed-in account (a caregiver for someone else, or a patient) can accept instead of
creating a new one (`CaregiverAcceptance`).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from locales import N_
from web.i18n import gettext as _

from .context import PostedForm, posted_form
from .factors import send_code, valid_contact
from .flow import AccountsFlow
from .flow_state import ENROLMENT, EnrolmentState
from .identity import display_name, identity_matches
from .mfa import clean_code, new_recovery_codes, new_totp_secret, provisioning_uri, qr_data_uri, totp_step
from .models import AccountRecord, Invitation, ProxyLink
from .passwords import password_problems
from .sessions import PreSession
from .store import UsernameTaken

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$")
# English message ids, translated where a page shows them.
GENERIC_MISMATCH = N_("The details you entered do not match our records. Please check them and try again.")
INVALID_LINK = N_(
    "This enrolment link cannot be used. It may have expired, already been used, or been locked after too many "
    "attempts. Please ask the clinic (or the person who invited you) for a new invitation."
)
LOCKED_INVITATION = N_("Too many attempts. For your security this invitation is now locked. "
                       "Please contact the clinic for a new one.")
LETTER_CODE_WRONG = N_("That code does not work. Check it against your letter (letters and digits; dashes and "
                       "spaces do not matter). If it still does not work, the letter may have expired: please "
                       "ask the clinic for a new one.")
TAKEN = N_("That username was just taken. Please choose another.")


def username_problems(username: str) -> list[str]:
    """What is wrong with a chosen username, in the words of the request's language."""
    if not USERNAME_RE.match(username):
        return [_("Use 3 to 64 letters, numbers, dots, dashes, underscores (_) or @. Start with a letter or a "
                  "number.")]
    return []


class EnrolmentSteps(AccountsFlow):
    """What both enrolment classes share: the invitation behind the browser's enrolment state."""

    async def _state(self, request: Request) -> tuple[PreSession, EnrolmentState | None, Invitation | None]:
        pre = await self.ctx.sessions.presession(request)
        state = ENROLMENT.get(pre)
        invitation = await self.ctx.store.get_invitation(state.invitation_id) if state else None
        if not self.ctx.store.invitation_usable(invitation):
            return pre, None, None
        return pre, state, invitation

    def invalid(self, request: Request) -> Response:
        return self.ctx.message(request, _("Enrolment link not valid"), _(INVALID_LINK), 400)


class EnrolmentFlow(EnrolmentSteps):
    def add_routes(self, router: APIRouter) -> None:
        self.page(router, "/auth/enroll", self.start, name="accounts_enroll")
        self.form(router, "/auth/enroll/verify", self.verify_identity)
        self.page(router, "/auth/enroll/account", self.account_form)
        self.form(router, "/auth/enroll/account", self.choose_credentials)
        self.page(router, "/auth/enroll/mfa", self.factor_choice)
        self.page(router, "/auth/enroll/totp", self.totp_form)
        self.form(router, "/auth/enroll/totp", self.confirm_totp)
        self.form(router, "/auth/enroll/otp/send", self.send_otp)
        self.form(router, "/auth/enroll/otp/confirm", self.confirm_otp)

    # ---- pages ----------------------------------------------------------------------------------
    def _identity_page(self, request: Request, pre: PreSession, invitation: Invitation, error: str | None = None,
                       status: int = 200) -> Response:
        return self.ctx.render(request, "enroll_identity.html", status, session=pre, kind=invitation.kind,
                               error=error)

    def _account_page(self, request: Request, pre: PreSession, status: int = 200, **context: Any) -> Response:
        return self.ctx.render(request, "enroll_account.html", status, session=pre, **context)

    def _factor_page(self, request: Request, pre: PreSession, invitation: Invitation, status: int = 200,
                     errors: dict[str, list[str]] | None = None) -> Response:
        return self.ctx.render(request, "enroll_mfa.html", status, session=pre, email=invitation.email or "",
                               phone=invitation.phone or "", errors=errors or {})

    def _totp_page(self, request: Request, pre: PreSession, state: EnrolmentState, status: int = 200,
                   error: str | None = None) -> Response:
        secret = self.ctx.store.box.unseal(state.totp_sealed or "")
        uri = provisioning_uri(secret, state.username or "", self.ctx.settings.totp_issuer)
        return self.ctx.render(request, "enroll_totp.html", status, session=pre, secret=secret, uri=uri,
                               qr=qr_data_uri(uri), error=error)

    async def _ready(self, request: Request) -> tuple[PreSession, EnrolmentState | None, Invitation | None]:
        """The state once identity, username and password are settled (the second-factor steps)."""
        pre, state, invitation = await self._state(request)
        if state is None or not state.has_credentials:
            return pre, None, None
        return pre, state, invitation

    # ---- steps ----------------------------------------------------------------------------------
    async def start(self, request: Request, code: str = "") -> Response:
        ctx = self.ctx
        pre = await ctx.sessions.presession(request)
        if not code.strip():  # a printed letter: the person types its code here
            return ctx.render(request, "enroll_code.html", session=pre, error=None)
        invitation = await ctx.store.invitation_by_code(code[:128])
        if invitation is None or not ctx.store.invitation_usable(invitation):
            if len(clean_code(code)) <= 20:  # typed from a letter (link codes are longer): let them try again
                return ctx.render(request, "enroll_code.html", 400, session=pre, error=_(LETTER_CODE_WRONG))
            return self.invalid(request)
        await ENROLMENT.save(ctx.sessions, pre, EnrolmentState(invitation.id))
        return self._identity_page(request, pre, invitation)

    async def verify_identity(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre, state, invitation = await self._state(request)
        if state is None or invitation is None:
            return self.invalid(request)
        matched, display = await self._identity_matches(invitation, form)
        if not matched:
            await ctx.audit(request, "enrolment.identity", "failure", patient_id=invitation.patient_id,
                            detail=f"invitation={invitation.id}")
            if await ctx.store.invitation_failed_attempt(invitation, ctx.settings.invitation_max_attempts):
                await ctx.audit(request, "enrolment.locked", "failure", patient_id=invitation.patient_id,
                                detail=f"invitation={invitation.id}")
                await ENROLMENT.clear(ctx.sessions, pre)
                return ctx.message(request, _("Invitation locked"), _(LOCKED_INVITATION), 403)
            return self._identity_page(request, pre, invitation, _(GENERIC_MISMATCH), 400)
        state.identity_checked, state.display_name = True, display
        await ENROLMENT.save(ctx.sessions, pre, state)
        if invitation.kind == "caregiver" and await ctx.sessions.current(request) is not None:
            return RedirectResponse("/auth/enroll/accept", status_code=303)
        return RedirectResponse("/auth/enroll/account", status_code=303)

    async def _identity_matches(self, invitation: Invitation, form: PostedForm) -> tuple[bool, str | None]:
        """A patient proves date of birth + MRN or SSN digits; a caregiver the e-mail address invited."""
        if invitation.kind != "patient":
            email = (invitation.email or "").casefold()
            return bool(email) and form.text("email").casefold() == email, None
        patient = await self.ctx.ehr_read("Patient", invitation.patient_id)
        ok = identity_matches(patient, birth_date=form.text("birth_date"), mrn=form.text("mrn"),
                              ssn_last4=form.text("ssn_last4"))
        return ok, display_name(patient) if ok else None

    async def account_form(self, request: Request) -> Response:
        pre, state, _ = await self._state(request)
        if state is None or not state.identity_checked:
            return self.invalid(request)
        return self._account_page(request, pre, username=state.username or "", errors={})

    async def choose_credentials(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre, state, _ = await self._state(request)
        if state is None or not state.identity_checked:
            return self.invalid(request)
        username, password = form.text("username"), form.raw("password")
        errors: dict[str, list[str]] = {}
        user_problems = username_problems(username)
        if not user_problems and not await ctx.store.username_available(username):
            user_problems = [_("That username is taken. Please choose another.")]
        if user_problems:
            errors["username"] = user_problems
        pw_problems = [p.message for p in password_problems(password, username)]
        if pw_problems:
            errors["password"] = pw_problems
        elif password != form.raw("password_confirm"):
            errors["password_confirm"] = [_("The two passwords do not match.")]
        if errors:
            return self._account_page(request, pre, 400, username=username, errors=errors)
        state.username, state.password_hash = username, ctx.hashing.hash(password)
        await ENROLMENT.save(ctx.sessions, pre, state)
        return RedirectResponse("/auth/enroll/mfa", status_code=303)

    async def factor_choice(self, request: Request) -> Response:
        pre, state, invitation = await self._ready(request)
        if state is None or invitation is None:
            return self.invalid(request)
        return self._factor_page(request, pre, invitation)

    async def totp_form(self, request: Request) -> Response:
        pre, state, _ = await self._ready(request)
        if state is None:
            return self.invalid(request)
        if not state.totp_sealed:
            state.totp_sealed = self.ctx.store.box.seal(new_totp_secret())
            await ENROLMENT.save(self.ctx.sessions, pre, state)
        return self._totp_page(request, pre, state)

    async def confirm_totp(self, request: Request) -> Response:
        form = await posted_form(request)
        pre, state, invitation = await self._ready(request)
        if state is None or invitation is None or not state.totp_sealed:
            return self.invalid(request)
        secret = self.ctx.store.box.unseal(state.totp_sealed)
        if totp_step(secret, form.text("code"), self.ctx.now()) is None:
            return self._totp_page(request, pre, state, 400, _("That code did not work. Enter the 6-digit code your "
                                                                 "app shows now (check the phone's clock if it keeps "
                                                                 "failing)."))
        return await self._finish(request, pre, state, invitation, method="totp", contact=None)

    async def send_otp(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre, state, invitation = await self._ready(request)
        if state is None or invitation is None:
            return self.invalid(request)
        channel, address = form.text("channel"), form.text("address")
        if not valid_contact(channel, address):
            return self._factor_page(request, pre, invitation, 400,
                                     {"address": [_("Enter a valid e-mail address or mobile number.")]})
        state.otp_channel, state.otp_address = channel, address
        await ENROLMENT.save(ctx.sessions, pre, state)
        await send_code(ctx, f"enroll:{pre.id}", channel, address, "enrolment")
        return ctx.render(request, "enroll_otp.html", session=pre, channel=channel, error=None)

    async def confirm_otp(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre, state, invitation = await self._ready(request)
        if state is None or invitation is None or not state.otp_channel:
            return self.invalid(request)
        if not await ctx.store.check_otp(f"enroll:{pre.id}", form.text("code"), ctx.settings.otp_max_attempts):
            return ctx.render(request, "enroll_otp.html", 400, session=pre, channel=state.otp_channel,
                              error=_("That code is not right or has expired. Check it, or go back and send a new "
                                      "one."))
        return await self._finish(request, pre, state, invitation, method=state.otp_channel,
                                  contact=state.otp_address)

    async def _finish(self, request: Request, pre: PreSession, state: EnrolmentState, invitation: Invitation, *,
                      method: str, contact: str | None) -> Response:
        ctx = self.ctx
        link = await ctx.store.get_proxy(invitation.proxy_link_id) if invitation.proxy_link_id else None
        record = self._new_account(state, invitation, link, method=method, contact=contact)
        if record is None:
            return self.invalid(request)
        if not await ctx.store.username_available(record.username):
            state.password_hash = None
            await ENROLMENT.save(ctx.sessions, pre, state)
            return self._account_page(request, pre, 409, username=record.username, errors={"username": [_(TAKEN)]})
        # Audit first: an enrolment that cannot be recorded does not happen.
        await ctx.audit(request, "enrolment", "success", fhir_user=record.fhir_user,
                        patient_id=invitation.patient_id, detail=f"kind={record.kind}")
        await ctx.audit(request, "mfa.setup", "success", fhir_user=record.fhir_user, detail=f"method={method}")
        if not await ctx.store.consume_invitation(invitation):
            return self.invalid(request)
        try:
            record = await ctx.store.create(record)
        except UsernameTaken:
            return self._account_page(request, pre, 409, username=record.username, errors={"username": [_(TAKEN)]})
        if link is not None:
            link.caregiver_account_id, link.status = record.id, "active"
            await ctx.store.save_proxy(link)
        codes = new_recovery_codes(ctx.settings.recovery_code_count)
        await ctx.store.set_recovery_codes(record.id, codes)
        await ENROLMENT.clear(ctx.sessions, pre)
        return ctx.render(request, "recovery_codes.html", session=pre, codes=codes, username=record.username,
                          enrolled=True)

    @staticmethod
    def _new_account(state: EnrolmentState, invitation: Invitation, link: ProxyLink | None, *, method: str,
                     contact: str | None) -> AccountRecord | None:
        """The account this invitation creates; None when a caregiver's link is no longer on offer."""
        if invitation.kind == "patient":
            kind, fhir_user, patient_id = "patient", f"Patient/{invitation.patient_id}", invitation.patient_id
        elif link is not None and link.status == "invited":
            kind, fhir_user, patient_id = "caregiver", f"RelatedPerson/{link.related_person_id}", None
        else:
            return None
        return AccountRecord(
            id="", username=state.username or "", kind=kind,  # type: ignore[arg-type]
            fhir_user=fhir_user, patient_id=patient_id, password_hash=state.password_hash or "",
            mfa_method=method,  # type: ignore[arg-type]
            totp_secret_sealed=state.totp_sealed if method == "totp" else None, contact=contact,
            display_name=state.display_name,
            # Notices ("something new in the portal") go where the invitation reached the person, until they
            # choose another address on their profile.
            notice_email=invitation.email if kind == "patient" else link.caregiver_email if link else None,
        )


class CaregiverAcceptance(EnrolmentSteps):
    """A signed-in patient or caregiver accepts a caregiver invitation into their existing account."""

    def add_routes(self, router: APIRouter) -> None:
        self.page(router, "/auth/enroll/accept", self.confirm)
        self.form(router, "/auth/enroll/accept", self.accept)

    async def _caregiver_state(self, request: Request) -> tuple[PreSession, Invitation | None]:
        pre, state, invitation = await self._state(request)
        if state is None or invitation is None or invitation.kind != "caregiver" or not state.identity_checked:
            return pre, None
        return pre, invitation

    async def confirm(self, request: Request) -> Response:
        session = await self.ctx.sessions.current(request)
        _, invitation = await self._caregiver_state(request)
        if invitation is None:
            return self.invalid(request)
        if session is None:
            return RedirectResponse("/auth/enroll/account", status_code=303)
        return self.ctx.render(request, "enroll_accept.html", session=session, username=session.account.username,
                               staff=session.account.kind == "staff")

    async def accept(self, request: Request) -> Response:
        ctx = self.ctx
        session = await ctx.sessions.current(request)
        pre, invitation = await self._caregiver_state(request)
        if invitation is None:
            return self.invalid(request)
        if session is None or session.account.kind == "staff":
            return RedirectResponse("/auth/enroll/account", status_code=303)
        link = await ctx.store.get_proxy(invitation.proxy_link_id or "")
        if link is None or link.status != "invited":
            return self.invalid(request)
        await ctx.audit(request, "proxy.accept", "success", account_id=session.account.id,
                        fhir_user=session.account.fhir_user, patient_id=link.patient_id,
                        detail=f"related_person={link.related_person_id}")
        if not await ctx.store.consume_invitation(invitation):
            return self.invalid(request)
        link.caregiver_account_id, link.status = session.account.id, "active"
        await ctx.store.save_proxy(link)
        await ENROLMENT.clear(ctx.sessions, pre)
        return ctx.message(request, _("Access added"), _("You can now see this person's record from your account."),
                           200, link_href="/portal/", link_text=_("Go to the portal"))
