"""Sign-in (password, then second factor) with lockout, and sign-out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from locales import N_, supported
from web.i18n import gettext as _
from web.i18n import remember_locale

from .context import log, posted_form
from .factors import check_second_factor, send_account_code
from .flow import AccountsFlow
from .flow_state import SIGN_IN, SignInState
from .known_devices import KnownDevices
from .models import AccountRecord
from .redirects import safe_next
from .sessions import PreSession

# Marked for the catalogue here, translated where a page shows them (other flows show them in English until
# their pages are translated).
BAD_LOGIN = N_("The username or password is not correct.")
BAD_CODE = N_("That code is not correct or has expired.")
LOCKED = N_("Too many wrong tries. To keep your account safe, please wait 15 minutes and try again.")


class SignInFlow(AccountsFlow):
    """/auth/login → /auth/login/mfa → the `next` page, with a fresh signed-in session."""

    def add_routes(self, router: APIRouter) -> None:
        self.page(router, "/auth/login", self.login_form, name="accounts_login")
        self.form(router, "/auth/login", self.password)
        self.page(router, "/auth/login/mfa", self.mfa_form)
        self.form(router, "/auth/login/mfa/resend", self.resend)
        self.form(router, "/auth/login/mfa", self.second_factor)
        self.page(router, "/auth/language", self.language)

    def _login_page(self, request: Request, pre: PreSession, next_url: str, status: int = 200,
                    **extra: Any) -> Response:
        extra.setdefault("error", None)
        extra.setdefault("username", "")
        return self.ctx.render(request, "login.html", status, session=pre, next=next_url, **extra)

    def _mfa_page(self, request: Request, pre: PreSession, record: AccountRecord, status: int = 200,
                  error: str | None = None) -> Response:
        return self.ctx.render(request, "login_mfa.html", status, session=pre, method=record.mfa_method, error=error)

    async def _state(self, request: Request) -> tuple[PreSession, SignInState | None, AccountRecord | None]:
        pre = await self.ctx.sessions.presession(request)
        state = SIGN_IN.get(pre)
        record = await self.ctx.store.get_record(state.account_id) if state else None
        return pre, (state if record else None), record

    async def language(self, request: Request, lang: str = "", next: str = "") -> Response:
        """The language switch of the pages before sign-in: kept on this browser (a cookie), then back."""
        response = RedirectResponse(safe_next(next, "/auth/login"), status_code=303)
        code = supported(lang)
        if code:
            remember_locale(response, code, secure=self.ctx.deps.public_url.startswith("https"))
        return response

    async def login_form(self, request: Request, next: str = "") -> Response:
        next_url = safe_next(next, self.ctx.settings.default_next)
        if await self.ctx.sessions.current(request) is not None:
            return RedirectResponse(next_url, status_code=303)
        pre = await self.ctx.sessions.presession(request)
        return self._login_page(request, pre, next_url, notice=request.query_params.get("notice"))

    async def password(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre = await ctx.sessions.presession(request)
        next_url = safe_next(form.text("next"), ctx.settings.default_next)
        username, password = form.text("username")[:128], form.raw("password")[:1024]
        record = await ctx.store.record_by_username(username) if username else None
        account_id = record.id if record else None
        if await ctx.lockout.locked(username):
            ctx.hashing.verify(None, password)  # same work as a real check: timing says nothing
            await ctx.audit(request, "login", "failure", account_id=account_id, detail="locked")
            return self._login_page(request, pre, next_url, 429, error=_(LOCKED))
        # Unknown users verify against a dummy hash so the answer takes as long as for real ones.
        ok = ctx.hashing.verify(record.password_hash if record else None, password)
        if not ok or record is None:
            await ctx.audit(request, "login", "failure", account_id=account_id, detail="password")
            if await ctx.lockout.record_failure(username):
                await ctx.audit(request, "lockout", "failure", account_id=account_id)
                return self._login_page(request, pre, next_url, 429, error=_(LOCKED))
            return self._login_page(request, pre, next_url, 401, error=_(BAD_LOGIN), username=username)
        if ctx.hashing.needs_rehash(record.password_hash):
            record.password_hash = ctx.hashing.hash(password)
            await ctx.store.save(record)
        await SIGN_IN.save(ctx.sessions, pre, SignInState(record.id, username, next_url))
        await send_account_code(ctx, record, f"login:{pre.id}", "sign-in")
        return RedirectResponse("/auth/login/mfa", status_code=303)

    async def mfa_form(self, request: Request) -> Response:
        pre, state, record = await self._state(request)
        if state is None or record is None:
            return RedirectResponse("/auth/login", status_code=303)
        return self._mfa_page(request, pre, record)

    async def resend(self, request: Request) -> Response:
        pre, state, record = await self._state(request)
        if state is None or record is None:
            return RedirectResponse("/auth/login", status_code=303)
        await send_account_code(self.ctx, record, f"login:{pre.id}", "sign-in")
        return RedirectResponse("/auth/login/mfa", status_code=303)

    async def second_factor(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre, state, record = await self._state(request)
        if state is None or record is None:
            return RedirectResponse("/auth/login", status_code=303)
        if await ctx.lockout.locked(state.username):
            await SIGN_IN.clear(ctx.sessions, pre)
            return self._login_page(request, pre, state.next_url, 429, error=_(LOCKED))
        factor = await check_second_factor(ctx, record, form.text("code"), f"login:{pre.id}")
        if factor is None:
            await ctx.audit(request, "login", "failure", account_id=record.id, fhir_user=record.fhir_user,
                            detail="second-factor")
            if await ctx.lockout.record_failure(state.username):
                await ctx.audit(request, "lockout", "failure", account_id=record.id, fhir_user=record.fhir_user)
                await SIGN_IN.clear(ctx.sessions, pre)
                return self._login_page(request, pre, state.next_url, 429, error=_(LOCKED))
            return self._mfa_page(request, pre, record, 401, _(BAD_CODE))
        await ctx.audit(request, "login", "success", account_id=record.id, fhir_user=record.fhir_user,
                        patient_id=record.patient_id, detail=f"factor={factor}")
        await ctx.lockout.clear(state.username)
        response = RedirectResponse(state.next_url, status_code=303)
        await ctx.sessions.end_presession(request, response)  # a fresh identity gets fresh tokens
        await ctx.sessions.create(response, record.public())
        await self._new_device_notice(request, response, record)
        return response

    async def _new_device_notice(self, request: Request, response: Response, record: AccountRecord) -> None:
        ctx = self.ctx
        if ctx.notices is None:
            return
        devices = KnownDevices(ctx.deps.redis, ctx.store.box.digest, secure=ctx.deps.public_url.startswith("https"))
        try:
            if await devices.signed_in(record.id, request, response):
                await ctx.notices.notify(f"account:{record.id}", "new-device", "/auth/account/security",
                                         key=f"new-device:{record.id}:{ctx.now():.0f}")
        except Exception as exc:  # a notice must never stand in the way of signing in
            log.warning("new-device check failed: %s", type(exc).__name__)


class SignOut(AccountsFlow):
    def add_routes(self, router: APIRouter) -> None:
        self.page(router, "/auth/logout", self.confirm)
        self.form(router, "/auth/logout", self.sign_out)

    async def confirm(self, request: Request) -> Response:
        session = await self.ctx.sessions.current(request)
        if session is None:
            return RedirectResponse("/auth/login", status_code=303)
        return self.ctx.render(request, "logout.html", session=session)

    async def sign_out(self, request: Request) -> Response:
        session = await self.ctx.sessions.current(request)
        if session is None:
            return RedirectResponse("/auth/login", status_code=303)
        await self.ctx.audit(request, "logout", "success", account_id=session.account.id,
                             fhir_user=session.account.fhir_user)
        response = RedirectResponse("/auth/login?notice=signed-out", status_code=303)
        await self.ctx.sessions.end(request, response)
        return response
