"""Our own live access tokens presented as `Authorization: Bearer ...` to the authorization server
(introspection, launch creation, the staff invitation API)."""

from __future__ import annotations

from typing import Any

from .store_protocols import RevokedTokens
from .tokens import TokenIssuer


class BearerTokens:
    def __init__(self, issuer: TokenIssuer, revocations: RevokedTokens) -> None:
        self.issuer = issuer
        self.revocations = revocations

    async def claims(self, authorization: str | None) -> dict[str, Any] | None:
        """Claims of a live (signed by us, unexpired, unrevoked) access token in the header, else None."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        claims = self.issuer.verify(token.strip())
        if claims is None or await self.revocations.is_revoked(claims):
            return None
        return claims
