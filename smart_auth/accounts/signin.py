"""Sign-in (password, then second factor), lockout, sign-out and password reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from .context import Ctx
from .factors import check_second_factor, send_account_code
from .models import AccountRecord
from .passwords import password_problems
from .redirects import safe_next
from .sessions import PreSession

BAD_LOGIN = "The username or password is not correct."
BAD_CODE = "That code is not correct or has expired."
LOCKED = "Too many unsuccessful attempts. For your security, please wait 15 minutes and try again."


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _raw(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def add_signin_routes(router: APIRouter, ctx: Ctx) -> None:
    def csrf_failed(request: Request) -> Response:
        return ctx.message(
            request, "Form expired", "This form has expired. Please go back, reload the page and try again.", 400
        )

    def login_page(request: Request, pre: PreSession, next_url: str, status: int = 200, **extra: Any) -> Response:
        extra.setdefault("error", None)
        extra.setdefault("username", "")
        response = ctx.render(request, "login.html", status, session=pre, next=next_url, **extra)
        return ctx.sessions.attach(response, pre)

    def locked_page(request: Request, pre: PreSession, next_url: str) -> Response:
        return login_page(request, pre, next_url, 429, error=LOCKED)

    @router.get("/auth/login", name="accounts_login")
    async def login_form(request: Request, next: str = "") -> Response:
        next_url = safe_next(next, ctx.settings.default_next)
        if await ctx.sessions.current(request) is not None:
            return RedirectResponse(next_url, status_code=303)
        pre = await ctx.sessions.presession(request)
        return login_page(request, pre, next_url, notice=request.query_params.get("notice"))

    @router.post("/auth/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        pre = await ctx.sessions.presession(request)
        next_url = safe_next(_field(form, "next"), ctx.settings.default_next)
        if not ctx.sessions.verify_csrf(request, pre, _field(form, "csrf_token")):
            return ctx.sessions.attach(csrf_failed(request), pre)
        username = _field(form, "username")[:128]
        password = _raw(form, "password")[:1024]
        record = await ctx.store.record_by_username(username) if username else None
        if await ctx.lockout.locked(username):
            ctx.hashing.verify(None, password)  # same work as a real check: timing says nothing
            await ctx.audit(request, "login", "failure", account_id=record.id if record else None, detail="locked")
            return locked_page(request, pre, next_url)
        # Unknown users verify against a dummy hash so the answer takes as long as for real ones.
        ok = ctx.hashing.verify(record.password_hash if record else None, password)
        if not ok or record is None:
            await ctx.audit(request, "login", "failure", account_id=record.id if record else None,
                            detail="password")
            if await ctx.lockout.record_failure(username):
                await ctx.audit(request, "lockout", "failure", account_id=record.id if record else None)
                return locked_page(request, pre, next_url)
            return login_page(request, pre, next_url, 401, error=BAD_LOGIN, username=username)
        if ctx.hashing.needs_rehash(record.password_hash):
            record.password_hash = ctx.hashing.hash(password)
            await ctx.store.save(record)
        pre.flows["login"] = {"account_id": record.id, "username": username, "next": next_url}
        await ctx.sessions.save_presession(pre)
        await send_account_code(ctx, record, f"login:{pre.id}", "sign-in")
        return RedirectResponse("/auth/login/mfa", status_code=303)

    async def login_flow(request: Request) -> tuple[PreSession, dict[str, Any] | None, AccountRecord | None]:
        pre = await ctx.sessions.presession(request)
        flow = pre.flows.get("login")
        record = await ctx.store.get_record(flow["account_id"]) if flow else None
        return pre, (flow if record else None), record

    def mfa_page(request: Request, pre: PreSession, record: AccountRecord, status: int = 200,
                 error: str | None = None) -> Response:
        return ctx.render(request, "login_mfa.html", status, session=pre, method=record.mfa_method, error=error)

    @router.get("/auth/login/mfa")
    async def login_mfa_form(request: Request) -> Response:
        pre, flow, record = await login_flow(request)
        if flow is None or record is None:
            return RedirectResponse("/auth/login", status_code=303)
        return mfa_page(request, pre, record)

    @router.post("/auth/login/mfa/resend")
    async def login_mfa_resend(request: Request) -> Response:
        form = await request.form()
        pre, flow, record = await login_flow(request)
        if flow is None or record is None:
            return RedirectResponse("/auth/login", status_code=303)
        if not ctx.sessions.verify_csrf(request, pre, _field(form, "csrf_token")):
            return csrf_failed(request)
        await send_account_code(ctx, record, f"login:{pre.id}", "sign-in")
        return RedirectResponse("/auth/login/mfa", status_code=303)

    @router.post("/auth/login/mfa")
    async def login_mfa(request: Request) -> Response:
        form = await request.form()
        pre, flow, record = await login_flow(request)
        if flow is None or record is None:
            return RedirectResponse("/auth/login", status_code=303)
        if not ctx.sessions.verify_csrf(request, pre, _field(form, "csrf_token")):
            return csrf_failed(request)
        username = flow["username"]
        if await ctx.lockout.locked(username):
            pre.flows.pop("login", None)
            await ctx.sessions.save_presession(pre)
            return locked_page(request, pre, flow["next"])
        factor = await check_second_factor(ctx, record, _field(form, "code"), f"login:{pre.id}")
        if factor is None:
            await ctx.audit(request, "login", "failure", account_id=record.id, fhir_user=record.fhir_user,
                            detail="second-factor")
            if await ctx.lockout.record_failure(username):
                await ctx.audit(request, "lockout", "failure", account_id=record.id, fhir_user=record.fhir_user)
                pre.flows.pop("login", None)
                await ctx.sessions.save_presession(pre)
                return locked_page(request, pre, flow["next"])
            return mfa_page(request, pre, record, 401, BAD_CODE)
        await ctx.audit(request, "login", "success", account_id=record.id, fhir_user=record.fhir_user,
                        patient_id=record.patient_id, detail=f"factor={factor}")
        await ctx.lockout.clear(username)
        response = RedirectResponse(flow["next"], status_code=303)
        await ctx.sessions.end_presession(request, response)  # a fresh identity gets fresh tokens
        await ctx.sessions.create(response, record.public())
        return response

    @router.get("/auth/logout")
    async def logout_form(request: Request) -> Response:
        session = await ctx.sessions.current(request)
        if session is None:
            return RedirectResponse("/auth/login", status_code=303)
        return ctx.render(request, "logout.html", session=session)

    @router.post("/auth/logout")
    async def logout(request: Request) -> Response:
        form = await request.form()
        session = await ctx.sessions.current(request)
        if session is None:
            return RedirectResponse("/auth/login", status_code=303)
        if not ctx.sessions.verify_csrf(request, session, _field(form, "csrf_token")):
            return csrf_failed(request)
        await ctx.audit(request, "logout", "success", account_id=session.account.id,
                        fhir_user=session.account.fhir_user)
        response = RedirectResponse("/auth/login?notice=signed-out", status_code=303)
        await ctx.sessions.end(request, response)
        return response

    # ---- password reset ---------------------------------------------------------------------------
    async def reset_flow(request: Request) -> tuple[PreSession, dict[str, Any] | None]:
        pre = await ctx.sessions.presession(request)
        return pre, pre.flows.get("reset")

    @router.get("/auth/reset")
    async def reset_form(request: Request) -> Response:
        pre = await ctx.sessions.presession(request)
        return ctx.sessions.attach(ctx.render(request, "reset_start.html", session=pre, error=None), pre)

    @router.post("/auth/reset")
    async def reset_start(request: Request) -> Response:
        form = await request.form()
        pre = await ctx.sessions.presession(request)
        if not ctx.sessions.verify_csrf(request, pre, _field(form, "csrf_token")):
            return ctx.sessions.attach(csrf_failed(request), pre)
        username = _field(form, "username")[:128]
        if not username:
            return ctx.render(request, "reset_start.html", 400, session=pre, error="Enter your username.")
        record = await ctx.store.record_by_username(username)
        # Unknown usernames go through the same steps and never succeed: no existence leak.
        pre.flows["reset"] = {"username": username, "account_id": record.id if record else None, "verified": False}
        await ctx.sessions.save_presession(pre)
        if record is not None:
            await send_account_code(ctx, record, f"reset:{pre.id}", "password-reset")
        return RedirectResponse("/auth/reset/verify", status_code=303)

    @router.get("/auth/reset/verify")
    async def reset_verify_form(request: Request) -> Response:
        pre, flow = await reset_flow(request)
        if flow is None:
            return RedirectResponse("/auth/reset", status_code=303)
        return ctx.render(request, "reset_verify.html", session=pre, error=None)

    @router.post("/auth/reset/verify")
    async def reset_verify(request: Request) -> Response:
        form = await request.form()
        pre, flow = await reset_flow(request)
        if flow is None:
            return RedirectResponse("/auth/reset", status_code=303)
        if not ctx.sessions.verify_csrf(request, pre, _field(form, "csrf_token")):
            return csrf_failed(request)
        if await ctx.lockout.locked(flow["username"]):
            return ctx.render(request, "reset_verify.html", 429, session=pre, error=LOCKED)
        record = await ctx.store.get_record(flow["account_id"]) if flow["account_id"] else None
        factor = (
            await check_second_factor(ctx, record, _field(form, "code"), f"reset:{pre.id}") if record else None
        )
        if factor is None:
            await ctx.audit(request, "password_reset", "failure", account_id=record.id if record else None,
                            detail="second-factor")
            if await ctx.lockout.record_failure(flow["username"]):
                await ctx.audit(request, "lockout", "failure", account_id=record.id if record else None)
                return ctx.render(request, "reset_verify.html", 429, session=pre, error=LOCKED)
            return ctx.render(request, "reset_verify.html", 401, session=pre, error=BAD_CODE)
        flow["verified"] = True
        flow["factor"] = factor
        await ctx.sessions.save_presession(pre)
        return RedirectResponse("/auth/reset/password", status_code=303)

    @router.get("/auth/reset/password")
    async def reset_password_form(request: Request) -> Response:
        pre, flow = await reset_flow(request)
        if flow is None or not flow.get("verified"):
            return RedirectResponse("/auth/reset", status_code=303)
        return ctx.render(request, "reset_password.html", session=pre, errors={})

    @router.post("/auth/reset/password")
    async def reset_password(request: Request) -> Response:
        form = await request.form()
        pre, flow = await reset_flow(request)
        if flow is None or not flow.get("verified"):
            return RedirectResponse("/auth/reset", status_code=303)
        if not ctx.sessions.verify_csrf(request, pre, _field(form, "csrf_token")):
            return csrf_failed(request)
        record = await ctx.store.get_record(flow["account_id"])
        if record is None:
            return RedirectResponse("/auth/reset", status_code=303)
        password = _raw(form, "password")
        problems = [p.message for p in password_problems(password, record.username)]
        if not problems and ctx.hashing.verify(record.password_hash, password):
            problems = ["Choose a password you have not used for this account before."]
        errors: dict[str, list[str]] = {}
        if problems:
            errors["password"] = problems
        elif password != _raw(form, "password_confirm"):
            errors["password_confirm"] = ["The two passwords do not match."]
        if errors:
            return ctx.render(request, "reset_password.html", 400, session=pre, errors=errors)
        await ctx.audit(request, "password_reset", "success", account_id=record.id, fhir_user=record.fhir_user,
                        detail=f"factor={flow.get('factor')}")
        record.password_hash = ctx.hashing.hash(password)
        record.password_changed_at = ctx.now()
        await ctx.store.save(record)
        # A reset means the old password may be known to someone else: end everything it opened.
        await ctx.sessions.end_all_for(record.id)
        await ctx.grants.revoke_for(record.id)
        await ctx.lockout.clear(flow["username"])
        response = RedirectResponse("/auth/login?notice=password-changed", status_code=303)
        await ctx.sessions.end_presession(request, response)
        return response
