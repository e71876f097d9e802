"""A signed-in person manages their own sign-in: change the password, set up a new authenticator app, get a
new set of recovery codes. /auth/account/security gives the overview.

Every change asks again for the current password AND a current second-factor code (authenticator, sent code or
recovery code), under the same lockout as sign-in. A change is audited before it is made, and the person gets a
"your sign-in settings changed" notice where the accounts messaging can reach them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from locales import N_
from mappers.dates import short_date
from web.i18n import current_locale
from web.i18n import gettext as _

from .context import Ctx, PostedForm, log, posted_form
from .factors import check_second_factor, send_account_code, valid_contact
from .flow import AccountsFlow
from .flow_state import NEW_AUTHENTICATOR, AuthenticatorState
from .mfa import new_recovery_codes, new_totp_secret, provisioning_uri, qr_data_uri, totp_step
from .models import AccountRecord
from .passwords import password_problems
from .sessions import Session
from .signin import BAD_CODE, LOCKED

HOME = "/auth/account/security"
PAGES = {"password": "/auth/account/password", "authenticator": "/auth/account/authenticator",
         "recovery-codes": "/auth/account/recovery-codes"}
# English message ids, translated where a page shows them.
WRONG_CURRENT = N_("That is not your current password.")
NEW_CODE_WRONG = N_("That code did not work. Enter the 6-digit code your new app shows now (check the phone's "
                    "clock if it keeps failing).")
DONE = {
    "password": N_("Your password is changed. You are still signed in here; everywhere else you were signed out."),
    "authenticator": N_("Your new authenticator app is set up. Use it from now on; the old one no longer works."),
}
# What changed, for the "your sign-in settings changed" message (the fallback sender's, without a notice queue).
CHANGES = {
    "password": N_("your password was changed"),
    "authenticator": N_("a new authenticator app was set up"),
    "recovery-codes": N_("you got new recovery codes"),
}


@dataclass
class Refusal:
    """Why a form was not accepted: field messages and the status to answer with."""

    status: int
    errors: dict[str, list[str]]


@dataclass
class SignedIn:
    session: Session
    record: AccountRecord


async def signed_in(ctx: Ctx, request: Request) -> SignedIn | None:
    session = await ctx.sessions.current(request)
    record = await ctx.store.get_record(session.account.id) if session else None
    return SignedIn(session, record) if session and record else None


def to_sign_in(path: str) -> Response:
    return RedirectResponse(f"/auth/login?next={path}", status_code=303)


def day(at: float, locale: str = "en") -> str | None:
    """A date in words ("1 December 2026", "1 de diciembre de 2026"); the day is enough to spot a change the
    person did not make."""
    return short_date(datetime.fromtimestamp(at, UTC).date(), locale) if at else None


def code_slot(session: Session) -> str:
    return f"account:{session.id}"


async def confirm_it_is_you(ctx: Ctx, request: Request, who: SignedIn, form: PostedForm, kind: str) -> Refusal | None:
    """Check the current password, then a current second-factor code; None when both are right. Failures count
    towards the same lockout as sign-in (keyed by username) and are audited as `kind` failures."""
    record = who.record
    if await ctx.lockout.locked(record.username):
        await ctx.audit(request, kind, "failure", account_id=record.id, fhir_user=record.fhir_user, detail="locked")
        return Refusal(429, {"current_password": [_(LOCKED)]})
    errors: dict[str, list[str]] = {}
    if not ctx.hashing.verify(record.password_hash, form.raw("current_password")[:1024]):
        # The code is not looked at: a wrong password must not use up a recovery code.
        errors["current_password"] = [_(WRONG_CURRENT)]
        detail = "password"
    elif await check_second_factor(ctx, record, form.text("current_code"), code_slot(who.session)) is None:
        errors["current_code"] = [_(BAD_CODE)]
        detail = "second-factor"
    else:
        return None
    await ctx.audit(request, kind, "failure", account_id=record.id, fhir_user=record.fhir_user, detail=detail)
    if await ctx.lockout.record_failure(record.username):
        await ctx.audit(request, "lockout", "failure", account_id=record.id, fhir_user=record.fhir_user)
        return Refusal(429, {"current_password": [_(LOCKED)]})
    return Refusal(401, errors)


async def notify_change(ctx: Ctx, record: AccountRecord, what: str) -> None:
    """Tell the person by e-mail or text message, when we have an address for them (a notice lost is logged,
    never a reason to undo the change). With the app's notice queue, the notice is queued there (retried until
    sent, in the person's language); without it, it goes to the accounts' message sender in the language of
    the page they made the change on. `what`: a key of CHANGES."""
    if ctx.notices is not None:
        try:
            await ctx.notices.notify(f"account:{record.id}", "sign-in-settings", HOME,
                                     key=f"sign-in-settings:{record.id}:{what}:{ctx.now():.0f}")
        except Exception as exc:
            log.warning("sign-in change notice not queued: %s", type(exc).__name__)
        return
    address = record.contact or ""
    channel = next((c for c in ("email", "sms") if valid_contact(c, address)), None)
    if channel is None:
        return
    body = _("Your sign-in settings for the %(portal)s changed: %(what)s. If this was not you, call the clinic "
             "right away.") % {"portal": ctx.settings.totp_issuer, "what": _(CHANGES[what])}
    try:
        await ctx.sender.send(channel, address, _("Your sign-in settings changed"), body,  # type: ignore[arg-type]
                              purpose="security-notice")
    except Exception as exc:
        log.warning("sign-in change notice not sent: %s", type(exc).__name__)


class SecurityPages(AccountsFlow):
    """Shared by the change flows: the signed-in guard, the page with its re-authentication fields."""

    template = ""
    path = ""

    def show(self, request: Request, who: SignedIn, status: int = 200, errors: dict[str, list[str]] | None = None,
             **extra: Any) -> Response:
        return self.ctx.render(request, self.template, status, session=who.session, errors=errors or {},
                               method=who.record.mfa_method, sent=request.query_params.get("sent") == "1",
                               back=self.path, **extra)


class SecurityOverview(AccountsFlow):
    def add_routes(self, router: APIRouter) -> None:
        self.page(router, HOME, self.overview, name="account_security")
        self.form(router, "/auth/account/send-code", self.send_code)

    async def overview(self, request: Request) -> Response:
        who = await signed_in(self.ctx, request)
        if who is None:
            return to_sign_in(HOME)
        record = who.record
        return self.ctx.render(
            request, "security.html", session=who.session, username=record.username,
            password_changed=day(record.password_changed_at, current_locale()), method=record.mfa_method,
            codes_left=await self.ctx.store.recovery_codes_left(record.id),
            done=_(DONE[done]) if (done := request.query_params.get("done", "")) in DONE else None)

    async def send_code(self, request: Request) -> Response:
        """People who get their codes by message ask for one before a change (none is sent unasked)."""
        form = await posted_form(request)
        back = form.text("back") if form.text("back") in PAGES.values() else HOME
        who = await signed_in(self.ctx, request)
        if who is None:
            return to_sign_in(back)
        sent = await send_account_code(self.ctx, who.record, code_slot(who.session), "sign-in-settings")
        return RedirectResponse(f"{back}?sent=1" if sent else back, status_code=303)


class PasswordChangeFlow(SecurityPages):
    template = "security_password.html"
    path = PAGES["password"]

    def add_routes(self, router: APIRouter) -> None:
        self.page(router, self.path, self.form_page)
        self.form(router, self.path, self.change)

    async def form_page(self, request: Request) -> Response:
        who = await signed_in(self.ctx, request)
        return self.show(request, who) if who else to_sign_in(self.path)

    async def change(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        who = await signed_in(ctx, request)
        if who is None:
            return to_sign_in(self.path)
        record, password = who.record, form.raw("password")
        # The new password is checked first (no secret involved), so a code is not used up by a typo here.
        errors: dict[str, list[str]] = {}
        problems = [p.message for p in password_problems(password, record.username)]
        if not problems and password == form.raw("current_password"):
            problems = [_("Choose a password you have not used for this account before.")]
        if problems:
            errors["password"] = problems
        elif password != form.raw("password_confirm"):
            errors["password_confirm"] = [_("The two passwords do not match.")]
        if errors:
            return self.show(request, who, 400, errors)
        refusal = await confirm_it_is_you(ctx, request, who, form, "password_change")
        if refusal is not None:
            return self.show(request, who, refusal.status, refusal.errors)
        await ctx.audit(request, "password_change", "success", account_id=record.id, fhir_user=record.fhir_user)
        record.password_hash = ctx.hashing.hash(password)
        record.password_changed_at = ctx.now()
        await ctx.store.save(record)
        # Someone else may know the old password: end what it opened elsewhere, keep this browser signed in.
        await ctx.sessions.end_others_for(record.id, keep=who.session.id)
        await ctx.grants.revoke_for(record.id, keep_session=who.session.id)
        await ctx.lockout.clear(record.username)
        await notify_change(ctx, record, "password")
        return RedirectResponse(f"{HOME}?done=password", status_code=303)


class AuthenticatorChangeFlow(SecurityPages):
    template = "security_authenticator.html"
    path = PAGES["authenticator"]

    def add_routes(self, router: APIRouter) -> None:
        self.page(router, self.path, self.form_page)
        self.form(router, self.path, self.change)

    async def _offered(self, request: Request, who: SignedIn) -> str:
        """The new key on offer to this person (made once per visit, so reloading shows the same QR code)."""
        pre = await self.ctx.sessions.presession(request)
        state = NEW_AUTHENTICATOR.get(pre)
        if state is None or state.account_id != who.record.id:
            state = AuthenticatorState(who.record.id, self.ctx.store.box.seal(new_totp_secret()))
            await NEW_AUTHENTICATOR.save(self.ctx.sessions, pre, state)
        return self.ctx.store.box.unseal(state.totp_sealed)

    def _page(self, request: Request, who: SignedIn, secret: str, status: int = 200,
              errors: dict[str, list[str]] | None = None) -> Response:
        uri = provisioning_uri(secret, who.record.username, self.ctx.settings.totp_issuer)
        return self.show(request, who, status, errors, secret=secret, uri=uri, qr=qr_data_uri(uri))

    async def form_page(self, request: Request) -> Response:
        who = await signed_in(self.ctx, request)
        if who is None:
            return to_sign_in(self.path)
        return self._page(request, who, await self._offered(request, who))

    async def change(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        who = await signed_in(ctx, request)
        if who is None:
            return to_sign_in(self.path)
        secret = await self._offered(request, who)
        step = totp_step(secret, form.text("new_code"), ctx.now())
        if step is None:
            return self._page(request, who, secret, 400, {"new_code": [_(NEW_CODE_WRONG)]})
        refusal = await confirm_it_is_you(ctx, request, who, form, "mfa.setup")
        if refusal is not None:
            return self._page(request, who, secret, refusal.status, refusal.errors)
        record = who.record
        await ctx.audit(request, "mfa.setup", "success", account_id=record.id, fhir_user=record.fhir_user,
                        detail=f"method=totp,replaced={record.mfa_method}")
        record.mfa_method, record.totp_secret_sealed = "totp", ctx.store.box.seal(secret)
        await ctx.store.save(record)
        await ctx.store.restart_totp_steps(record.id, step)
        await NEW_AUTHENTICATOR.clear(ctx.sessions, await ctx.sessions.presession(request))
        await notify_change(ctx, record, "authenticator")
        return RedirectResponse(f"{HOME}?done=authenticator", status_code=303)


class RecoveryCodesFlow(SecurityPages):
    template = "security_recovery.html"
    path = PAGES["recovery-codes"]

    def add_routes(self, router: APIRouter) -> None:
        self.page(router, self.path, self.form_page)
        self.form(router, self.path, self.renew)

    async def form_page(self, request: Request) -> Response:
        who = await signed_in(self.ctx, request)
        if who is None:
            return to_sign_in(self.path)
        return self.show(request, who, codes_left=await self.ctx.store.recovery_codes_left(who.record.id))

    async def renew(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        who = await signed_in(ctx, request)
        if who is None:
            return to_sign_in(self.path)
        refusal = await confirm_it_is_you(ctx, request, who, form, "recovery_codes")
        if refusal is not None:
            return self.show(request, who, refusal.status, refusal.errors,
                             codes_left=await ctx.store.recovery_codes_left(who.record.id))
        record = who.record
        await ctx.audit(request, "recovery_codes", "success", account_id=record.id, fhir_user=record.fhir_user)
        codes = new_recovery_codes(ctx.settings.recovery_code_count)
        await ctx.store.set_recovery_codes(record.id, codes)  # replaces the old set: those stop working now
        await notify_change(ctx, record, "recovery-codes")
        # Shown once, never stored in clear: the answer must not be kept by the browser or a proxy.
        response = ctx.render(request, "security_recovery_codes.html", session=who.session, codes=codes)
        response.headers["Cache-Control"] = "no-store"
        return response
