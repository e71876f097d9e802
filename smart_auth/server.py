"""The authorization server's parts, built once from AuthDeps + AuthSettings and shared by the routes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from .auditing import Auditor
from .client_auth import ClientAuthenticator
from .clients import ClientStore
from .codes import CodeStore
from .consent import ConsentStore
from .deps import AuthDeps
from .grant_types import AuthorizationCodeGrant, ClientCredentialsGrant, GrantContext, RefreshTokenGrant
from .grant_types.base import BaseGrant
from .grants import GrantStore
from .launch import LaunchStore
from .revocation import is_revoked
from .seams import PatientDirectory, Sessions
from .settings import AuthSettings
from .tokens import TokenIssuer


@dataclass
class Urls:
    issuer: str
    fhir_base: str
    authorize: str
    token: str
    introspect: str
    revoke: str
    register: str
    jwks: str
    launch: str
    login: str

    @classmethod
    def build(cls, public_url: str) -> Urls:
        base = public_url.rstrip("/")
        return cls(
            issuer=base,
            fhir_base=base + "/fhir",
            authorize=base + "/auth/authorize",
            token=base + "/auth/token",
            introspect=base + "/auth/introspect",
            revoke=base + "/auth/revoke",
            register=base + "/auth/register",
            jwks=base + "/.well-known/jwks.json",
            launch=base + "/auth/launch",
            login="/auth/login",
        )


class AuthServer:
    def __init__(
        self,
        deps: AuthDeps,
        settings: AuthSettings,
        sessions: Sessions,
        patients: PatientDirectory | None = None,
        grants: GrantStore | None = None,
    ) -> None:
        self.deps = deps
        self.settings = settings
        self.sessions = sessions
        self.patients = patients
        self.now = deps.now or time.time
        self.urls = Urls.build(deps.public_url)
        redis = deps.redis
        self.clients = ClientStore(redis, jwks_uri_allow_remote=settings.jwks_uri_allow_remote)
        self.grants = grants or GrantStore(redis, access_token_ttl=settings.access_token_ttl, now=self.now)
        self.codes = CodeStore(redis, ttl=settings.code_ttl, reuse_window=settings.code_reuse_window)
        self.launches = LaunchStore(redis, ttl=settings.launch_ttl)
        self.consents = ConsentStore(redis, ttl=settings.consent_remember_ttl)
        self.issuer = TokenIssuer(
            deps.keys, public_url=deps.public_url, access_token_ttl=settings.access_token_ttl, now=self.now
        )
        self.audit = Auditor(deps.audit)
        self.client_auth = ClientAuthenticator(
            self.clients, redis, token_url=self.urls.token,
            max_lifetime=settings.client_assertion_max_lifetime, leeway=settings.clock_leeway, now=self.now,
        )
        ctx = GrantContext(settings, self.grants, self.codes, self.issuer, self.audit)
        self.grant_types: dict[str, BaseGrant] = {
            g.grant_type: g(ctx) for g in (AuthorizationCodeGrant, RefreshTokenGrant, ClientCredentialsGrant)
        }
        self.templates = deps.page_templates()

    async def bearer_claims(self, request: Request) -> dict[str, Any] | None:
        """Claims of a live access token of ours in the Authorization header, else None."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        claims = self.issuer.verify(token.strip())
        if claims is None or await is_revoked(self.deps.redis, claims):
            return None
        return claims


def source_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_id(request: Request) -> str | None:
    return request.headers.get("x-request-id")
