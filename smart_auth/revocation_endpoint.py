"""/auth/revoke (RFC 7009): a client revokes its own access or refresh tokens; 200 whether or not the
token was known."""

from __future__ import annotations

from typing import Any

from .auditing import Auditor
from .client_auth import ClientAuthenticator
from .endpoint import EndpointRequest, OAuthAnswer, OAuthEndpoint
from .errors import InvalidRequestError
from .store_protocols import GrantRecords, RevokedTokens
from .tokens import TokenIssuer


class RevocationEndpoint(OAuthEndpoint):
    audit_kind = "token.revoke"

    def __init__(self, audit: Auditor, *, client_auth: ClientAuthenticator, issuer: TokenIssuer,
                 grants: GrantRecords, revocations: RevokedTokens, url: str) -> None:
        super().__init__(audit)
        self.client_auth, self.issuer, self.grants, self.revocations, self.url = (
            client_auth, issuer, grants, revocations, url)

    async def process(self, request: EndpointRequest) -> OAuthAnswer:
        authed = await self.client_auth.authenticate_checked(request.headers, request.form, endpoint_url=self.url)
        request.client_id = authed.client.client_id
        token = request.form.get("token")
        if not token:
            raise InvalidRequestError(description="Missing token")
        revoked = await self.revoke(token, request.client_id)
        if revoked:
            await self.audit("token.revoke", "success", client_id=request.client_id,
                             patient_id=revoked.get("patient"), account_id=revoked.get("sub"),
                             source_ip=request.source_ip, request_id=request.request_id, detail=revoked["detail"])
        return OAuthAnswer()

    async def revoke(self, token: str, client_id: str) -> dict[str, Any] | None:
        """What was revoked (for the audit), or None when the token is unknown or another client's."""
        claims = self.issuer.verify(token, check_exp=False)
        if claims is not None:
            if claims.get("client_id") != client_id:
                return None
            await self.revocations.revoke_access_token(claims["jti"], claims.get("exp"))
            return {"patient": claims.get("patient"), "sub": claims.get("sub"),
                    "detail": f"access token jti={claims['jti']}"}
        grant = await self.grants.grant_for_refresh(token)
        if grant is None or grant.client_id != client_id:
            return None
        await self.grants.revoke(grant.grant_id)
        return {"patient": grant.patient, "sub": grant.account_id, "detail": f"refresh token; grant {grant.grant_id}"}
