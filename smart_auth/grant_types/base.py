"""What every grant class receives: the stores (as protocols), the token issuer, settings and the auditor."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..auditing import Auditor
from ..client_auth import AuthenticatedClient
from ..grants import GrantRecord
from ..settings import AuthSettings
from ..store_protocols import ClientRegistry, CodeRecords, GrantRecords, RevokedTokens
from ..tokens import Subject, TokenIssuer


@dataclass
class GrantContext:
    settings: AuthSettings
    grants: GrantRecords
    codes: CodeRecords
    revocations: RevokedTokens
    clients: ClientRegistry
    issuer: TokenIssuer
    audit: Auditor
    now: Callable[[], float]
    style_url: str | None = None  # smart_style_url in token responses
    # Whether a sign-in session still exists; None = sessions are not tracked (online grants then end
    # only when the session is ended explicitly).
    session_alive: Callable[[str], Awaitable[bool]] | None = None


@dataclass
class TokenRequest:
    form: Mapping[str, str]
    client: AuthenticatedClient
    source_ip: str | None = None
    request_id: str | None = None


class BaseGrant:
    grant_type: ClassVar[str]

    def __init__(self, ctx: GrantContext) -> None:
        self.ctx = ctx

    async def issue(self, request: TokenRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def implicit_client(self, form: Mapping[str, str]) -> AuthenticatedClient | None:
        """The client this request identifies by itself when it names none (only refresh tokens do)."""
        return None

    @staticmethod
    def new_refresh_token() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def subject_of(grant: GrantRecord, scope: str) -> Subject:
        return Subject(
            sub=grant.account_id, client_id=grant.client_id, scope=scope, grant_id=grant.grant_id,
            fhir_user=grant.fhir_user, patient=grant.patient, encounter=grant.encounter,
            on_behalf_of=grant.on_behalf_of,
        )

    def style_url(self) -> str | None:
        return self.ctx.style_url

    async def audit_issue(self, request: TokenRequest, grant: GrantRecord, kind: str, detail: str) -> None:
        """Record the issue; when that fails the grant is revoked, so no unaudited token stays alive."""
        try:
            await self.ctx.audit(
                kind, "success", account_id=grant.account_id, fhir_user=grant.fhir_user,
                client_id=grant.client_id, patient_id=grant.patient, on_behalf_of=grant.on_behalf_of,
                source_ip=request.source_ip, request_id=request.request_id, detail=detail,
            )
        except Exception:
            await self.ctx.grants.revoke(grant.grant_id)
            raise
