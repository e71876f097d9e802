"""What every grant class receives: the stores, the token issuer, settings and the auditor."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..auditing import Auditor
from ..client_auth import AuthenticatedClient
from ..codes import CodeStore
from ..grants import GrantStore
from ..settings import AuthSettings
from ..tokens import TokenIssuer


@dataclass
class GrantContext:
    settings: AuthSettings
    grants: GrantStore
    codes: CodeStore
    issuer: TokenIssuer
    audit: Auditor


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

    @staticmethod
    def new_refresh_token() -> str:
        return secrets.token_urlsafe(32)
