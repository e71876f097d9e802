"""What the authorization server needs from the outside, handed in by the composition root.

smart_auth never imports fhir_gateway or audit: the EHR client and the audit sink arrive as objects
that satisfy these protocols.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from jinja2 import Environment
from redis.asyncio import Redis

from .keys import KeyStore


class EhrClient(Protocol):
    """The subset of the gateway's upstream client that smart_auth uses (Patient lookups, RelatedPerson)."""

    async def read(self, resource_type: str, resource_id: str, request_id: str | None = None) -> dict | None: ...

    async def search(self, resource_type: str, params: Any, request_id: str | None = None) -> dict: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response: ...


class AuthAuditSink(Protocol):
    """Records one security event (sign-in, failure, lockout, enrolment, consent, token issue/refresh/revoke,
    proxy grant/withdrawal). Raises if the event cannot be recorded durably."""

    def __call__(
        self,
        kind: str,
        outcome: str,  # "success" | "failure"
        *,
        account_id: str | None = None,
        fhir_user: str | None = None,
        client_id: str | None = None,
        patient_id: str | None = None,
        on_behalf_of: str | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        detail: str | None = None,
    ) -> Awaitable[None]: ...


@dataclass
class AuthDeps:
    redis: Redis
    keys: KeyStore
    ehr: EhrClient
    audit: AuthAuditSink
    public_url: str  # e.g. http://127.0.0.1:8000 ; issuer = public_url ; aud = public_url + "/fhir"
    state_dir: Any  # pathlib.Path
    now: Callable[[], float] | None = None  # injectable clock for tests; None = time.time
    # The product's one template environment (shared layout); None = one over smart_auth's own pages.
    templates: Environment | None = None

    def page_templates(self) -> Environment:
        if self.templates is None:
            from .pages import make_auth_templates

            self.templates = make_auth_templates()
        return self.templates
