"""The client registry: SMART apps and backend services, kept in Redis under `auth:client:*`.

Only a hash of a client secret is stored. Secrets are 256-bit random values we generate, so a plain
SHA-256 is enough (no password stretching needed) and keeps the token endpoint fast.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from redis.asyncio import Redis

from web.tls import client_tls

CLIENT_KEY = "auth:client:{}"
CLIENT_INDEX = "auth:clients"

NONE_AUTH = "none"
SECRET_BASIC = "client_secret_basic"  # noqa: S105 - a method name, not a secret
SECRET_POST = "client_secret_post"  # noqa: S105 - a method name, not a secret
PRIVATE_KEY_JWT = "private_key_jwt"
AUTH_METHODS = (NONE_AUTH, SECRET_BASIC, SECRET_POST, PRIVATE_KEY_JWT)
ASSERTION_ALGS = ("RS384", "ES384")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Client:
    client_id: str
    client_name: str
    token_endpoint_auth_method: str = NONE_AUTH
    redirect_uris: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    scope: str | None = None  # None: no client-level restriction (account kind still applies)
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    secret_hash: str | None = None
    created_at: int = 0
    registered_by: str = "cli"
    # Part of this product (the patient portal): set only by the composition root, never by a
    # registration request, so no outside app can skip the consent page.
    first_party: bool = False

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == NONE_AUTH

    @property
    def is_confidential(self) -> bool:
        return not self.is_public

    def check_secret(self, secret: str | None) -> bool:
        if not secret or not self.secret_hash:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    def public_metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("secret_hash", None)
        data.pop("registered_by", None)
        data.pop("first_party", None)
        data["client_id_issued_at"] = data.pop("created_at")
        return {k: v for k, v in data.items() if v is not None}


def validate_jwks(jwks: dict[str, Any]) -> KeySet:
    """A client JWKS must hold public keys usable with RS384 or ES384 (SMART asymmetric auth)."""
    try:
        keyset = KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a valid JWK Set: {exc}") from exc
    if not keyset.keys:
        raise ValueError("the JWK Set holds no keys")
    for key in keyset.keys:
        if key.key_type not in ("RSA", "EC"):
            raise ValueError("only RSA (RS384) and EC P-384 (ES384) keys are accepted")
        if key.is_private:
            raise ValueError("register public keys only")
    return keyset


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ClientStore:
    def __init__(self, redis: Redis, *, jwks_uri_allow_remote: bool = False) -> None:
        self.redis = redis
        self.jwks_uri_allow_remote = jwks_uri_allow_remote

    async def get(self, client_id: str | None) -> Client | None:
        if not client_id or len(client_id) > 200:
            return None
        raw = await self.redis.get(CLIENT_KEY.format(client_id))
        if raw is None:
            return None
        return Client(**json.loads(_decode(raw)))

    async def save(self, client: Client) -> None:
        data = json.dumps(asdict(client))
        await self.redis.set(CLIENT_KEY.format(client.client_id), data)
        await self.redis.sadd(CLIENT_INDEX, client.client_id)

    async def create(
        self,
        *,
        client_name: str,
        redirect_uris: list[str],
        token_endpoint_auth_method: str = NONE_AUTH,
        grant_types: list[str] | None = None,
        scope: str | None = None,
        jwks: dict[str, Any] | None = None,
        jwks_uri: str | None = None,
        registered_by: str = "cli",
        client_id: str | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and, for a symmetric client, the one-time plain secret."""
        if token_endpoint_auth_method not in AUTH_METHODS:
            raise ValueError(f"unsupported token_endpoint_auth_method {token_endpoint_auth_method!r}")
        if token_endpoint_auth_method == PRIVATE_KEY_JWT:
            if bool(jwks) == bool(jwks_uri):
                raise ValueError("private_key_jwt needs exactly one of jwks or jwks_uri")
            if jwks:
                validate_jwks(jwks)
        secret: str | None = None
        secret_hash: str | None = None
        if token_endpoint_auth_method in (SECRET_BASIC, SECRET_POST):
            secret = secrets.token_urlsafe(32)
            secret_hash = hash_secret(secret)
        grants = grant_types or (
            ["client_credentials"] if not redirect_uris else ["authorization_code", "refresh_token"]
        )
        client = Client(
            client_id=client_id or secrets.token_urlsafe(16),
            client_name=client_name,
            token_endpoint_auth_method=token_endpoint_auth_method,
            redirect_uris=list(redirect_uris),
            grant_types=list(grants),
            scope=scope,
            jwks=jwks,
            jwks_uri=jwks_uri,
            secret_hash=secret_hash,
            created_at=int(time.time()),
            registered_by=registered_by,
        )
        await self.save(client)
        return client, secret

    async def list(self) -> list[Client]:
        ids = sorted(_decode(i) for i in await self.redis.smembers(CLIENT_INDEX))
        found = [await self.get(i) for i in ids]
        return [c for c in found if c is not None]

    async def remove(self, client_id: str) -> bool:
        removed = await self.redis.delete(CLIENT_KEY.format(client_id))
        await self.redis.srem(CLIENT_INDEX, client_id)
        return bool(removed)

    async def public_keys(self, client: Client) -> KeySet:
        """The client's registered verification keys (jwks, or jwks_uri fetched on demand)."""
        if client.jwks:
            return validate_jwks(client.jwks)
        if not client.jwks_uri:
            raise ValueError("the client has no registered keys")
        if not (self.jwks_uri_allow_remote or is_loopback_url(client.jwks_uri)):
            raise ValueError("fetching a non-loopback jwks_uri is turned off on this server")
        async with httpx.AsyncClient(timeout=5.0, follow_redirects=False, verify=client_tls()) as http:
            response = await http.get(client.jwks_uri, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise ValueError(f"jwks_uri answered HTTP {response.status_code}")
        return validate_jwks(response.json())
