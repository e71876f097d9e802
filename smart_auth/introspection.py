"""/auth/introspect (RFC 7662): confidential clients, or a bearer token asking about its own client's
tokens. `fhirUser` is answered as the same absolute URL the id_token carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .auditing import Auditor
from .bearer import BearerTokens
from .client_auth import ClientAuthenticator
from .endpoint import EndpointRequest, OAuthAnswer, OAuthEndpoint
from .errors import InvalidClientError, InvalidRequestError
from .grants import token_hash
from .store_protocols import GrantRecords, RevokedTokens
from .tokens import TokenIssuer

ACCESS_TOKEN_FIELDS = ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "patient", "fhirUser",
                       "encounter", "grant_id", "on_behalf_of")


class IntrospectionEndpoint(OAuthEndpoint):
    audit_kind = "introspect"

    def __init__(self, audit: Auditor, *, client_auth: ClientAuthenticator, bearer: BearerTokens,
                 issuer: TokenIssuer, grants: GrantRecords, revocations: RevokedTokens, url: str,
                 now: Callable[[], float]) -> None:
        super().__init__(audit)
        self.client_auth, self.bearer, self.issuer = client_auth, bearer, issuer
        self.grants, self.revocations, self.url, self.now = grants, revocations, url, now

    async def process(self, request: EndpointRequest) -> OAuthAnswer:
        bearer_only = await self._identify_caller(request)
        token = request.form.get("token")
        if not token:
            raise InvalidRequestError(description="Missing token")
        answer = await self.introspect(token)
        # A caller holding only a bearer token may ask about its own client's tokens only.
        if bearer_only and answer.get("client_id") != request.client_id:
            answer = {"active": False}
        return OAuthAnswer(body=answer)

    async def _identify_caller(self, request: EndpointRequest) -> bool:
        """Sets request.client_id; True when the caller showed only a bearer token."""
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            claims = await self.bearer.claims(authorization)
            if claims is None:
                exc = InvalidClientError(description="The bearer token is not valid", status_code=401)
                exc.www_authenticate = 'Bearer error="invalid_token"'  # type: ignore[attr-defined]
                raise exc
            request.client_id = claims.get("client_id")
            return True
        authed = await self.client_auth.authenticate_checked(request.headers, request.form, endpoint_url=self.url)
        request.client_id = authed.client.client_id
        if authed.client.is_public:
            raise InvalidClientError(description="Introspection needs a confidential client or a bearer token",
                                     status_code=401)
        return False

    async def introspect(self, token: str) -> dict[str, Any]:
        claims = self.issuer.verify(token)
        if claims is not None:
            if await self.revocations.is_revoked(claims):
                return {"active": False}
            answer = {"active": True, "token_type": "Bearer"} | {k: claims[k] for k in ACCESS_TOKEN_FIELDS
                                                                  if k in claims}
            if "fhirUser" in answer:
                answer["fhirUser"] = self.issuer.absolute_fhir_user(str(answer["fhirUser"]))
            return answer
        grant = await self.grants.grant_for_refresh(token)
        if (grant is None or grant.status != "active" or grant.refresh_exp <= self.now()
                or grant.refresh_hash != token_hash(token)):
            return {"active": False}
        answer = {
            "active": True, "token_type": "refresh_token", "scope": grant.scope, "client_id": grant.client_id,
            "sub": grant.account_id, "exp": int(grant.refresh_exp), "iss": self.issuer.issuer,
        }
        if grant.patient:
            answer["patient"] = grant.patient
        if grant.fhir_user:
            answer["fhirUser"] = self.issuer.absolute_fhir_user(grant.fhir_user)
        return answer
