"""What every accounts route needs, gathered once, plus the shared page helpers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from ..deps import AuthDeps
from .lockout import Lockout
from .messaging import MessageSender
from .passwords import PasswordHashing
from .sessions import PreSession, Session, SessionManager
from .settings import AccountSettings
from .store import AccountStore

log = logging.getLogger("smart_auth.accounts")



class GrantRevoker(Protocol):
    """What we need of smart_auth.grants.GrantStore: kill an account's grants (optionally for one patient)."""

    async def revoke_for(self, account_id: str, patient_id: str | None = None) -> int: ...


class AuditUnavailable(Exception):
    """The audit sink refused an event; the operation must not go ahead unaudited."""


class EhrUnavailable(Exception):
    """The EHR could not be asked (down, timeout, refused)."""


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
    templates: Environment

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
        body = self.templates.get_template(f"accounts/{template}").render(
            request=request,
            csrf_field=self.sessions.csrf_field(session) if session else "",
            signed_in=isinstance(session, Session),
            **context,
        )
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
        return HTMLResponse(body, status_code=status_code, headers=headers)

    def message(self, request: Request, title: str, text: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
        return self.render(request, "message.html", status_code, title=title, text=text, alert=status_code >= 400,
                           **extra)

    async def audit(self, request: Request | None, kind: str, outcome: str, **fields: Any) -> None:
        ip = request.client.host if request is not None and request.client else None
        request_id = request.headers.get("X-Request-Id") if request is not None else None
        try:
            await self.deps.audit(kind, outcome, source_ip=ip, request_id=request_id, **fields)
        except Exception as exc:  # any sink failure: refuse to proceed unaudited
            log.error("audit sink failed for %s/%s: %s", kind, outcome, type(exc).__name__)
            raise AuditUnavailable(kind) from exc

    async def ehr_read(self, resource_type: str, resource_id: str) -> dict | None:
        try:
            return await self.deps.ehr.read(resource_type, resource_id)
        except Exception as exc:  # transport errors and EHR refusals look the same to a person
            log.warning("EHR read of %s failed: %s", resource_type, type(exc).__name__)
            raise EhrUnavailable(resource_type) from exc
