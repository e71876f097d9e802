"""The portal's long-lived parts and the per-request `Visit` every page works with.

`Portal` is built once by the composition root from what it hands in (`PortalDeps`). A page is an
async function of a `Visit`: the signed-in person's portal session (tokens refreshed when close to
expiry), a FHIR client bound to this request, and `render` with the layout's context. The route class
turns what can go wrong into pages a person understands: not signed in -> sign-in and back; record
system down -> what is unavailable; anything unexpected -> a plain apology, never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from redis.asyncio import Redis
from redis.exceptions import RedisError

from locales import supported
from web import csrf_input, submitted_csrf_token, tokens_match
from web.i18n import browser_locale, current_locale, set_locale
from web.i18n import lazy_gettext as _l

from .client_registration import ClientRegistry, client_secret, ensure_registered
from .devices import device_words
from .fhir import PortalFhir
from .help_topics import help_url_for
from .menu import MENU_PAGE, is_current, top_places
from .safe_next import safe_next
from .sessions import PortalSession
from .settings import PortalUiSettings
from .signed_in_area import FormExpired, LoginRequired, SignedInArea, SignInSessions, request_id

log = logging.getLogger("portal")
TEMPLATES = Path(__file__).resolve().parent / "templates"
PREFIX = "/portal"


class AccountDirectory(Protocol):
    """smart_auth's AccountStore: caregiver links, for the caregivers page."""

    async def proxies_of_patient(self, patient_id: str) -> list[Any]: ...

    async def patients_for(self, account_id: str) -> list[Any]: ...

    async def display_preferences(self, account_id: str) -> Any: ...  # a DisplayPreferences

    async def save_display_preferences(self, account_id: str, preferences: Any) -> None: ...

    async def first_guide(self, account_id: str) -> bool: ...  # True the first time only

    async def notice_choices(self, account_id: str) -> tuple[str | None, set[str]]: ...

    async def set_notice_choices(self, account_id: str, email: str | None, off: set[str]) -> None: ...


class Notices(Protocol):
    """The app's notice queue (notifications.Notifications): queues "something new, here is the link"."""

    async def notify(self, to: str, kind: str, link: str, *, key: str | None = None) -> bool: ...


async def queue_notice(notices: Notices | None, patient_id: str, kind: str, link: str, *, key: str) -> None:
    """Queue a notice (mappers/notices.py kind; no PHI, only the link) for the patient's own account. A notice
    that cannot be queued is logged, never a reason to fail the page that asked for it."""
    if notices is None or not patient_id:
        return
    try:
        await notices.notify(f"Patient/{patient_id}", kind, link, key=key)
    except Exception as exc:
        log.warning("%s notice not queued: %s", kind, type(exc).__name__)


@dataclass
class PortalDeps:
    settings: PortalUiSettings
    redis: Redis
    clients: ClientRegistry
    signins: SignInSessions
    accounts: AccountDirectory
    sign_address: Callable[[str, str], str] | None = None
    app: Any = None  # the ASGI app itself, for the in-process transport
    now: Callable[[], float] | None = None
    payments: Any = None  # the PaymentProvider (payments.PaymentProvider): the card form hands it the card
    notices: Notices | None = None  # None: no notices (unit tests of pages)


# What a patient reads when a page cannot be shown (kinds: signed_in_area.PROBLEMS).
PATIENT_WORDS = {
    "expired": (_l("This form has expired"), _l("Please go back, reload the page and try again."), 400),
    "not-found": (_l("Page not found"), _l("We could not find that page in your record."), 404),
    "not-offered": (_l("Not offered here"), _l("Your clinic's health record system does not offer this yet."), 501),
    "unavailable": (_l("We can't show this right now"), _l("The health record system is not answering at the "
                    "moment. Your information is safe. Please try again in a few minutes."), 503),
    "dependency": (_l("We can't show this right now"), _l("Part of the portal is not working at the moment. Please "
                   "try again in a few minutes."), 503),
    "unexpected": (_l("Sorry, something went wrong"), _l("Please try again. If it keeps happening, call the clinic."),
                   500),
}


