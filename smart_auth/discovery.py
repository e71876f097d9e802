"""SMART discovery (`.well-known/smart-configuration`), OpenID configuration and our JWKS.

Browser apps read these cross-origin: the app's CORS middleware answers for them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from .keys import ACCESS_TOKEN_ALG, ID_TOKEN_ALG
from .server import AuthServer
from .style import portal_style

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
    "authorize-post",
]

SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "patient/*.cruds",
    "patient/*.read",
    "user/*.rs",
    "user/*.cruds",
    "user/*.read",
    "system/*.rs",
    "system/*.read",
]


def smart_configuration(server: AuthServer) -> dict[str, Any]:
    urls = server.urls
    doc: dict[str, Any] = {
        "issuer": urls.issuer,
        "jwks_uri": urls.jwks,
        "authorization_endpoint": urls.authorize,
        "token_endpoint": urls.token,
        "introspection_endpoint": urls.introspect,
        "revocation_endpoint": urls.revoke,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": [
            "none", "client_secret_basic", "client_secret_post", "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "capabilities": CAPABILITIES,
    }
    if server.settings.dynamic_registration:
        doc["registration_endpoint"] = urls.register
    return doc


def openid_configuration(server: AuthServer) -> dict[str, Any]:
    urls = server.urls
    return {
        "issuer": urls.issuer,
        "authorization_endpoint": urls.authorize,
        "token_endpoint": urls.token,
        "jwks_uri": urls.jwks,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG, ACCESS_TOKEN_ALG],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "auth_time", "fhirUser"],
        "token_endpoint_auth_methods_supported": [
            "none", "client_secret_basic", "client_secret_post", "private_key_jwt",
        ],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }


def add_discovery_routes(router: APIRouter, server: AuthServer) -> None:
    async def smart_config() -> JSONResponse:
        return JSONResponse(smart_configuration(server))

    router.add_api_route("/.well-known/smart-configuration", smart_config, methods=["GET"], tags=["discovery"])
    router.add_api_route(
        "/fhir/.well-known/smart-configuration", smart_config, methods=["GET"], tags=["discovery"],
        name="fhir_smart_configuration",
    )

    @router.get("/.well-known/openid-configuration", tags=["discovery"])
    async def oidc_config() -> JSONResponse:
        return JSONResponse(openid_configuration(server))

    style = portal_style()

    @router.get("/auth/smart-style.json", tags=["discovery"])
    async def smart_style() -> JSONResponse:
        """The portal's look for apps that render inside it (`smart_style_url` of the token response)."""
        return JSONResponse(style, headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/.well-known/jwks.json", tags=["discovery"])
    async def jwks() -> JSONResponse:
        return JSONResponse(server.deps.keys.public_jwks())
