"""Builds the accounts router: enrolment, sign-in/out, reset, proxies, admin invitations.

Audit and EHR failures anywhere in a route become a clear error page (or RFC 6749-style JSON on the
API paths) instead of a bare 500 or an unaudited change.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from ..deps import AuthDeps
from .admin import add_admin_routes
from .context import AuditUnavailable, Ctx, EhrUnavailable, GrantRevoker, log
from .enrolment import add_enrolment_routes
from .lockout import Lockout, LockoutPolicy
from .messaging import MessageSender
from .passwords import PasswordHashing
from .proxies import add_proxy_routes
from .sessions import SessionManager
from .settings import AccountSettings
from .signin import add_signin_routes
from .store import AccountStore

JSON_PREFIXES = ("/auth/api/", "/auth/admin/")


def _route_class(ctx: Ctx) -> type[APIRoute]:
    class AccountsRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except AuditUnavailable:
                    return _failure(request, 503, "temporarily_unavailable",
                                    "Security logging is unavailable, so nothing was changed. Please try again later.")
                except EhrUnavailable:
                    return _failure(request, 503, "temporarily_unavailable",
                                    "The health record system is not reachable right now. Please try again later.")
                except Exception:  # never a bare 500 with a stack trace
                    log.exception("accounts route failed path=%s", request.url.path)
                    return _failure(request, 500, "server_error", "Something went wrong. Please try again later.")

            return guarded

    def _failure(request: Request, status: int, error: str, text: str) -> Response:
        if request.url.path.startswith(JSON_PREFIXES):
            return JSONResponse({"error": error, "error_description": text}, status_code=status,
                                headers={"Cache-Control": "no-store"})
        return ctx.message(request, "Sorry, that did not work", text, status)

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
) -> APIRouter:
    ctx = build_ctx(deps, settings, sessions, store, sender, grants, hashing=hashing)
    router = APIRouter(route_class=_route_class(ctx), tags=["accounts"])
    add_signin_routes(router, ctx)
    add_enrolment_routes(router, ctx)
    add_proxy_routes(router, ctx)
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
) -> Ctx:
    """The context every route (and the CLI) works with."""
    now = deps.now or store.now
    policy = LockoutPolicy(settings.login_max_failures, settings.login_failure_window_seconds,
                           settings.login_lockout_seconds)
    return Ctx(deps, settings, sessions, store, sender, grants, hashing or PasswordHashing(),
               Lockout(deps.redis, policy, now), deps.page_templates())
