"""Who is calling: a Bearer JWT verified locally (signature, exp, aud, iss) plus the revocation set."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from mappers.references import local_reference
from smart_auth.keys import ACCESS_TOKEN_ALG
from smart_auth.revocation import is_revoked
from smart_auth.scopes import ScopeSet

from .errors import FHIRError, unauthorized

log = logging.getLogger("fhir_gateway.caller")

# Access tokens only: an id_token (RS256) must never pass for one.
ALGORITHMS = [ACCESS_TOKEN_ALG]
CLOCK_SKEW = 30


@dataclass(frozen=True)
class BreakGlass:
    """A practitioner's emergency access to one patient outside their care team, with their reason."""

    patient: str  # Patient/<id>
    reason: str


@dataclass(frozen=True)
class Caller:
    """Who is calling. Immutable; derived facts (context, compartment, binding) are computed once."""

    subject: str
    client_id: str
    scopes: ScopeSet
    patient_id: str | None  # the compartment this token is held to, if any
    fhir_user: str | None  # e.g. "Patient/pt-0001", "RelatedPerson/rp-1", "Practitioner/prac-01"
    jti: str
    grant_id: str | None
    claims: dict[str, Any]
    # Staff (a Practitioner with `user/` scopes): the patients whose care team they are on (the access
    # checker fills it in per request; None: the care-team rule does not apply to this caller).
    care_team: frozenset[str] | None = None
    break_glass: BreakGlass | None = None

    @property
    def is_practitioner(self) -> bool:
        return self.context == "user" and bool(self.fhir_user and self.fhir_user.startswith("Practitioner/"))

    @property
    def reach(self) -> frozenset[str]:
        """The patients a practitioner may see now: their care teams' plus one opened by break-the-glass."""
        extra = {self.break_glass.patient} if self.break_glass else set()
        return (self.care_team or frozenset()) | extra

    @cached_property
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

    @cached_property
    def on_behalf_of(self) -> str | None:
        """A caregiver's token acts for the patient; the audit trail says so."""
        if self.fhir_user and self.fhir_user.startswith("RelatedPerson/") and self.patient_id:
            return f"Patient/{self.patient_id}"
        return None

    @cached_property
    def bound_patient(self) -> str | None:
        """The patient whose compartment holds this caller, or None for staff and backend services."""
        return self.patient_id if self.context == "patient" else None

    @cached_property
    def compartment_key(self) -> str:
        if self.bound_patient:
            return f"Patient/{self.patient_id}"
        # A break-the-glass request answers (and is cached) apart from the practitioner's usual ones.
        glass = f"+btg:{self.break_glass.patient}" if self.break_glass else ""
        return f"{self.context}:{self.fhir_user or self.client_id}{glass}"

    @property
    def own_patient_refs(self) -> list[str]:
        """What an audit record of this caller's request names as the patient, when nothing else does."""
        return [self.compartment_key] if self.bound_patient else []

    @cached_property
    def binding(self) -> str:
        """Stable fingerprint of what this caller may see (compartment + scopes), for page links and caches."""
        raw = f"{self.compartment_key}|{self.scopes}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _local_ref(value: str | None) -> str | None:
    return local_reference(value) if value else None


RevocationCheck = Callable[[Mapping[str, Any]], Awaitable[bool]]


def redis_revocation_check(redis: Redis) -> RevocationCheck:
    async def check(claims: Mapping[str, Any]) -> bool:
        try:
            return await is_revoked(redis, claims)
        except RedisConnectionError:
            # Typically a pooled connection that died with a restarted Redis: a read, so one retry on a
            # fresh connection is safe (a second failure fails closed with 503 as before).
            return await is_revoked(redis, claims)

    return check


class TokenVerifier:
    """Verifies access tokens locally; the revocation set is asked on EVERY request.

    A token whose signature and claims were checked once is remembered (up to ``memo_size`` tokens)
    so repeat requests skip the ES256 verification; its ``exp`` is checked again on every use.
    """

    def __init__(self, keys: KeySet, revoked: RevocationCheck, *, issuer: str, audience: str,
                 memo_size: int = 4096) -> None:
        self.keys = keys
        self.revoked = revoked
        self.issuer = issuer.rstrip("/")
        self.audience = audience.rstrip("/")
        self.memo_size = memo_size
        self._memo: OrderedDict[str, Caller] = OrderedDict()

    async def verify(self, authorization: str | None) -> Caller:
        """The caller behind a Bearer token: signature and claims, then the revocation set."""
        caller = self.authenticate(authorization)
        await self.check_revocation(caller)
        return caller

    def authenticate(self, authorization: str | None) -> Caller:
        """Signature and claims only (no I/O); ``check_revocation`` must pass before anything is answered."""
        if not authorization:
            raise unauthorized("An access token is required (Authorization: Bearer ...)", error="invalid_request")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("The Authorization header must be 'Bearer <access token>'", error="invalid_request")
        caller = self._memo.get(token)
        if caller is None or float(caller.claims["exp"]) + CLOCK_SKEW < time.time():
            self._memo.pop(token, None)
            caller = self._verify_signed(token)
            self._memo[token] = caller
            if len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return caller

    async def check_revocation(self, caller: Caller) -> None:
        try:
            revoked = await self.revoked(caller.claims)
        except RedisError as exc:
            # Without the revocation set we cannot tell a revoked token from a live one: fail closed.
            log.warning("revocation check unavailable: %s", type(exc).__name__)
            raise FHIRError(503, "transient", "Token revocation status cannot be checked right now") from exc
        if revoked:
            raise unauthorized("The access token has been revoked")

    def _verify_signed(self, token: str) -> Caller:
        try:
            decoded = jwt.decode(token, self.keys, algorithms=ALGORITHMS)
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
