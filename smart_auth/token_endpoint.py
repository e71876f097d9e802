"""/auth/token: authenticates the client, then hands the request to the grant class for its grant_type.
CORS for browser apps comes from the app's CORSMiddleware, like every other cross-origin route."""

from __future__ import annotations

from collections.abc import Mapping

from .auditing import Auditor
from .client_auth import AuthenticatedClient, ClientAuthenticator, presents_credentials
from .endpoint import EndpointRequest, OAuthAnswer, OAuthEndpoint
from .errors import InvalidRequestError, UnauthorizedClientError, UnsupportedGrantTypeError
from .grant_types import TokenRequest
from .grant_types.base import BaseGrant


class TokenEndpoint(OAuthEndpoint):
    audit_kind = "token"

    def __init__(self, audit: Auditor, *, grant_types: Mapping[str, BaseGrant], client_auth: ClientAuthenticator
                 ) -> None:
        super().__init__(audit)
        self.grant_types = grant_types
        self.client_auth = client_auth

    async def process(self, request: EndpointRequest) -> OAuthAnswer:
        grant_type = request.form.get("grant_type")
        if not grant_type:
            raise InvalidRequestError(description="Missing grant_type")
        grant = self.grant_types.get(grant_type)
        if grant is None:
            raise UnsupportedGrantTypeError(grant_type)
        authed = await self._client(request, grant)
        request.client_id = authed.client.client_id
        if grant_type not in authed.client.grant_types:
            raise UnauthorizedClientError(description=f"This client may not use {grant_type}")
        body = await grant.issue(TokenRequest(request.form, authed, request.source_ip, request.request_id))
        return OAuthAnswer(body=body)

    async def _client(self, request: EndpointRequest, grant: BaseGrant) -> AuthenticatedClient:
        if not presents_credentials(request.headers, request.form):
            implicit = await grant.implicit_client(request.form)
            if implicit is not None:
                return implicit
        return await self.client_auth.authenticate_checked(request.headers, request.form)
