"""What the grant types, endpoints and flows need of the Redis stores, as protocols.

The Redis classes (`GrantStore`, `CodeStore`, `RevocationStore`, `ClientStore`, ...) satisfy them; unit
tests hand in small in-memory fakes instead, so each grant and endpoint can be exercised in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from joserfc.jwk import KeySet

from .clients import Client
from .codes import CodeData, Redemption
from .grants import GrantRecord


class GrantRecords(Protocol):
    async def create(self, grant: GrantRecord, refresh_token: str | None, refresh_ttl: int) -> None: ...

    async def grant_for_refresh(self, refresh_token: str) -> GrantRecord | None: ...

    async def rotate(self, grant: GrantRecord, presented: str, new_token: str, refresh_ttl: int) -> bool: ...

    async def revoke(self, grant_id: str) -> bool: ...


class CodeRecords(Protocol):
    async def issue(self, data: CodeData) -> str: ...

    async def redeem(self, code: str) -> Redemption: ...


class RevokedTokens(Protocol):
    async def revoke_access_token(self, jti: str, exp: int | float | None) -> None: ...

    async def is_revoked(self, claims: Mapping[str, Any]) -> bool: ...


class ClientRegistry(Protocol):
    async def get(self, client_id: str | None) -> Client | None: ...

    async def public_keys(self, client: Client) -> KeySet: ...


class ClientRegistrar(ClientRegistry, Protocol):
    async def create(self, **fields: Any) -> tuple[Client, str | None]: ...


class UsedAssertions(Protocol):
    async def first_use(self, client_id: str, jti: str, ttl: int) -> bool: ...
