"""Builds the accounts router: sign-in/out, reset, enrolment, caregiver access, admin invitations.

One guard around every route turns what can go wrong into a clear answer: an unreadable body is a 400,
a form without its CSRF token a "form expired" page, audit and EHR failures a 503, anything else a
500 page without a stack trace. API paths get RFC 6749-style JSON instead of a page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from locales import N_
from web import PageRenderer
from web.i18n import browser_locale, reset_locale, set_locale
from web.i18n import gettext as _

from ..auditing import Auditor
from ..bearer import BearerTokens
from ..deps import AuthDeps
from ..errors import TemporarilyUnavailableError
from ..request_bodies import FormExpired, MalformedBody
from ..revocation import RevocationStore
from ..tokens import TokenIssuer
from .admin import add_admin_routes
from .context import FORM_EXPIRED, Ctx, EhrUnavailable, GrantRevoker, log
from .enrolment import CaregiverAcceptance, EnrolmentFlow
from .lockout import Lockout, LockoutPolicy
from .messaging import MessageSender, NoticeSink
from .passwords import PasswordHashing
from .proxies import CaregiverApi, CaregiverPages
from .reset import PasswordResetFlow
from .security import AuthenticatorChangeFlow, PasswordChangeFlow, RecoveryCodesFlow, SecurityOverview
from .sessions import SessionManager
from .settings import AccountSettings
from .signin import SignInFlow, SignOut
from .store import AccountStore

JSON_PREFIXES = ("/auth/api/", "/auth/admin/")
FLOWS = (SignInFlow, SignOut, PasswordResetFlow, EnrolmentFlow, CaregiverAcceptance, CaregiverPages, CaregiverApi,
         SecurityOverview, PasswordChangeFlow, AuthenticatorChangeFlow, RecoveryCodesFlow)


@dataclass(frozen=True)
class _Failure:
    """What went wrong, in English message ids: a page translates them, the JSON API answers them as they are."""

    status: int
    error: str
    text: str
    title: str = N_("Sorry, that did not work")


def _failure_for(exc: Exception) -> _Failure:
    if isinstance(exc, MalformedBody):
        return _Failure(400, "invalid_request", N_("What was sent could not be read. Please go back and try again."))
    if isinstance(exc, FormExpired):
        return _Failure(400, "invalid_csrf", FORM_EXPIRED, N_("Form expired"))
    if isinstance(exc, TemporarilyUnavailableError):
        return _Failure(503, "temporarily_unavailable",
                        N_("Security logging is unavailable, so nothing was changed. Please try again later."))
    if isinstance(exc, EhrUnavailable):
        return _Failure(503, "temporarily_unavailable",
                        N_("The health record system is not reachable right now. Please try again later."))
    return _Failure(500, "server_error", N_("Something went wrong. Please try again later."))


def _route_class(ctx: Ctx) -> type[APIRoute]:
    def answer(request: Request, failure: _Failure) -> Response:
        if request.url.path.startswith(JSON_PREFIXES):
            status = 403 if failure.error == "invalid_csrf" else failure.status
            return JSONResponse({"error": failure.error, "error_description": failure.text}, status_code=status,
                                headers={"Cache-Control": "no-store"})
        return ctx.message(request, _(failure.title), _(failure.text), failure.status)

    class AccountsRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                # Before sign-in a person has no account to say their language: the switch's cookie, else
                # what the browser asks for, else English; for this request only.
                language = set_locale(browser_locale(request.cookies, request.headers.get("accept-language")))
                try:
                    response = await handler(request)
                except HTTPException:
                    raise  # FastAPI's own 4xx (e.g. a bad query value) keeps its status
                except Exception as exc:  # never a bare 500 with a stack trace
                    failure = _failure_for(exc)
                    if failure.status == 500:
                        log.exception("accounts route failed path=%s", request.url.path)
                    response = answer(request, failure)
                finally:
                    reset_locale(language)
                return ctx.sessions.attach_new_presession(request, response)

            return guarded

    return AccountsRoute


def build_accounts_router(
    deps: AuthDeps,
    settings: AccountSettings,
    sessions: SessionManager,
    store: AccountStore,
    sender: MessageSender,
    grants: GrantRevoker,
    *,
    hashing: PasswordHashing | None = None,
    notices: NoticeSink | None = None,
) -> APIRouter:
    ctx = build_ctx(deps, settings, sessions, store, sender, grants, hashing=hashing, notices=notices)
    router = APIRouter(route_class=_route_class(ctx), tags=["accounts"])
    for flow in FLOWS:
        flow(ctx).add_routes(router)
    add_admin_routes(router, ctx)
    return router


def build_ctx(
    deps: AuthDeps,
    settings: AccountSettings,
    sessions: SessionManager,
    store: AccountStore,
    sender: MessageSender,
    grants: GrantRevoker,
    *,
    hashing: PasswordHashing | None = None,
    notices: NoticeSink | None = None,
) -> Ctx:
    """The context every route (and the CLI) works with."""
    now = deps.now or store.now
    policy = LockoutPolicy(settings.login_max_failures, settings.login_failure_window_seconds,
                           settings.login_lockout_seconds)
    # Tokens are only verified here, never issued, so the lifetime does not matter.
    issuer = TokenIssuer(deps.keys, public_url=deps.public_url, access_token_ttl=0, now=now)
    return Ctx(deps, settings, sessions, store, sender, grants, hashing or PasswordHashing(),
               Lockout(deps.redis, policy, now, key=lambda u: store.box.digest("lockout", u.strip().casefold())),
               PageRenderer(deps.page_templates()), Auditor(deps.audit),
               BearerTokens(issuer, RevocationStore(deps.redis)), notices)
