"""What /openapi.json says about the OAuth endpoints' bodies and answers (RFC 6749, 7009, 7662, 7591), so a
client generator or a schema-driven test can call them without reading the RFCs first."""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string"}
_ERROR = {
    "description": "Refused (RFC 6749 §5.2 error)",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["error"],
        "properties": {"error": _STRING, "error_description": _STRING, "error_uri": _STRING}}}},
}
_UNAVAILABLE = {**_ERROR, "description": "Redis or the EHR is unavailable (temporarily_unavailable)"}


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": properties, "required": required}}}}


def _answers(status: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": description}
    if schema is not None:
        ok["content"] = {"application/json": {"schema": schema}}
    return {status: ok, "4XX": _ERROR, "503": _UNAVAILABLE}


_CLIENT = {"client_id": _STRING, "client_secret": _STRING, "client_assertion_type": _STRING,
           "client_assertion": _STRING}
_TOKEN_HINT = {"type": "string", "enum": ["access_token", "refresh_token"]}

TOKEN = {
    "requestBody": _form({
        "grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials"]},
        "code": _STRING, "redirect_uri": _STRING, "code_verifier": _STRING, "refresh_token": _STRING,
        "scope": _STRING, **_CLIENT}, ["grant_type"]),
    "responses": _answers("200", "Tokens (Cache-Control: no-store)", {
        "type": "object", "required": ["access_token", "token_type"],
        "properties": {"access_token": _STRING, "token_type": _STRING, "expires_in": {"type": "integer"},
                       "scope": _STRING, "refresh_token": _STRING, "id_token": _STRING, "patient": _STRING}}),
}
INTROSPECT = {
    "requestBody": _form({"token": _STRING, "token_type_hint": _TOKEN_HINT, **_CLIENT}, ["token"]),
    "responses": _answers("200", "Whether the token is active, and its claims when it is", {
        "type": "object", "required": ["active"], "properties": {"active": {"type": "boolean"}}}),
}
REVOKE = {
    "requestBody": _form({"token": _STRING, "token_type_hint": _TOKEN_HINT, **_CLIENT}, ["token"]),
    "responses": _answers("200", "Revoked, or was not a token of this client (RFC 7009 §2.2)"),
}
_URIS = {"type": "array", "items": {"type": "string", "format": "uri"}}
REGISTER = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["redirect_uris"],
        "properties": {
            "redirect_uris": _URIS, "client_name": _STRING, "scope": _STRING, "jwks_uri": _STRING,
            "jwks": {"type": "object"}, "contacts": {"type": "array", "items": _STRING},
            "token_endpoint_auth_method": {"type": "string",
                                           "enum": ["none", "client_secret_basic", "private_key_jwt"]},
            "grant_types": {"type": "array", "items": {"type": "string", "enum": [
                "authorization_code", "refresh_token", "client_credentials"]}},
            "response_types": {"type": "array", "items": {"type": "string", "enum": ["code"]}},
        }}}}},
    "responses": _answers("201", "The registered client (RFC 7591 §3.2.1)", {
        "type": "object", "required": ["client_id"], "properties": {"client_id": _STRING}}),
}
