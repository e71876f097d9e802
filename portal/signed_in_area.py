"""What every signed-in area of the web app shares (the patient portal, the staff area): its cookie, its
server-side sessions held together with the person's one sign-in, and its tokens refreshed one at a time.

An area subclasses `SignedInArea`, builds its parts with `assemble` (its own client secret and scopes, its
templates, its session namespace, cookie and words for problems), and gives `ensure_client` and `message`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment
from redis.exceptions import RedisError

from web import PageRenderer, make_environment
from web.i18n import gettext, reset_locale, set_locale

from .clock import Clock
from .fhir import NotFound, NotSupported, RecordUnavailable, Refused, SessionEnded
from .gateway_client import gateway_base, make_gateway_http
from .oauth import SCOPES, OAuthFailure, PortalOAuth, new_pkce
from .sessions import PendingLogin, PortalSession, SessionStore
from .token_box import TokenBox

log = logging.getLogger("portal.area")


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class FormExpired(Exception):
    """A state-changing form came without the session's CSRF token."""


# What went wrong on a page, by kind; each area words each kind for its own people (`problem_words`).
PROBLEMS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (FormExpired, "expired"),
    ((NotFound, Refused), "not-found"),
    (NotSupported, "not-offered"),
    (RecordUnavailable, "unavailable"),
    ((RedisError, OAuthFailure, httpx.HTTPError), "dependency"),
)


class SignInSessions(Protocol):
    """smart_auth's SessionManager: the person's one sign-in (password + second factor)."""

    async def current(self, request: Any) -> Any: ...  # a session with `.account` (id, kind, ...) or None

    async def end(self, request: Any, response: Any) -> Any: ...


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def capitalize_first(text: Any) -> str:
    """`tomorrow at 9:30 am` -> `Tomorrow at 9:30 am` (Jinja's `capitalize` would lower the rest)."""
    value = str(text or "")
    return value[:1].upper() + value[1:]


def request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return str(rid) if rid else uuid.uuid4().hex


