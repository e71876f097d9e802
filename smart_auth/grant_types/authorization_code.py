"""authorization_code with PKCE S256 (RFC 6749 §4.1.3, RFC 7636 §4.6); codes are single-use."""

from __future__ import annotations

import hmac
from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN

from ..codes import CodeData
from ..errors import InvalidGrantError, InvalidRequestError
from ..grants import GrantRecord
from ..scopes import ScopeSet
from .base import BaseGrant, TokenRequest


class AuthorizationCodeGrant(BaseGrant):
    grant_type = "authorization_code"

    async def issue(self, request: TokenRequest) -> dict[str, Any]:
        data = await self._redeem(request)
        client = request.client.client
        granted = ScopeSet.parse(data.scope)
        refresh_token: str | None = None
        online = False
        if "refresh_token" in client.grant_types and (granted.has("offline_access") or granted.has("online_access")):
            refresh_token = self.new_refresh_token()
            online = not granted.has("offline_access")
        settings = self.ctx.settings
        grant = GrantRecord(
            grant_id=data.grant_id, client_id=client.client_id, account_id=data.account_id, scope=data.scope,
            fhir_user=data.fhir_user, patient=data.patient, encounter=data.encounter,
            on_behalf_of=data.on_behalf_of, session_id=data.session_id, online=online,
            need_patient_banner=data.need_patient_banner,
        )
        body, claims = self.ctx.issuer.response(
            self.subject_of(grant, data.scope), refresh_token=refresh_token, nonce=data.nonce,
            auth_time=data.auth_time, need_patient_banner=data.need_patient_banner,
            smart_style_url=self.style_url(),
        )
        await self.ctx.grants.create(
            grant, refresh_token, settings.online_refresh_token_ttl if online else settings.refresh_token_ttl
        )
        await self.audit_issue(request, grant, "token.issue",
                               f"authorization_code grant={data.grant_id} jti={claims['jti']} scope={data.scope}")
        return body

    async def _redeem(self, request: TokenRequest) -> CodeData:
        """The code's authorization request, once: checked against the client, redirect_uri and PKCE."""
        form, client = request.form, request.client.client
        code, redirect_uri, verifier = form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
        if not code:
            raise InvalidRequestError(description="Missing code")
        if not redirect_uri:
            raise InvalidRequestError(description="Missing redirect_uri")
        if not verifier:
            raise InvalidRequestError(description="Missing code_verifier (PKCE is required)")
        if not CODE_VERIFIER_PATTERN.match(verifier):
            raise InvalidRequestError(description="Malformed code_verifier")
        redemption = await self.ctx.codes.redeem(code)
        if redemption.reused_grant_id:
            # RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
            await self.ctx.grants.revoke(redemption.reused_grant_id)
            await self.ctx.audit(
                "token.code_reuse", "failure", client_id=client.client_id,
                source_ip=request.source_ip, request_id=request.request_id,
                detail=f"grant {redemption.reused_grant_id} revoked",
            )
            raise InvalidGrantError(description="The authorization code was already used")
        data = redemption.data
        if data is None:
            raise InvalidGrantError(description="The authorization code is invalid or expired")
        if data.client_id != client.client_id:
            raise InvalidGrantError(description="The authorization code was issued to another client")
        if data.redirect_uri != redirect_uri:
            raise InvalidGrantError(description="redirect_uri does not match the authorization request")
        if not hmac.compare_digest(create_s256_code_challenge(verifier), data.code_challenge):
            raise InvalidGrantError(description="PKCE verification failed")
        return data
