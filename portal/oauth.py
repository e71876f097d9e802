"""The portal as an OAuth client (backend-for-frontend): authorization code + PKCE S256, refresh, revoke.

Tokens never leave the server: the browser only ever sees the authorization code on its way back to
/portal/callback, and that code is useless without the PKCE verifier and the client secret kept here.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from .client_registration import SCOPES
from .gateway_client import gateway_base
from .sessions import Tokens
from .settings import PortalUiSettings


class OAuthFailure(Exception):
    """The authorization server refused (or could not be asked); ``error`` is the RFC 6749 code."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Grant:
    """What a successful code exchange tells the portal."""

    tokens: Tokens
    account_id: str
    fhir_user: str
    patient_id: str


def new_pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def unverified_claims(jwt: str) -> dict[str, Any]:
    """The claims of a token the server has just handed us over a trusted channel (no signature check
    needed: we never accept a token from the browser)."""
    try:
        payload = jwt.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise OAuthFailure("invalid_token", "the access token is not a JWT") from exc


def local_ref(value: str | None) -> str:
    parts = (value or "").rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ""


class PortalOAuth:
    def __init__(self, http: httpx.AsyncClient, settings: PortalUiSettings, secret: str,
                 now: Any = None, scopes: str = SCOPES) -> None:
        self.http = http
        self.settings = settings
        self.scopes = scopes
        self.auth = httpx.BasicAuth(settings.oauth_client_id, secret)
        self.base = gateway_base(settings)
        self.now = now or time.time

    def authorize_url(self, state: str, challenge: str) -> str:
        params = {
            "response_type": "code", "client_id": self.settings.oauth_client_id,
            "redirect_uri": self.settings.redirect_uri, "scope": self.scopes, "state": state,
            "aud": self.base + "/fhir", "code_challenge": challenge, "code_challenge_method": "S256",
        }
        return f"{self.base}/auth/authorize?{urlencode(params)}"

    async def _token(self, form: dict[str, str], request_id: str | None) -> dict[str, Any]:
        headers = {"X-Request-Id": request_id} if request_id else {}
        try:
            response = await self.http.post("/auth/token", data=form, auth=self.auth, headers=headers)
        except httpx.HTTPError as exc:
            raise OAuthFailure("temporarily_unavailable", type(exc).__name__) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise OAuthFailure(str(body.get("error") or f"http_{response.status_code}"),
                               str(body.get("error_description") or ""))
        return body

    def _tokens(self, body: dict[str, Any], previous_refresh: str | None = None) -> Tokens:
        return Tokens(access_token=body["access_token"],
                      expires_at=self.now() + int(body.get("expires_in") or 300),
                      refresh_token=body.get("refresh_token") or previous_refresh,
                      scope=str(body.get("scope") or ""))

    async def exchange_code(self, code: str, verifier: str, request_id: str | None = None
                            ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The token response and its access token's claims."""
        body = await self._token({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                  "redirect_uri": self.settings.redirect_uri}, request_id)
        return body, unverified_claims(body["access_token"])

    def tokens_of(self, body: dict[str, Any]) -> Tokens:
        return self._tokens(body)

    async def exchange(self, code: str, verifier: str, request_id: str | None = None) -> Grant:
        body, claims = await self.exchange_code(code, verifier, request_id)
        patient = str(body.get("patient") or claims.get("patient") or "")
        fhir_user = local_ref(claims.get("fhirUser"))
        if not patient or not fhir_user:
            raise OAuthFailure("invalid_grant", "the grant is not bound to a patient record")
        return Grant(self._tokens(body), str(claims.get("sub") or ""), fhir_user, patient)

    async def refresh(self, tokens: Tokens, request_id: str | None = None) -> Tokens:
        if not tokens.refresh_token:
            raise OAuthFailure("invalid_grant", "no refresh token")
        body = await self._token({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                                 request_id)
        return self._tokens(body, tokens.refresh_token)

    async def revoke(self, tokens: Tokens, request_id: str | None = None) -> None:
        """Revoke the refresh token (ending the grant) and the access token; failures are not fatal here:
        the grant also ends with the sign-in session."""
        headers = {"X-Request-Id": request_id} if request_id else {}
        for token in (tokens.refresh_token, tokens.access_token):
            if not token:
                continue
            try:
                await self.http.post("/auth/revoke", data={"token": token}, auth=self.auth, headers=headers)
            except httpx.HTTPError:
                continue
