"""Who is calling: a Bearer JWT verified locally (signature, exp, aud, iss) plus the revocation set."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from redis.asyncio import Redis
from redis.exceptions import RedisError

from smart_auth.revocation import is_revoked
from smart_auth.scopes import ScopeSet

from .errors import FHIRError, unauthorized

log = logging.getLogger("fhir_gateway.caller")

ALGORITHMS = ["ES256", "RS256"]
CLOCK_SKEW = 30


@dataclass(frozen=True)
class Caller:
    subject: str
    client_id: str
    scopes: ScopeSet
    patient_id: str | None  # the compartment this token is held to, if any
    fhir_user: str | None  # e.g. "Patient/pt-0001", "RelatedPerson/rp-1", "Practitioner/prac-01"
    jti: str
    grant_id: str | None
    claims: dict[str, Any]

    @property
    def context(self) -> str:
        """Which scope context applies: a patient-bound token uses patient/ scopes only."""
        contexts = self.scopes.contexts()
        staff = bool(self.fhir_user and self.fhir_user.startswith("Practitioner"))
        if self.patient_id is not None and ("patient" in contexts or not staff):
            return "patient"
        if "user" in contexts:
            return "user"
        if "system" in self.scopes.contexts():
            return "system"
        return "patient"

    @property
    def on_behalf_of(self) -> str | None:
        """A caregiver's token acts for the patient; the audit trail says so."""
        if self.fhir_user and self.fhir_user.startswith("RelatedPerson/") and self.patient_id:
            return f"Patient/{self.patient_id}"
        return None

    @property
    def bound_patient(self) -> str | None:
        """The patient whose compartment holds this caller, or None for staff and backend services."""
        return self.patient_id if self.context == "patient" else None

    @property
    def compartment_key(self) -> str:
        if self.bound_patient:
            return f"Patient/{self.patient_id}"
        return f"{self.context}:{self.fhir_user or self.client_id}"

    @property
    def binding(self) -> str:
        """Stable fingerprint of what this caller may see (compartment + scopes), for page links and caches."""
        raw = f"{self.compartment_key}|{self.scopes}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _local_ref(value: str | None) -> str | None:
    if not value:
        return None
    parts = value.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else value


RevocationCheck = Callable[[Mapping[str, Any]], Awaitable[bool]]


def redis_revocation_check(redis: Redis) -> RevocationCheck:
    async def check(claims: Mapping[str, Any]) -> bool:
        return await is_revoked(redis, claims)

    return check


class TokenVerifier:
    def __init__(self, keys: KeySet, revoked: RevocationCheck, *, issuer: str, audience: str) -> None:
        self.keys = keys
        self.revoked = revoked
        self.issuer = issuer.rstrip("/")
        self.audience = audience.rstrip("/")

    async def verify(self, authorization: str | None) -> Caller:
        if not authorization:
            raise unauthorized("An access token is required (Authorization: Bearer ...)", error="invalid_request")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("The Authorization header must be 'Bearer <access token>'", error="invalid_request")
        try:
            decoded = jwt.decode(token.strip(), self.keys, algorithms=ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise unauthorized("The access token is malformed or its signature is not valid") from exc
        claims = dict(decoded.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_SKEW,
            iss={"essential": True, "value": self.issuer},
            exp={"essential": True},
            jti={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise unauthorized(f"The access token is not valid here: {exc.description or exc.error}") from exc
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else list(audiences or [])
        if self.audience not in [a.rstrip("/") for a in audiences]:
            raise unauthorized("The access token was issued for another audience")
        try:
            if await self.revoked(claims):
                raise unauthorized("The access token has been revoked")
        except RedisError as exc:
            # Without the revocation set we cannot tell a revoked token from a live one: fail closed.
            log.warning("revocation check unavailable: %s", type(exc).__name__)
            raise FHIRError(503, "transient", "Token revocation status cannot be checked right now") from exc
        patient = claims.get("patient")
        return Caller(
            subject=str(claims["sub"]),
            client_id=str(claims.get("client_id", "")),
            scopes=ScopeSet.parse(str(claims.get("scope", ""))),
            patient_id=str(patient) if patient else None,
            fhir_user=_local_ref(claims.get("fhirUser")),
            jti=str(claims["jti"]),
            grant_id=claims.get("grant_id"),
            claims=claims,
        )
