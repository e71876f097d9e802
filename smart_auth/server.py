"""The authorization server's parts, built once from AuthDeps + AuthSettings and shared by the routes.

Redis is touched only by the store classes built here; the grant types and endpoints see them through
the protocols of `store_protocols`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from web import PageRenderer

from .auditing import Auditor
from .bearer import BearerTokens
from .client_auth import AssertionJtiStore, ClientAuthenticator
from .clients import ClientStore
from .codes import CodeStore
from .consent import ConsentStore
from .deps import AuthDeps
from .grant_types import AuthorizationCodeGrant, ClientCredentialsGrant, GrantContext, RefreshTokenGrant
from .grant_types.base import BaseGrant
from .grants import GrantStore
from .introspection import IntrospectionEndpoint
from .launch import LaunchStore
from .pending import PendingStore
from .registration import RegistrationEndpoint
from .revocation import RevocationStore
from .revocation_endpoint import RevocationEndpoint
from .scope_policy import PatientWrites
from .seams import PatientDirectory, Sessions
from .settings import AuthSettings
from .token_endpoint import TokenEndpoint
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
    style: str

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
            style=base + "/auth/smart-style.json",
        )


class AuthServer:
    def __init__(
        self,
        deps: AuthDeps,
        settings: AuthSettings,
        sessions: Sessions,
        patients: PatientDirectory | None = None,
        grants: GrantStore | None = None,
        patient_writes: PatientWrites | None = None,
    ) -> None:
        self.deps = deps
        # What patients and caregivers may ever write (from the gateway's rules); none when not handed in.
        self.patient_writes: PatientWrites = patient_writes or {}
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
        self.pending = PendingStore(redis, ttl=settings.pending_ttl)
        self.revocations = RevocationStore(redis)
        self.issuer = TokenIssuer(
            deps.keys, public_url=deps.public_url, access_token_ttl=settings.access_token_ttl, now=self.now
        )
        self.bearer = BearerTokens(self.issuer, self.revocations)
        self.audit = Auditor(deps.audit)
        self.pages = PageRenderer(deps.page_templates())
        self._build_endpoints(AssertionJtiStore(redis))

    def _build_endpoints(self, used_assertions: AssertionJtiStore) -> None:
        settings, urls = self.settings, self.urls
        client_auth = ClientAuthenticator(
            self.clients, used_assertions, token_url=urls.token,
            max_lifetime=settings.client_assertion_max_lifetime, leeway=settings.clock_leeway, now=self.now,
        )
        ctx = GrantContext(settings, self.grants, self.codes, self.revocations, self.clients, self.issuer,
                           self.audit, self.now, style_url=settings.smart_style_url or urls.style,
                           session_alive=self.sessions.is_alive)
        self.grant_types: dict[str, BaseGrant] = {
            g.grant_type: g(ctx) for g in (AuthorizationCodeGrant, RefreshTokenGrant, ClientCredentialsGrant)
        }
        self.token_endpoint = TokenEndpoint(self.audit, grant_types=self.grant_types, client_auth=client_auth)
        self.introspection_endpoint = IntrospectionEndpoint(
            self.audit, client_auth=client_auth, bearer=self.bearer, issuer=self.issuer, grants=self.grants,
            revocations=self.revocations, url=urls.introspect, now=self.now,
        )
        self.revocation_endpoint = RevocationEndpoint(
            self.audit, client_auth=client_auth, issuer=self.issuer, grants=self.grants,
            revocations=self.revocations, url=urls.revoke,
        )
        self.registration_endpoint = RegistrationEndpoint(
            self.audit, clients=self.clients, settings=settings,
        )

    async def bearer_claims(self, request: Request) -> dict[str, Any] | None:
        """Claims of a live access token of ours in the Authorization header, else None."""
        return await self.bearer.claims(request.headers.get("authorization"))


def source_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_id(request: Request) -> str | None:
    return request.headers.get("x-request-id")
