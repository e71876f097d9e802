"""client_credentials for SMART Backend Services: private_key_jwt only, `system/` scopes only."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidScopeError, UnauthorizedClientError
from ..scope_policy import allowed_for_client, parse_requested, system_only
from ..tokens import Subject
from .base import BaseGrant, TokenRequest


class ClientCredentialsGrant(BaseGrant):
    grant_type = "client_credentials"

    async def issue(self, request: TokenRequest) -> dict[str, Any]:
        client = request.client.client
        if request.client.method != "private_key_jwt":
            raise UnauthorizedClientError(
                description="client_credentials requires a private_key_jwt client assertion"
            )
        requested = parse_requested(request.form.get("scope"))
        if not requested:
            raise InvalidScopeError(description="scope is required")
        if not system_only(requested):
            raise InvalidScopeError(description="client_credentials grants only system/ scopes")
        allowed = allowed_for_client(client, requested)
        if allowed != requested:
            raise InvalidScopeError(description="scope exceeds what this client is registered for")
        scope = " ".join(requested)
        subject = Subject(sub=client.client_id, client_id=client.client_id, scope=scope)
        body, claims = self.ctx.issuer.response(subject)
        try:
            await self.ctx.audit(
                "token.issue", "success", client_id=client.client_id, source_ip=request.source_ip,
                request_id=request.request_id, detail=f"client_credentials jti={claims['jti']} scope={scope}",
            )
        except Exception:
            await self.ctx.revocations.revoke_access_token(claims["jti"], claims["exp"])  # never unaudited
            raise
        return body
