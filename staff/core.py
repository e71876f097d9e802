"""The staff area's long-lived parts and the per-request `StaffVisit` every staff page works with.

The same backend-for-frontend design as the patient portal (portal.core): its own confidential client,
sessions held server-side (under their own Redis namespace and cookie, so a staff session and a patient
session in one browser never mix), tokens refreshed there, and a FHIR client of our own /fhir. What is
different: the person is a Practitioner, no patient is bound to the token, and the person's staff role
(read from their PractitionerRole at sign-in) decides which queues they work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from redis.asyncio import Redis
from redis.exceptions import RedisError

from portal.core import FormExpired, LoginRequired, Notices, queue_notice
from portal.fhir import PortalFhir
from portal.safe_next import safe_next
from portal.sessions import PortalSession
from portal.signed_in_area import SignedInArea, SignInSessions, request_id
from web import csrf_input, submitted_csrf_token, tokens_match

from .client_registration import SCOPES, ensure_staff_client, staff_secret
from .roles import may_work, queues_for
from .settings import PREFIX, StaffUiSettings

log = logging.getLogger("staff")
TEMPLATES = Path(__file__).resolve().parent / "templates"
# How a request made under break-the-glass names its patient and reason to the gateway (which records it).
BREAK_GLASS_PATIENT = "X-Break-Glass-Patient"
BREAK_GLASS_REASON = "X-Break-Glass-Reason"


@dataclass
class StaffDeps:
    settings: StaffUiSettings
    redis: Redis
    clients: Any  # portal.client_registration.ClientRegistry
    signins: SignInSessions
    sign_address: Callable[[str, str], str] | None = None
    app: Any = None  # the ASGI app itself, for the in-process transport
    now: Callable[[], float] | None = None
    extra: dict[str, Any] | None = None  # what other staff pages need handed in
    notices: Notices | None = None  # the patient's "something new" e-mails; None: none (unit tests of pages)


class WrongRole(Exception):
    """A page of a queue this person's role does not work."""


# What staff read when a page cannot be shown (kinds: portal.signed_in_area.PROBLEMS, and "wrong-role").
STAFF_WORDS = {
    "expired": ("This form has expired", "Please go back, reload the page and try again.", 400),
    "wrong-role": ("Not part of your work", "Your role does not work this queue. Ask a colleague who does.", 403),
    "not-found": ("Page not found", "We could not find that record.", 404),
    "not-offered": ("Not offered here", "The health record system does not offer this.", 501),
    "unavailable": ("We can't show this right now", "The health record system is not answering. Try again in a "
                    "few minutes.", 503),
    "dependency": ("We can't show this right now", "Part of the portal is not working. Try again in a few "
                   "minutes.", 503),
    "unexpected": ("Sorry, something went wrong", "Please try again.", 500),
}


