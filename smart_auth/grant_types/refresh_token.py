"""refresh_token (RFC 6749 §6): the refresh token rotates on every use; a rotated one presented again
revokes the whole grant (OAuth 2.0 Security BCP §4.14.2).

A public client may refresh with only `grant_type` and `refresh_token` (what the JavaScript fhirclient
sends): the token is bound to its client, and RFC 6749 §6 asks authentication only of confidential
clients. A confidential client must still authenticate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..client_auth import AuthenticatedClient
from ..errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from ..grants import GrantRecord
from .base import BaseGrant, TokenRequest


class RefreshTokenGrant(BaseGrant):
    grant_type = "refresh_token"

    async def implicit_client(self, form: Mapping[str, str]) -> AuthenticatedClient | None:
        presented = form.get("refresh_token")
        grant = await self.ctx.grants.grant_for_refresh(presented) if presented else None
        client = await self.ctx.clients.get(grant.client_id) if grant else None
        return AuthenticatedClient(client, "none") if client is not None and client.is_public else None

    async def _require_live_session(self, grant: GrantRecord) -> None:
        """online_access lasts only as long as the sign-in session: one that ended by idling out (its
        Redis key expired, so nothing called the sign-out hook) ends the grant at its next refresh."""
        alive = self.ctx.session_alive
        if not grant.online or not grant.session_id or alive is None or await alive(grant.session_id):
            return
        await self.ctx.grants.revoke(grant.grant_id)
        raise InvalidGrantError(description="The sign-in session behind this grant has ended")

    async def issue(self, request: TokenRequest) -> dict[str, Any]:
        form, client = request.form, request.client.client
        presented = form.get("refresh_token")
        if not presented:
            raise InvalidRequestError(description="Missing refresh_token")
        grant = await self.ctx.grants.grant_for_refresh(presented)
        if grant is None or grant.client_id != client.client_id:
            raise InvalidGrantError(description="The refresh token is invalid")
        if grant.status != "active":
            raise InvalidGrantError(description="The grant was revoked")
        if grant.refresh_exp < self.ctx.now():
            raise InvalidGrantError(description="The refresh token has expired")
        await self._require_live_session(grant)

        scope = grant.scope
        if form.get("scope"):
            asked = form["scope"].split()
            if not set(asked) <= set(grant.scope.split()):
                raise InvalidScopeError(description="A refresh may only narrow the granted scopes")
            scope = " ".join(asked)

        settings = self.ctx.settings
        refresh_ttl = settings.online_refresh_token_ttl if grant.online else settings.refresh_token_ttl
        new_token = self.new_refresh_token()
        if not await self.ctx.grants.rotate(grant, presented, new_token, refresh_ttl):
            await self.ctx.grants.revoke(grant.grant_id)
            await self.ctx.audit(
                "token.refresh_reuse", "failure", account_id=grant.account_id, client_id=client.client_id,
                patient_id=grant.patient, source_ip=request.source_ip, request_id=request.request_id,
                detail=f"rotated refresh token reused; grant {grant.grant_id} revoked",
            )
            raise InvalidGrantError(description="The refresh token was already used; the grant is revoked")

        body, claims = self.ctx.issuer.response(
            self.subject_of(grant, scope), refresh_token=new_token, need_patient_banner=grant.need_patient_banner,
            smart_style_url=self.style_url(),
        )
        await self.audit_issue(request, grant, "token.refresh", f"grant={grant.grant_id} jti={claims['jti']}")
        return body
