"""RFC 7591 dynamic client registration at /auth/register (off with PORTAL_DYNAMIC_REGISTRATION=false).

Every metadata field is checked for its JSON type first (RFC 7591 §2), then authlib's
`ClientMetadataClaims` checks URIs and key sets, then the SMART rules are ours. Any failure is an RFC
7591 §3.2.2 error (`invalid_client_metadata` / `invalid_redirect_uri`), never a 500. Clients registered
here never get client_credentials / system scopes unless the server allows it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc7591 import ClientMetadataClaims
from joserfc.errors import JoseError

from .auditing import Auditor
from .clients import AUTH_METHODS, validate_jwks
from .endpoint import EndpointRequest, OAuthAnswer, OAuthEndpoint
from .errors import InvalidClientMetadataError, InvalidRedirectUriError, OAuth2Error, describable
from .scope_policy import context_of, parse_requested
from .settings import AuthSettings
from .store_protocols import ClientRegistrar

KNOWN_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
STRING_FIELDS = ("token_endpoint_auth_method", "client_name", "client_uri", "logo_uri", "scope", "tos_uri",
                 "policy_uri", "jwks_uri", "software_id", "software_version")
STRING_LIST_FIELDS = ("redirect_uris", "grant_types", "response_types", "contacts")
MAX_TEXT = 2000


def _check_types(meta: dict[str, Any]) -> None:
    for name in STRING_FIELDS:
        value = meta.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
            raise InvalidClientMetadataError(description=f"{name} must be a string")
    for name in STRING_LIST_FIELDS:
        value = meta.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or len(value) > 20 or not all(
                isinstance(v, str) and len(v) <= MAX_TEXT for v in value):
            error = InvalidRedirectUriError if name == "redirect_uris" else InvalidClientMetadataError
            raise error(description=f"{name} must be a list of strings")
    if meta.get("jwks") is not None and not isinstance(meta["jwks"], dict):
        raise InvalidClientMetadataError(description="jwks must be a JSON Web Key Set object")


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or (parts.scheme in ("http", "https") and not parts.netloc):
        raise InvalidRedirectUriError(description="redirect_uris must be absolute URIs without fragment")


def _check_grants(method: str, grant_types: list[str], *, allow_system: bool) -> None:
    if not set(grant_types) <= set(KNOWN_GRANTS):
        raise InvalidClientMetadataError(description="Unsupported grant_types")
    if "client_credentials" in grant_types:
        if not allow_system:
            raise InvalidClientMetadataError(
                description="Backend services (client_credentials) are registered by an administrator"
            )
        if method != "private_key_jwt":
            raise InvalidClientMetadataError(description="client_credentials requires private_key_jwt")


def _check_keys(meta: dict[str, Any], method: str) -> None:
    if method != "private_key_jwt":
        return
    if bool(meta.get("jwks")) == bool(meta.get("jwks_uri")):
        raise InvalidClientMetadataError(description="private_key_jwt needs exactly one of jwks, jwks_uri")
    if meta.get("jwks"):
        try:
            validate_jwks(meta["jwks"])
        except ValueError as exc:
            raise InvalidClientMetadataError(description=describable(exc)) from exc


def _check_scope(scope: str | None, *, allow_system: bool) -> None:
    if scope is None:
        return
    try:
        items = parse_requested(scope)
    except OAuth2Error as exc:
        raise InvalidClientMetadataError(description=exc.description) from exc
    if not allow_system and any(context_of(s) == "system" for s in items):
        raise InvalidClientMetadataError(description="system/ scopes are registered by an administrator")


def validate_metadata(meta: dict[str, Any], *, allow_system: bool) -> dict[str, Any]:
    """The fields to register the client with; raises an RFC 7591 error for anything unacceptable."""
    _check_types(meta)
    for uri in meta.get("redirect_uris") or []:
        _check_redirect_uri(uri)
    try:
        ClientMetadataClaims(meta, {}).validate()
    except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:  # e.g. jwks without "keys"
        raise InvalidClientMetadataError(description=f"Invalid client metadata: {describable(exc)}") from exc
    method = meta.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidClientMetadataError(
            description=f"Unsupported token_endpoint_auth_method {describable(method)}")
    grant_types = meta.get("grant_types") or ["authorization_code", "refresh_token"]
    _check_grants(method, grant_types, allow_system=allow_system)
    if (meta.get("response_types") or ["code"]) != ["code"]:
        raise InvalidClientMetadataError(description="Only the code response type is supported")
    redirect_uris = meta.get("redirect_uris") or []
    if "authorization_code" in grant_types:
        if not redirect_uris:
            raise InvalidRedirectUriError(description="redirect_uris are required for authorization_code")
    _check_keys(meta, method)
    _check_scope(meta.get("scope"), allow_system=allow_system)
    if meta.get("client_name") is not None and len(meta["client_name"]) > 200:
        raise InvalidClientMetadataError(description="client_name must be a short string")
    return {
        "client_name": meta.get("client_name") or "Unnamed app",
        "redirect_uris": list(redirect_uris),
        "token_endpoint_auth_method": method,
        "grant_types": list(grant_types),
        "scope": meta.get("scope"),
        "jwks": meta.get("jwks"),
        "jwks_uri": meta.get("jwks_uri"),
    }


class RegistrationEndpoint(OAuthEndpoint):
    audit_kind = "client.register"

    def __init__(self, audit: Auditor, *, clients: ClientRegistrar, settings: AuthSettings) -> None:
        super().__init__(audit)
        self.clients = clients
        self.settings = settings

    def unavailable(self) -> OAuthAnswer | None:
        if self.settings.dynamic_registration:
            return None
        return OAuthAnswer(404, {"error": "invalid_request",
                                 "error_description": "Dynamic client registration is not enabled on this server"})

    async def process(self, request: EndpointRequest) -> OAuthAnswer:
        fields = validate_metadata(request.json, allow_system=self.settings.dynamic_registration_allow_system)
        client, secret = await self.clients.create(registered_by="dynamic", **fields)
        request.client_id = client.client_id
        await self.audit("client.register", "success", client_id=client.client_id, source_ip=request.source_ip,
                         request_id=request.request_id, detail=f"method={client.token_endpoint_auth_method}")
        body = client.public_metadata()
        if secret:
            body["client_secret"] = secret
            body["client_secret_expires_at"] = 0
        return OAuthAnswer(201, body)
