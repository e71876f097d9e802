"""Minting access tokens, id tokens and the SMART token response.

Access tokens are signed ES256 and id_tokens RS256 (see `keys`). Access token claims (DESIGN.md
contract): iss, sub, aud (= FHIR base), exp, iat, jti, client_id, scope, grant_id, and where bound
patient, fhirUser (relative, e.g. "Patient/pt-0001"), encounter, and for a caregiver acting for a
patient `on_behalf_of` / `act_for` (the RelatedPerson reference).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from .keys import ACCESS_TOKEN_ALG, ID_TOKEN_ALG, KeyStore
from .scopes import ScopeSet


@dataclass
class Subject:
    """Who the token speaks for."""

    sub: str
    client_id: str
    scope: str
    grant_id: str | None = None
    fhir_user: str | None = None
    patient: str | None = None
    encounter: str | None = None
    on_behalf_of: str | None = None


class TokenIssuer:
    def __init__(
        self,
        keys: KeyStore,
        *,
        public_url: str,
        access_token_ttl: int,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = public_url.rstrip("/")
        self.audience = self.issuer + "/fhir"
        self.access_token_ttl = access_token_ttl
        self.now = now or time.time

    def access_token(self, subject: Subject) -> tuple[str, dict[str, Any]]:
        iat = int(self.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject.sub,
            "aud": self.audience,
            "iat": iat,
            "exp": iat + self.access_token_ttl,
            "jti": secrets.token_urlsafe(16),
            "client_id": subject.client_id,
            "scope": subject.scope,
        }
        optional = {
            "grant_id": subject.grant_id,
            "patient": subject.patient,
            "fhirUser": subject.fhir_user,
            "encounter": subject.encounter,
            "on_behalf_of": subject.on_behalf_of,
            "act_for": subject.on_behalf_of,
        }
        claims.update({k: v for k, v in optional.items() if v})
        return self.keys.sign(claims), claims

    def id_token(
        self, subject: Subject, *, nonce: str | None, auth_time: int | None = None, with_fhir_user: bool = True
    ) -> str:
        iat = int(self.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject.sub,
            "aud": subject.client_id,
            "iat": iat,
            "exp": iat + self.access_token_ttl,
        }
        if subject.fhir_user and with_fhir_user:
            claims["fhirUser"] = self.absolute_fhir_user(subject.fhir_user)
        if nonce:
            claims["nonce"] = nonce
        if auth_time:
            claims["auth_time"] = auth_time
        return self.keys.sign(claims, ID_TOKEN_ALG)

    def absolute_fhir_user(self, reference: str) -> str:
        """SMART: fhirUser as an absolute URL resolvable through our FHIR base (id_token, introspection)."""
        if reference.startswith(("http://", "https://")):
            return reference
        return f"{self.audience}/{reference}"

    def verify(self, token: str, *, check_exp: bool = True) -> dict[str, Any] | None:
        """Our own access token's claims, or None (bad signature, foreign issuer, expired)."""
        try:
            decoded = jwt.decode(token, self.keys.verification_keys(), algorithms=[ACCESS_TOKEN_ALG])
        except (JoseError, ValueError):
            return None
        claims = dict(decoded.claims)
        if claims.get("iss") != self.issuer or claims.get("aud") != self.audience:
            return None
        if check_exp and not (isinstance(claims.get("exp"), int) and claims["exp"] > self.now()):
            return None
        return claims

    def response(
        self,
        subject: Subject,
        *,
        refresh_token: str | None = None,
        nonce: str | None = None,
        auth_time: int | None = None,
        need_patient_banner: bool | None = None,
        smart_style_url: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The token endpoint's JSON body, and the access token's claims (for audit)."""
        token, claims = self.access_token(subject)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "scope": subject.scope,
        }
        if refresh_token:
            body["refresh_token"] = refresh_token
        if subject.patient:
            body["patient"] = subject.patient
        if subject.encounter:
            body["encounter"] = subject.encounter
        if need_patient_banner is not None and subject.patient:
            body["need_patient_banner"] = need_patient_banner
        if smart_style_url:
            body["smart_style_url"] = smart_style_url
        granted = ScopeSet.parse(subject.scope)
        if granted.has("openid") and subject.fhir_user is not None:
            body["id_token"] = self.id_token(
                subject, nonce=nonce, auth_time=auth_time, with_fhir_user=granted.has("fhirUser")
            )
        return body, claims
