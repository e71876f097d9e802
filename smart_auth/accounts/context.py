"""What every accounts page and flow needs, gathered once, plus the shared page helpers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import HTMLResponse

from locales import N_
from web import PageRenderer

from ..auditing import Auditor
from ..bearer import BearerTokens
from ..deps import AuthDeps
from ..request_bodies import read_form, require_csrf
from .lockout import Lockout
from .messaging import MessageSender, NoticeSink
from .passwords import PasswordHashing
from .sessions import PreSession, Session, SessionManager
from .settings import AccountSettings
from .store import AccountStore

log = logging.getLogger("smart_auth.accounts")

FORM_EXPIRED = N_("This form has expired. Please go back, reload the page and try again.")


class GrantRevoker(Protocol):
    """The part of smart_auth.grants.GrantStore the accounts use: end an account's grants (optionally for one
    patient, or all but those of one sign-in session)."""

    async def revoke_for(self, account_id: str, patient_id: str | None = None, *,
                         keep_session: str | None = None) -> int: ...


class EhrUnavailable(Exception):
    """The EHR could not be asked (down, timeout, refused)."""


class PostedForm(dict[str, str]):
    """The text fields of a posted form (read once, by `request_bodies.read_form`)."""

    def text(self, name: str) -> str:
        return self.get(name, "").strip()

    def raw(self, name: str) -> str:
        return self.get(name, "")


async def posted_form(request: Request) -> PostedForm:
    return PostedForm(await read_form(request))


@dataclass
class Ctx:
    deps: AuthDeps
    settings: AccountSettings
    sessions: SessionManager
    store: AccountStore
    sender: MessageSender
    grants: GrantRevoker
    hashing: PasswordHashing
    lockout: Lockout
    pages: PageRenderer
    auditor: Auditor
    bearer: BearerTokens
    notices: NoticeSink | None = None  # security notices by the app's notice queue (None: the sender's outbox)

    @property
    def now(self) -> Callable[[], float]:
        return self.deps.now or time.time

    def render(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        *,
        session: Session | PreSession | None = None,
        **context: Any,
    ) -> HTMLResponse:
        return self.pages.page(
            f"accounts/{template}", status_code, request=request,
            csrf_field=self.sessions.csrf_field(session) if session else "",
            signed_in=isinstance(session, Session), **context,
        )

    def message(self, request: Request, title: str, text: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
        return self.render(request, "message.html", status_code, title=title, text=text, alert=status_code >= 400,
                           **extra)

    async def audit(self, request: Request | None, kind: str, outcome: str, **fields: Any) -> None:
        """Record a security event; raises TemporarilyUnavailableError (nothing may happen unaudited)."""
        ip = request.client.host if request is not None and request.client else None
        request_id = request.headers.get("X-Request-Id") if request is not None else None
        await self.auditor(kind, outcome, source_ip=ip, request_id=request_id, **fields)

    async def ehr_read(self, resource_type: str, resource_id: str) -> dict | None:
        try:
            return await self.deps.ehr.read(resource_type, resource_id)
        except Exception as exc:  # transport errors and EHR refusals look the same to a person
            log.warning("EHR read of %s failed: %s", resource_type, type(exc).__name__)
            raise EhrUnavailable(resource_type) from exc


class CsrfCheck:
    """The one CSRF dependency of the accounts forms: the body must be a readable form carrying one of the
    browser's own session tokens (`FormExpired` otherwise; the route guard answers it)."""

    def __init__(self, sessions: SessionManager) -> None:
        self.sessions = sessions

    async def __call__(self, request: Request) -> None:
        await posted_form(request)  # a malformed body is a 400 before anything else is looked at
        await require_csrf(request, *await self.sessions.csrf_tokens(request))
