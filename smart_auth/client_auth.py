"""Client authentication at the token, introspection and revocation endpoints.

Methods: none (public), client_secret_basic, client_secret_post, and private_key_jwt (RFC 7523 client
assertion as profiled by SMART Backend Services: RS384/ES384, iss = sub = client_id, aud = token
endpoint, exp at most five minutes ahead, jti single-use). The claim checks reuse authlib's
`JWTBearerClientAssertion`; signature verification uses joserfc with the SMART algorithms only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from redis.asyncio import Redis

from .clients import ASSERTION_ALGS, NONE_AUTH, PRIVATE_KEY_JWT, SECRET_BASIC, SECRET_POST, Client
from .errors import InvalidClientError, InvalidRequestError

if TYPE_CHECKING:
    from .store_protocols import ClientRegistry, UsedAssertions

ASSERTION_TYPE = JWTBearerClientAssertion.CLIENT_ASSERTION_TYPE
JTI_KEY = "auth:jti:{}:{}"


def _invalid_client(description: str, *, basic: bool = False) -> InvalidClientError:
    exc = InvalidClientError(description=description, status_code=401)
    if basic:
        exc.www_authenticate = 'Basic realm="auth"'  # type: ignore[attr-defined]
    return exc


class _AssertionClaims(JWTBearerClientAssertion):
    """authlib's claim rules (iss/sub/aud/exp essential, iss == sub, jti present); the jti replay check
    needs async Redis, so here it only records the jti and the caller checks it afterwards."""

    def __init__(self, audiences: list[str], leeway: int) -> None:
        super().__init__(validate_jti=True, leeway=leeway)
        self._audiences = audiences

    def get_audiences(self) -> list[str]:
        return self._audiences

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        return isinstance(jti, str) and 0 < len(jti) <= 512


class AssertionJtiStore:
    """Client assertion ids seen within their lifetime (RFC 7523 §3 replay protection)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def first_use(self, client_id: str, jti: str, ttl: int) -> bool:
        jti_hash = hashlib.sha256(jti.encode()).hexdigest()
        return bool(await self.redis.set(JTI_KEY.format(client_id, jti_hash), "1", nx=True, ex=ttl))


def presents_credentials(headers: Mapping[str, str], form: Mapping[str, str]) -> bool:
    """Whether the request names or authenticates a client at all."""
    return bool(form.get("client_id") or form.get("client_assertion") or form.get("client_assertion_type")
                or headers.get("authorization"))


@dataclass
class AuthenticatedClient:
    client: Client
    method: str


def _key_resolver(keyset: KeySet) -> Callable[[Any], Any]:
    def resolve(obj: Any) -> Any:
        header = obj.headers()
        kid = header.get("kid")
        if kid:
            return keyset.get_by_kid(kid)
        kty = "RSA" if str(header.get("alg", "")).startswith("RS") else "EC"
        candidates = [k for k in keyset.keys if k.key_type == kty]
        if len(candidates) != 1:
            raise JoseError("the assertion names no kid and the client has several keys")
        return candidates[0]

    return resolve