class StaffArea(SignedInArea):
    deps: StaffDeps
    settings: StaffUiSettings

    def __init__(self, deps: StaffDeps) -> None:
        env = self.assemble(deps, secret=staff_secret(deps.settings), scopes=SCOPES, templates=TEMPLATES,
                            namespace="staff", cookie_path=PREFIX, login_cookie="staff_login",
                            problem_words=STAFF_WORDS)
        env.globals.update(staff_prefix=PREFIX, queues_for=queues_for, product_name="Staff portal")

    # -- lifecycle ----------------------------------------------------------------------------------
    async def ensure_client(self) -> None:
        if not self._registered:
            await ensure_staff_client(self.deps.clients, self.settings)
            self._registered = True

    async def start(self) -> None:
        try:
            await self.ensure_client()
        except RedisError:
            log.warning("staff client registration deferred: the state Redis is not reachable")

    async def close(self) -> None:
        await self.http.aclose()

    def fhir_for(self, request: Request, access_token: str, *,
                 break_glass: tuple[str, str] | None = None) -> PortalFhir:
        headers = None
        if break_glass:
            patient_id, reason = break_glass
            headers = {BREAK_GLASS_PATIENT: patient_id, BREAK_GLASS_REASON: quote(reason, safe="")}
        return PortalFhir(self.http, self.fhir_base, access_token, request_id=request_id(request),
                          client_address=request.client.host if request.client else None,
                          sign_address=self.deps.sign_address, extra_headers=headers)

    async def visit(self, request: Request) -> StaffVisit:
        session = await self.current_session(request)
        if session is None:
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        session = await self.fresh_tokens(request, session)
        return StaffVisit(self, request, session, self.fhir_for(request, session.tokens.access_token))

    # -- pages ----------------------------------------------------------------------------------------
    def login_redirect(self, next_url: str) -> RedirectResponse:
        target = safe_next(next_url)
        if not target.startswith(PREFIX):
            target = PREFIX + "/"
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': target})}", status_code=303)

    def message(self, request: Request, title: str, text: str, status: int = 200, *,
                session: PortalSession | None = None, **extra: Any) -> Response:
        return self.renderer.page("staff/message.html", status, title=title, text=text,
                                  **staff_layout(request, session), **extra)

    def problem_kind(self, exc: Exception) -> str:
        return "wrong-role" if isinstance(exc, WrongRole) else super().problem_kind(exc)

    def page(self, fn: Callable[[StaffVisit], Awaitable[Response]], *, queue: str | None = None
             ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """An endpoint for a page that needs a signed-in member of staff (and, with ``queue``, a role that
        works that queue)."""
        async def endpoint(request: Request) -> Response:
            visit = await self.visit(request)
            if queue is not None:
                visit.require(queue)
            return await fn(visit)
        endpoint.__name__ = fn.__name__
        endpoint.__doc__ = fn.__doc__
        return endpoint


@dataclass
class StaffVisit:
    """One signed-in staff page request."""

    area: StaffArea
    request: Request
    session: PortalSession
    fhir: PortalFhir

    @property
    def practitioner(self) -> str:
        return self.session.fhir_user  # Practitioner/<id>

    @property
    def role(self) -> str:
        return str(self.session.extra.get("role") or "")

    def require(self, queue: str) -> None:
        if not may_work(self.role, queue):
            raise WrongRole(queue)

    async def check_csrf(self) -> None:
        if not tokens_match(await submitted_csrf_token(self.request), self.session.csrf_token):
            raise FormExpired()

    async def notify_patient(self, patient_id: str, kind: str, link: str, *, key: str) -> None:
        """Tell the patient there is something new (a reply, a decision): a link, never what it says."""
        await queue_notice(self.area.deps.notices, patient_id, kind, link, key=key)

    def glass_reason(self, patient_id: str) -> str | None:
        """The reason this person gave to break the glass for this patient in this session, if they did."""
        return (self.session.extra.get("glass") or {}).get(patient_id)

    def fhir_about(self, patient_id: str) -> PortalFhir:
        """The FHIR client for pages about one patient: under break-the-glass when the person broke it
        for this patient in this session (every request then carries the reason to the audit trail)."""
        reason = self.glass_reason(patient_id)
        if not reason:
            return self.fhir
        return self.area.fhir_for(self.request, self.session.tokens.access_token, break_glass=(patient_id, reason))

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return self.area.renderer.page(template, status, **staff_layout(self.request, self.session), **context)


def staff_layout(request: Request, session: PortalSession | None) -> dict[str, Any]:
    """What the staff layout needs on every page: who is signed in, their role's queues, the CSRF field."""
    role = str(session.extra.get("role") or "") if session else ""
    return {
        "request": request,
        "path": request.url.path,
        "session": session,
        "staff_name": session.patient_name if session else "",  # a staff session's name is the person's own
        "role": role,
        "role_label": str(session.extra.get("role_label") or "") if session else "",
        "team_name": str(session.extra.get("team_name") or "") if session else "",
        "queues": queues_for(role),
        "csrf_token": session.csrf_token if session else "",
        "csrf_field": csrf_input(session.csrf_token) if session else "",
    }
