"""RFC 7591 dynamic client registration at /auth/register (off with PORTAL_DYNAMIC_REGISTRATION=false).

Metadata checks reuse authlib's `ClientMetadataClaims`; the SMART-specific rules are ours. Clients
registered here never get client_credentials / system scopes unless the server allows it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc7591 import ClientMetadataClaims
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from joserfc.errors import JoseError

from .clients import AUTH_METHODS, validate_jwks
from .errors import (
    NO_STORE,
    InvalidClientMetadataError,
    InvalidRedirectUriError,
    InvalidRequestError,
    OAuth2Error,
    error_response,
)
from .scope_policy import context_of, parse_requested
from .server import AuthServer, request_id, source_ip

KNOWN_GRANTS = ("authorization_code", "refresh_token", "client_credentials")


def _check_redirect_uri(uri: Any) -> None:
    if not isinstance(uri, str):
        raise InvalidRedirectUriError(description="redirect_uris must be strings")
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or (parts.scheme in ("http", "https") and not parts.netloc):
        raise InvalidRedirectUriError(description="redirect_uris must be absolute URIs without fragment")


def validate_metadata(meta: dict[str, Any], *, allow_system: bool) -> dict[str, Any]:
    claims = ClientMetadataClaims(meta, {})
    try:
        claims.validate()
    except (JoseError, ValueError) as exc:
        raise InvalidClientMetadataError(description=f"Invalid client metadata: {exc}") from exc
    method = claims.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidClientMetadataError(description=f"Unsupported token_endpoint_auth_method {method}")
    grant_types = claims.get("grant_types") or ["authorization_code", "refresh_token"]
    if not isinstance(grant_types, list) or not set(grant_types) <= set(KNOWN_GRANTS):
        raise InvalidClientMetadataError(description="Unsupported grant_types")
    if "client_credentials" in grant_types:
        if not allow_system:
            raise InvalidClientMetadataError(
                description="Backend services (client_credentials) are registered by an administrator"
            )
        if method != "private_key_jwt":
            raise InvalidClientMetadataError(description="client_credentials requires private_key_jwt")
    response_types = claims.get("response_types") or ["code"]
    if response_types != ["code"]:
        raise InvalidClientMetadataError(description="Only the code response type is supported")
    redirect_uris = claims.get("redirect_uris") or []
    if "authorization_code" in grant_types:
        if not isinstance(redirect_uris, list) or not redirect_uris:
            raise InvalidRedirectUriError(description="redirect_uris are required for authorization_code")
        for uri in redirect_uris:
            _check_redirect_uri(uri)
    if method == "private_key_jwt":
        if bool(claims.get("jwks")) == bool(claims.get("jwks_uri")):
            raise InvalidClientMetadataError(description="private_key_jwt needs exactly one of jwks, jwks_uri")
        if claims.get("jwks"):
            try:
                validate_jwks(claims["jwks"])
            except ValueError as exc:
                raise InvalidClientMetadataError(description=str(exc)) from exc
    scope = claims.get("scope")
    if scope is not None:
        if not isinstance(scope, str):
            raise InvalidClientMetadataError(description="scope must be a space-separated string")
        try:
            items = parse_requested(scope)
        except OAuth2Error as exc:
            raise InvalidClientMetadataError(description=exc.description) from exc
        if not allow_system and any(context_of(s) == "system" for s in items):
            raise InvalidClientMetadataError(description="system/ scopes are registered by an administrator")
    name = claims.get("client_name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise InvalidClientMetadataError(description="client_name must be a short string")
    return {
        "client_name": name or "Unnamed app",
        "redirect_uris": list(redirect_uris),
        "token_endpoint_auth_method": method,
        "grant_types": list(grant_types),
        "scope": scope,
        "jwks": claims.get("jwks"),
        "jwks_uri": claims.get("jwks_uri"),
    }


def add_registration_routes(router: APIRouter, server: AuthServer) -> None:
    @router.post("/auth/register", tags=["oauth"])
    async def register(request: Request) -> JSONResponse:
        if not server.settings.dynamic_registration:
            return JSONResponse(
                {"error": "invalid_request",
                 "error_description": "Dynamic client registration is not enabled on this server"},
                status_code=404, headers=NO_STORE,
            )
        try:
            try:
                meta = json.loads(await request.body())
            except ValueError as exc:
                raise InvalidRequestError(description="The body must be a JSON object") from exc
            if not isinstance(meta, dict):
                raise InvalidRequestError(description="The body must be a JSON object")
            fields = validate_metadata(meta, allow_system=server.settings.dynamic_registration_allow_system)
            client, secret = await server.clients.create(registered_by="dynamic", **fields)
            await server.audit("client.register", "success", client_id=client.client_id,
                               source_ip=source_ip(request), request_id=request_id(request),
                               detail=f"method={client.token_endpoint_auth_method}")
        except OAuth2Error as exc:
            try:
                await server.audit("client.register", "failure", source_ip=source_ip(request),
                                   request_id=request_id(request), detail=exc.error)
            except OAuth2Error as audit_exc:
                return error_response(audit_exc)
            return error_response(exc)
        body = client.public_metadata()
        if secret:
            body["client_secret"] = secret
            body["client_secret_expires_at"] = 0
        return JSONResponse(body, status_code=201, headers=NO_STORE)