class Portal(SignedInArea):
    deps: PortalDeps
    settings: PortalUiSettings

    def __init__(self, deps: PortalDeps) -> None:
        self.secret = client_secret(deps.settings.state_dir)
        env = self.assemble(deps, secret=self.secret, templates=TEMPLATES, namespace="portal", cookie_path=PREFIX,
                            login_cookie="portal_login", problem_words=PATIENT_WORDS)
        env.globals.update(top_places=top_places(), menu_page=MENU_PAGE, is_current=is_current)
        env.filters["device"] = lambda described: device_words(described, current_locale())

    # -- lifecycle ----------------------------------------------------------------------------------
    async def ensure_client(self) -> None:
        if not self._registered:
            await ensure_registered(self.deps.clients, self.settings)
            self._registered = True

    async def start(self) -> None:
        try:
            await self.ensure_client()
        except RedisError:
            log.warning("portal client registration deferred: the state Redis is not reachable")

    async def close(self) -> None:
        await self.http.aclose()

    def fhir_for(self, request: Request, access_token: str) -> PortalFhir:
        return PortalFhir(self.http, self.fhir_base, access_token, request_id=request_id(request),
                          client_address=request.client.host if request.client else None,
                          sign_address=self.deps.sign_address)

    def browser_locale(self, request: Request) -> str:
        """Before the session is read (and on pages without one): this browser's language switch, else what
        the browser asks for, else English."""
        return browser_locale(request.cookies, request.headers.get("accept-language")) or "en"

    async def visit(self, request: Request) -> Visit:
        session = await self.current_session(request)
        if session is None:
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        session = await self.fresh_tokens(request, session)
        set_locale(session_locale(session))  # the route guard undoes it when the request ends
        return Visit(self, request, session, self.fhir_for(request, session.tokens.access_token))

    # -- pages ----------------------------------------------------------------------------------------
    def login_redirect(self, next_url: str) -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': safe_next(next_url)})}", status_code=303)

    def message(self, request: Request, title: str, text: str, status: int = 200, *,
                session: PortalSession | None = None, **extra: Any) -> Response:
        return self.renderer.page("portal/message.html", status, title=title, text=text,
                                  **layout_context(self, request, session), **extra)

    def page(self, fn: Callable[[Visit], Awaitable[Response]]) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """An endpoint for a page that needs a signed-in person."""
        async def endpoint(request: Request) -> Response:
            visit = await self.visit(request)
            return await fn(visit)
        endpoint.__name__ = fn.__name__
        endpoint.__doc__ = fn.__doc__
        return endpoint


@dataclass
class Visit:
    """One signed-in page request."""

    portal: Portal
    request: Request
    session: PortalSession
    fhir: PortalFhir
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def patient_id(self) -> str:
        return self.session.patient_id

    @property
    def locale(self) -> str:
        """The language this person reads the portal in (for dates a page words before rendering)."""
        return session_locale(self.session)

    async def notify(self, kind: str, link: str, *, key: str) -> None:
        """Queue a notice to the patient whose record is open (see `queue_notice`)."""
        await queue_notice(self.portal.deps.notices, self.patient_id, kind, link, key=key)

    async def check_csrf(self) -> None:
        if not tokens_match(await submitted_csrf_token(self.request), self.session.csrf_token):
            raise FormExpired()

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        stale = self.fhir.staleness
        return self.portal.renderer.page(
            template, status, **layout_context(self.portal, self.request, self.session),
            stale=list(dict.fromkeys(stale.stale)), stale_age=stale.oldest_age, **context)


def layout_context(portal: Portal, request: Request, session: PortalSession | None) -> dict[str, Any]:
    """What the portal's layout needs on every page: navigation, the open record's banner, the CSRF field."""
    return {
        "request": request,
        "lang": session_locale(session) if session else current_locale(),
        "path": request.url.path,
        "session": session,
        "csrf_token": session.csrf_token if session else "",
        "csrf_field": csrf_input(session.csrf_token) if session else "",
        "display_classes": display_classes(session),
        "help_url": help_url_for(request.url.path),
    }


def session_locale(session: PortalSession) -> str:
    """The language chosen for this session when it was opened, or since with the switch."""
    return supported(session.extra.get("lang")) or "en"


def display_classes(session: PortalSession | None) -> str:
    """The account's display settings as classes on the page's root element (the stylesheet does the rest:
    no inline style under the strict CSP)."""
    display = (session.extra.get("display") if session else None) or {}
    classes = []
    if display.get("text_size") == "large":
        classes.append("text-large")
    if display.get("contrast") == "high":
        classes.append("contrast-high")
    return " ".join(classes)