class SignedInArea:
    settings: Any  # cookie_name, https, refresh_margin_seconds
    store: SessionStore
    oauth: PortalOAuth
    signins: SignInSessions
    now: Callable[[], float]
    cookie_path: str
    login_cookie: str  # ties a sign-in's callback to the browser that started it
    problem_words: Mapping[str, tuple[str, str, int]]  # kind -> (title, text, status); see PROBLEMS

    def assemble(self, deps: Any, *, secret: str, templates: Path, namespace: str, cookie_path: str,
                 login_cookie: str, problem_words: Mapping[str, tuple[str, str, int]],
                 scopes: str = SCOPES) -> Environment:
        """Build the parts every area has from the composition root's `deps` (settings, redis, signins, app,
        now); returns the area's template environment for it to add its own globals to."""
        settings = deps.settings
        self.deps = deps
        self.settings = settings
        self.now = deps.now or time.time
        self.http = make_gateway_http(settings, deps.app)
        self.fhir_base = gateway_base(settings) + "/fhir"
        self.oauth = PortalOAuth(self.http, settings, secret, now=self.now, scopes=scopes)
        self.store = SessionStore(deps.redis, TokenBox.load_or_create(settings.state_dir),
                                  idle_seconds=settings.idle_timeout_seconds,
                                  max_seconds=settings.max_session_seconds, login_ttl=settings.login_ttl_seconds,
                                  now=self.now, namespace=namespace)
        self.clock = Clock(ZoneInfo(settings.timezone), self.now, getattr(settings, "region", "US"))
        env = make_environment([templates])
        self.clock.install(env)
        env.filters["capitalize_first"] = capitalize_first
        self.renderer = PageRenderer(env, {"idle_timeout": settings.idle_timeout_seconds,
                                           "idle_warning": settings.idle_warning_seconds})
        self._registered = False
        self.signins = deps.signins
        self.cookie_path = cookie_path
        self.login_cookie = login_cookie
        self.problem_words = problem_words
        return env

    async def ensure_client(self) -> None: ...

    def message(self, request: Request, title: str, text: str, status: int = 200, **extra: Any) -> Response: ...

    def login_redirect(self, next_url: str) -> Response: ...

    def browser_locale(self, request: Request) -> str:
        """The language of a page before the person's session is known (an area in one language: English)."""
        return "en"

    def problem_kind(self, exc: Exception) -> str:
        """Which kind of problem `exc` is (an area adds its own kinds by overriding this)."""
        return next((kind for types, kind in PROBLEMS if isinstance(exc, types)), "unexpected")

    def route_class(self) -> type[APIRoute]:
        """Routes whose failures become this area's pages in words: never a stack trace, never a bare 500."""
        area = self

        class AreaRoute(APIRoute):
            def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
                handler = super().get_route_handler()

                async def guarded(request: Request) -> Response:
                    # This request's language, for its pages and messages; the session narrows it once
                    # it is read (Portal.visit), and it ends with the request.
                    language = set_locale(area.browser_locale(request))
                    try:
                        return await handler(request)
                    except LoginRequired as exc:
                        return area.login_redirect(exc.next_url)
                    except SessionEnded:
                        response = area.login_redirect(request.url.path)
                        area.clear_cookie(response)
                        return response
                    except Exception as exc:
                        kind = area.problem_kind(exc)
                        if kind == "dependency":
                            log.warning("dependency failed path=%s", request.url.path, exc_info=True)
                        elif kind == "unexpected":
                            log.exception("page failed path=%s", request.url.path)
                        title, text, status = area.problem_words[kind]
                        return area.message(request, title, text, status)
                    finally:
                        reset_locale(language)

                return guarded

        return AreaRoute

    # -- signing in (authorization code + PKCE, done by the server) -----------------------------------
    async def begin_login(self, request: Request, next_url: str) -> Response:
        """Send the browser to /auth/authorize (or straight on when it is signed in already)."""
        if await self.current_session(request, touch=False) is not None:
            return RedirectResponse(next_url, status_code=303)
        await self.ensure_client()
        verifier, challenge = new_pkce()
        state = secrets.token_urlsafe(24)
        browser = secrets.token_urlsafe(24)
        await self.store.start_login(state, PendingLogin(verifier, next_url, _digest(browser)))
        response = RedirectResponse(self.oauth.authorize_url(state, challenge), status_code=303)
        # Ties the callback to the browser that started it (no one else's code can be planted here).
        response.set_cookie(self.login_cookie, browser, max_age=self.settings.login_ttl_seconds, httponly=True,
                            samesite="lax", secure=self.settings.https, path=f"{self.cookie_path}/callback")
        return response

    async def pending_login(self, request: Request) -> PendingLogin | None:
        """The sign-in this callback finishes, when this very browser started it (once only)."""
        pending = await self.store.finish_login(request.query_params.get("state", ""))
        browser = request.cookies.get(self.login_cookie)
        if pending is None or not browser or not secrets.compare_digest(_digest(browser), pending.browser):
            return None
        return pending

    def start_again(self, request: Request, title: str, text: str, status: int = 400) -> Response:
        response = self.message(request, title, text, status, action_url=f"{self.cookie_path}/login",
                                action_text=gettext("Sign in again"))
        response.delete_cookie(self.login_cookie, path=f"{self.cookie_path}/callback")
        return response

    def cookie(self, request: Request) -> str | None:
        return request.cookies.get(self.settings.cookie_name)

    def set_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(self.settings.cookie_name, value, httponly=True, samesite="lax",
                            secure=self.settings.https, path=self.cookie_path)

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(self.settings.cookie_name, path=self.cookie_path, secure=self.settings.https,
                               httponly=True, samesite="lax")

    async def end_session(self, session: PortalSession, rid: str | None = None) -> None:
        """Revoke the session's tokens and forget it."""
        await self.store.drop(session)
        await self.oauth.revoke(session.tokens, rid)

    async def current_session(self, request: Request, *, touch: bool = True) -> PortalSession | None:
        """The live session of this browser, held together with its sign-in session: when the person's
        sign-in has ended (signed out elsewhere, timed out) this session ends too."""
        session = await self.store.load(self.cookie(request), touch=touch)
        if session is None:
            return None
        signin = await self.signins.current(request)
        if signin is None or signin.account.id != session.account_id:
            await self.end_session(session, request_id(request))
            return None
        return session

    async def fresh_tokens(self, request: Request, session: PortalSession) -> PortalSession:
        """Refresh the access token shortly before it expires. One refresh per session at a time: a
        rotated refresh token presented twice would revoke the whole grant."""
        margin = self.settings.refresh_margin_seconds
        if session.tokens.expires_at - self.now() > margin:
            return session
        for _ in range(50):
            if await self.store.refresh_lock(session):
                try:
                    latest = await self.store.reload(session) or session
                    if latest.tokens.expires_at - self.now() > margin:
                        return latest  # another request refreshed while we waited
                    try:
                        latest.tokens = await self.oauth.refresh(latest.tokens, request_id(request))
                    except OAuthFailure as exc:
                        if exc.error == "temporarily_unavailable" and latest.tokens.expires_at > self.now():
                            return latest  # still valid for a moment; try again on the next page
                        await self.store.drop(latest)
                        raise SessionEnded("refresh") from exc
                    await self.store.save(latest)
                    return latest
                finally:
                    await self.store.refresh_unlock(session)
            await asyncio.sleep(0.1)
        return await self.store.reload(session) or session
