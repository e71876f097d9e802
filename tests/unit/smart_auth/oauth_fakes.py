"""In-memory stand-ins for the store protocols of `smart_auth.store_protocols`, and an authorization
server core (grants + endpoints) built on them: the real classes under test, only the storage is fake."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet
from starlette.datastructures import Headers

from smart_auth.auditing import Auditor
from smart_auth.bearer import BearerTokens
from smart_auth.client_auth import ClientAuthenticator
from smart_auth.clients import Client, validate_jwks
from smart_auth.codes import CodeData, Redemption
from smart_auth.endpoint import EndpointRequest, OAuthAnswer
from smart_auth.grant_types import AuthorizationCodeGrant, ClientCredentialsGrant, GrantContext, RefreshTokenGrant
from smart_auth.grants import GrantRecord, token_hash
from smart_auth.introspection import IntrospectionEndpoint
from smart_auth.keys import KeyStore
from smart_auth.registration import RegistrationEndpoint
from smart_auth.revocation_endpoint import RevocationEndpoint
from smart_auth.settings import AuthSettings
from smart_auth.token_endpoint import TokenEndpoint
from smart_auth.tokens import TokenIssuer
from tests.recording_audit import RecordingAudit

PUBLIC = "http://portal.test"
TOKEN_URL = PUBLIC + "/auth/token"


class FakeGrants:
    def __init__(self, now: Any) -> None:
        self.now = now
        self.grants: dict[str, GrantRecord] = {}
        self.refresh: dict[str, str] = {}  # token hash -> grant id, for every refresh token ever issued

    async def create(self, grant: GrantRecord, refresh_token: str | None, refresh_ttl: int) -> None:
        if refresh_token:
            grant.refresh_hash, grant.refresh_exp = token_hash(refresh_token), self.now() + refresh_ttl
            self.refresh[grant.refresh_hash] = grant.grant_id
        self.grants[grant.grant_id] = grant

    async def grant_for_refresh(self, refresh_token: str) -> GrantRecord | None:
        grant_id = self.refresh.get(token_hash(refresh_token))
        return self.grants.get(grant_id) if grant_id else None

    async def rotate(self, grant: GrantRecord, presented: str, new_token: str, refresh_ttl: int) -> bool:
        stored = self.grants[grant.grant_id]
        if stored.status != "active" or stored.refresh_hash != token_hash(presented):
            return False
        stored.refresh_hash, stored.refresh_exp = token_hash(new_token), self.now() + refresh_ttl
        self.refresh[stored.refresh_hash] = grant.grant_id
        return True

    async def revoke(self, grant_id: str) -> bool:
        grant = self.grants.get(grant_id)
        was_active = grant is not None and grant.status == "active"
        if grant is not None:
            grant.status, grant.refresh_hash = "revoked", None
        return was_active


class FakeCodes:
    def __init__(self) -> None:
        self.codes: dict[str, CodeData] = {}
        self.used: dict[str, str] = {}

    async def issue(self, data: CodeData) -> str:
        code = f"code-{len(self.codes) + len(self.used)}-{data.grant_id}"
        self.codes[code] = data
        return code

    async def redeem(self, code: str) -> Redemption:
        data = self.codes.pop(code, None)
        if data is None:
            return Redemption(None, self.used.get(code))
        self.used[code] = data.grant_id
        return Redemption(data)


@dataclass
class FakeRevocations:
    jtis: set[str] = field(default_factory=set)

    async def revoke_access_token(self, jti: str, exp: int | float | None) -> None:
        self.jtis.add(jti)

    async def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        return claims.get("jti") in self.jtis


@dataclass
class FakeClients:
    clients: dict[str, Client] = field(default_factory=dict)

    async def get(self, client_id: str | None) -> Client | None:
        return self.clients.get(client_id or "")

    async def public_keys(self, client: Client) -> KeySet:
        return validate_jwks(client.jwks or {})

    async def create(self, **fields: Any) -> tuple[Client, str | None]:
        secret = "s3cret" if fields.get("token_endpoint_auth_method") in ("client_secret_basic",
                                                                          "client_secret_post") else None
        client = Client(client_id=f"dyn-{len(self.clients)}", client_name=fields.pop("client_name"),
                        secret_hash=hashlib.sha256(secret.encode()).hexdigest() if secret else None,
                        **{k: v for k, v in fields.items() if k != "registered_by"})
        self.clients[client.client_id] = client
        return client, secret

    def add(self, client: Client) -> Client:
        self.clients[client.client_id] = client
        return client


@dataclass
class FakeAssertions:
    seen: set[tuple[str, str]] = field(default_factory=set)

    async def first_use(self, client_id: str, jti: str, ttl: int) -> bool:
        fresh = (client_id, jti) not in self.seen
        self.seen.add((client_id, jti))
        return fresh


class OAuthCore:
    """Grants and endpoints wired as `AuthServer` wires them, over the fakes; a clock the test moves."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.clock = [time.time()]  # authlib checks client assertions against the real clock
        now = self.now
        self.settings = AuthSettings(public_url=PUBLIC, **settings)
        self.keys = KeyStore.load_or_create(tmp_path / "signing-key.pem")
        self.issuer = TokenIssuer(self.keys, public_url=PUBLIC, access_token_ttl=self.settings.access_token_ttl,
                                  now=now)
        self.grants, self.codes, self.revocations = FakeGrants(now), FakeCodes(), FakeRevocations()
        self.clients, self.assertions, self.audit_log = FakeClients(), FakeAssertions(), RecordingAudit()
        audit = Auditor(self.audit_log)
        client_auth = ClientAuthenticator(self.clients, self.assertions, token_url=TOKEN_URL, now=now)
        self.live_sessions: set[str] = {"sess-1"}
        ctx = GrantContext(self.settings, self.grants, self.codes, self.revocations, self.clients, self.issuer,
                           audit, now, session_alive=self.session_alive)
        grant_types = {g.grant_type: g(ctx) for g in (AuthorizationCodeGrant, RefreshTokenGrant,
                                                      ClientCredentialsGrant)}
        self.token = TokenEndpoint(audit, grant_types=grant_types, client_auth=client_auth)
        self.introspection = IntrospectionEndpoint(
            audit, client_auth=client_auth, bearer=BearerTokens(self.issuer, self.revocations), issuer=self.issuer,
            grants=self.grants, revocations=self.revocations, url=PUBLIC + "/auth/introspect", now=now)
        self.revocation = RevocationEndpoint(audit, client_auth=client_auth, issuer=self.issuer, grants=self.grants,
                                             revocations=self.revocations, url=PUBLIC + "/auth/revoke")
        self.registration = RegistrationEndpoint(audit, clients=self.clients, settings=self.settings)

    def now(self) -> float:
        return self.clock[0]

    async def session_alive(self, session_id: str) -> bool:
        return session_id in self.live_sessions

    @staticmethod
    def call(**form: str) -> EndpointRequest:
        return EndpointRequest(form=form, client_id=form.get("client_id"), source_ip="10.0.0.1", request_id="r-1")


async def post(endpoint: Any, headers: Mapping[str, str] | None = None, **form: str) -> OAuthAnswer:
    request = OAuthCore.call(**form)
    request.headers = Headers(headers=dict(headers or {}))  # case-insensitive, as in a real request
    return await endpoint(request)