class ClientAuthenticator:
    def __init__(
        self,
        clients: ClientRegistry,
        used_assertions: UsedAssertions,
        *,
        token_url: str,
        max_lifetime: int = 300,
        leeway: int = 30,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.clients = clients
        self.used_assertions = used_assertions
        self.token_url = token_url
        self.max_lifetime = max_lifetime
        self.leeway = leeway
        self.now = now or time.time

    async def authenticate(
        self, headers: Mapping[str, str], form: Mapping[str, str], *, endpoint_url: str | None = None
    ) -> AuthenticatedClient:
        """Identify and authenticate the caller; raises InvalidClientError (401) on any failure."""
        if form.get("client_assertion") or form.get("client_assertion_type"):
            return await self._assertion(form, endpoint_url)
        try:
            basic_id, basic_secret = extract_basic_authorization(headers)
        except ValueError as exc:  # not base64 ASCII (UnicodeEncodeError, binascii.Error): authlib lets it out
            raise _invalid_client("the Authorization header is not valid Basic credentials", basic=True) from exc
        if basic_id:
            client = await self.clients.get(basic_id)
            if client is None or not client.check_secret(basic_secret):
                raise _invalid_client("client authentication failed", basic=True)
            if form.get("client_id") not in (None, basic_id):
                raise _invalid_client("client_id does not match the Authorization header", basic=True)
            if client.token_endpoint_auth_method != SECRET_BASIC:
                raise _invalid_client("this client must not use client_secret_basic", basic=True)
            return AuthenticatedClient(client, "client_secret_basic")
        client_id = form.get("client_id")
        if not client_id:
            raise _invalid_client("client authentication is required")
        client = await self.clients.get(client_id)
        if client is None:
            raise _invalid_client("unknown client")
        if "client_secret" in form:
            if client.token_endpoint_auth_method != SECRET_POST or not client.check_secret(
                form.get("client_secret")
            ):
                raise _invalid_client("client authentication failed")
            return AuthenticatedClient(client, "client_secret_post")
        if client.token_endpoint_auth_method != NONE_AUTH:
            raise _invalid_client(f"this client must authenticate with {client.token_endpoint_auth_method}")
        return AuthenticatedClient(client, "none")

    async def _assertion(self, form: Mapping[str, str], endpoint_url: str | None) -> AuthenticatedClient:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise InvalidRequestError(description="client_assertion_type must be " + ASSERTION_TYPE)
        assertion = form.get("client_assertion") or ""
        audiences = [self.token_url] + ([endpoint_url] if endpoint_url and endpoint_url != self.token_url else [])
        rules = _AssertionClaims(audiences, self.leeway)
        header, unverified = rules.extract_assertion(assertion)
        client = await self.clients.get(unverified.get("iss") if isinstance(unverified.get("iss"), str) else None)
        if client is None:
            raise _invalid_client("the assertion's issuer is not a registered client")
        if client.token_endpoint_auth_method != PRIVATE_KEY_JWT:
            raise _invalid_client("this client is not registered for private_key_jwt")
        if form.get("client_id") and form["client_id"] != client.client_id:
            raise _invalid_client("client_id does not match the assertion")
        if header.get("alg") not in ASSERTION_ALGS:
            raise _invalid_client("assertion must be signed with RS384 or ES384")
        try:
            keyset = await self.clients.public_keys(client)
        except (ValueError, OSError) as exc:
            raise _invalid_client(f"client keys unavailable: {exc}") from exc
        try:
            token = jwt.decode(assertion, _key_resolver(keyset), algorithms=list(ASSERTION_ALGS))
        except (JoseError, ValueError) as exc:
            raise _invalid_client("the assertion signature does not verify") from exc
        claims = token.claims
        rules.verify_claims(claims)  # raises authlib InvalidClientError (400), re-raised as 401 below
        now = self.now()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp > now + self.max_lifetime + self.leeway:
            raise _invalid_client("assertion exp must be at most five minutes in the future")
        if exp < now - self.leeway:
            raise _invalid_client("the assertion has expired")
        ttl = max(int(exp - now) + self.leeway, 1)
        if not await self.used_assertions.first_use(client.client_id, str(claims["jti"]), ttl):
            raise _invalid_client("the assertion jti was already used")
        return AuthenticatedClient(client, "private_key_jwt")

    async def authenticate_checked(
        self, headers: Mapping[str, str], form: Mapping[str, str], *, endpoint_url: str | None = None
    ) -> AuthenticatedClient:
        """authenticate() with every client failure turned into a 401 invalid_client."""
        try:
            return await self.authenticate(headers, form, endpoint_url=endpoint_url)
        except InvalidClientError as exc:
            if exc.status_code != 401:
                raise _invalid_client(exc.description or "client authentication failed") from exc
            raise
