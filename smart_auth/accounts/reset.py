"""Password reset: username → second factor (authenticator, sent code or recovery code) → new password.
Every session and grant the old password opened ends."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from web.i18n import gettext as _

from .context import posted_form
from .factors import check_second_factor, send_account_code
from .flow import AccountsFlow
from .flow_state import RESET, ResetState
from .passwords import password_problems
from .sessions import PreSession
from .signin import BAD_CODE, LOCKED


class PasswordResetFlow(AccountsFlow):
    def add_routes(self, router: APIRouter) -> None:
        self.page(router, "/auth/reset", self.start_form)
        self.form(router, "/auth/reset", self.start)
        self.page(router, "/auth/reset/verify", self.verify_form)
        self.form(router, "/auth/reset/verify", self.verify)
        self.page(router, "/auth/reset/password", self.password_form)
        self.form(router, "/auth/reset/password", self.new_password)

    async def _state(self, request: Request) -> tuple[PreSession, ResetState | None]:
        pre = await self.ctx.sessions.presession(request)
        return pre, RESET.get(pre)

    async def start_form(self, request: Request) -> Response:
        pre = await self.ctx.sessions.presession(request)
        return self.ctx.render(request, "reset_start.html", session=pre, error=None)

    async def start(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre = await ctx.sessions.presession(request)
        username = form.text("username")[:128]
        if not username:
            return ctx.render(request, "reset_start.html", 400, session=pre, error=_("Enter your username."))
        record = await ctx.store.record_by_username(username)
        # Unknown usernames go through the same steps and never succeed: no existence leak.
        await RESET.save(ctx.sessions, pre, ResetState(username, record.id if record else None))
        if record is not None:
            await send_account_code(ctx, record, f"reset:{pre.id}", "password-reset")
        return RedirectResponse("/auth/reset/verify", status_code=303)

    async def verify_form(self, request: Request) -> Response:
        pre, state = await self._state(request)
        if state is None:
            return RedirectResponse("/auth/reset", status_code=303)
        return self.ctx.render(request, "reset_verify.html", session=pre, error=None)

    async def verify(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre, state = await self._state(request)
        if state is None:
            return RedirectResponse("/auth/reset", status_code=303)
        if await ctx.lockout.locked(state.username):
            return ctx.render(request, "reset_verify.html", 429, session=pre, error=_(LOCKED))
        record = await ctx.store.get_record(state.account_id) if state.account_id else None
        factor = await check_second_factor(ctx, record, form.text("code"), f"reset:{pre.id}") if record else None
        if factor is None:
            account_id = record.id if record else None
            await ctx.audit(request, "password_reset", "failure", account_id=account_id, detail="second-factor")
            if await ctx.lockout.record_failure(state.username):
                await ctx.audit(request, "lockout", "failure", account_id=account_id)
                return ctx.render(request, "reset_verify.html", 429, session=pre, error=_(LOCKED))
            return ctx.render(request, "reset_verify.html", 401, session=pre, error=_(BAD_CODE))
        state.factor = factor
        await RESET.save(ctx.sessions, pre, state)
        return RedirectResponse("/auth/reset/password", status_code=303)

    async def password_form(self, request: Request) -> Response:
        pre, state = await self._state(request)
        if state is None or state.factor is None:
            return RedirectResponse("/auth/reset", status_code=303)
        return self.ctx.render(request, "reset_password.html", session=pre, errors={})

    async def new_password(self, request: Request) -> Response:
        ctx, form = self.ctx, await posted_form(request)
        pre, state = await self._state(request)
        record = await ctx.store.get_record(state.account_id) if state and state.factor and state.account_id else None
        if state is None or record is None:
            return RedirectResponse("/auth/reset", status_code=303)
        password = form.raw("password")
        problems = [p.message for p in password_problems(password, record.username)]
        if not problems and ctx.hashing.verify(record.password_hash, password):
            problems = [_("Choose a password you have not used for this account before.")]
        errors: dict[str, list[str]] = {}
        if problems:
            errors["password"] = problems
        elif password != form.raw("password_confirm"):
            errors["password_confirm"] = [_("The two passwords do not match.")]
        if errors:
            return ctx.render(request, "reset_password.html", 400, session=pre, errors=errors)
        await ctx.audit(request, "password_reset", "success", account_id=record.id, fhir_user=record.fhir_user,
                        detail=f"factor={state.factor}")
        record.password_hash = ctx.hashing.hash(password)
        record.password_changed_at = ctx.now()
        await ctx.store.save(record)
        # A reset means the old password may be known to someone else: end everything it opened.
        await ctx.sessions.end_all_for(record.id)
        await ctx.grants.revoke_for(record.id)
        await ctx.lockout.clear(state.username)
        response = RedirectResponse("/auth/login?notice=password-changed", status_code=303)
        await ctx.sessions.end_presession(request, response)
        return response
