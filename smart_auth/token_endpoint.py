"""/auth/token, /auth/introspect (RFC 7662) and /auth/revoke (RFC 7009)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .errors import (
    NO_STORE,
    InvalidClientError,
    InvalidRequestError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    error_response,
)
from .forms import oauth_form
from .grant_types import TokenRequest
from .grants import token_hash
from .revocation import is_revoked, revoke_access_token
from .server import AuthServer, request_id, source_ip

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


def _preflight() -> Response:
    return Response(status_code=204, headers=CORS)


async def _fail(server: AuthServer, request: Request, kind: str, exc: OAuth2Error, client_id: str | None,
                cors: bool = False) -> JSONResponse:
    """Audit a refusal, then answer with the RFC 6749 error (or 503 if even the audit fails)."""
    extra = CORS if cors else {}
    try:
        await server.audit(kind, "failure", client_id=client_id, source_ip=source_ip(request),
                           request_id=request_id(request), detail=f"{exc.error}: {exc.get_error_description() or ''}")
    except OAuth2Error as audit_exc:
        return error_response(audit_exc, extra)
    return error_response(exc, extra)


def add_token_routes(router: APIRouter, server: AuthServer) -> None:
    @router.options("/auth/token", include_in_schema=False)
    async def token_preflight() -> Response:
        return _preflight()

    @router.post("/auth/token", tags=["oauth"])
    async def token(request: Request) -> JSONResponse:
        client_id: str | None = None
        try:
            form = await oauth_form(request)
            client_id = form.get("client_id")
            grant_type = form.get("grant_type")
            if not grant_type:
                raise InvalidRequestError(description="Missing grant_type")
            grant = server.grant_types.get(grant_type)
            if grant is None:
                raise UnsupportedGrantTypeError(grant_type)
            authed = await server.client_auth.authenticate_checked(request.headers, form)
            client_id = authed.client.client_id
            if grant_type not in authed.client.grant_types:
                raise UnauthorizedClientError(description=f"This client may not use {grant_type}")
            body = await grant.issue(
                TokenRequest(form, authed, source_ip=source_ip(request), request_id=request_id(request))
            )
        except OAuth2Error as exc:
            return await _fail(server, request, "token", exc, client_id, cors=True)
        return JSONResponse(body, headers=NO_STORE | CORS)

    @router.post("/auth/introspect", tags=["oauth"])
    async def introspect(request: Request) -> JSONResponse:
        client_id: str | None = None
        try:
            form = await oauth_form(request)
            token = form.get("token")
            bearer = None
            if request.headers.get("authorization", "").lower().startswith("bearer "):
                bearer = await server.bearer_claims(request)
                if bearer is None:
                    exc = InvalidClientError(description="The bearer token is not valid", status_code=401)
                    exc.www_authenticate = 'Bearer error="invalid_token"'  # type: ignore[attr-defined]
                    raise exc
                client_id = bearer.get("client_id")
            else:
                authed = await server.client_auth.authenticate_checked(
                    request.headers, form, endpoint_url=server.urls.introspect
                )
                client_id = authed.client.client_id
                if authed.client.is_public:
                    raise InvalidClientError(
                        description="Introspection needs a confidential client or a bearer token",
                        status_code=401,
                    )
            if not token:
                raise InvalidRequestError(description="Missing token")
            answer = await _introspect(server, token)
            # A caller holding only a bearer token may ask about its own client's tokens only.
            if bearer is not None and answer.get("client_id") != client_id:
                answer = {"active": False}
        except OAuth2Error as exc:
            return await _fail(server, request, "introspect", exc, client_id)
        return JSONResponse(answer, headers=NO_STORE)

    @router.options("/auth/revoke", include_in_schema=False)
    async def revoke_preflight() -> Response:
        return _preflight()

    @router.post("/auth/revoke", tags=["oauth"])
    async def revoke(request: Request) -> Response:
        client_id: str | None = None
        try:
            form = await oauth_form(request)
            client_id = form.get("client_id")
            authed = await server.client_auth.authenticate_checked(
                request.headers, form, endpoint_url=server.urls.revoke
            )
            client_id = authed.client.client_id
            token = form.get("token")
            if not token:
                raise InvalidRequestError(description="Missing token")
            what = await _revoke(server, token, client_id)
            if what:
                await server.audit("token.revoke", "success", client_id=client_id,
                                   patient_id=what.get("patient"), account_id=what.get("sub"),
                                   source_ip=source_ip(request), request_id=request_id(request),
                                   detail=what["detail"])
        except OAuth2Error as exc:
            return await _fail(server, request, "token.revoke", exc, client_id, cors=True)
        # RFC 7009 §2.2: 200 whether or not the token was known.
        return Response(status_code=200, headers=NO_STORE | CORS)


async def _introspect(server: AuthServer, token: str) -> dict[str, Any]:
    claims = server.issuer.verify(token)
    if claims is not None:
        if await is_revoked(server.deps.redis, claims):
            return {"active": False}
        answer = {"active": True, "token_type": "Bearer"}
        for key in ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "patient", "fhirUser",
                    "encounter", "grant_id", "on_behalf_of"):
            if key in claims:
                answer[key] = claims[key]
        return answer
    grant = await server.grants.grant_for_refresh(token)
    if (
        grant is not None
        and grant.status == "active"
        and grant.refresh_exp > server.now()
        and grant.refresh_hash is not None
        and grant.refresh_hash == token_hash(token)
    ):
        answer = {
            "active": True, "token_type": "refresh_token", "scope": grant.scope, "client_id": grant.client_id,
            "sub": grant.account_id, "exp": int(grant.refresh_exp), "iss": server.urls.issuer,
        }
        answer.update({k: v for k, v in (("patient", grant.patient), ("fhirUser", grant.fhir_user)) if v})
        return answer
    return {"active": False}


async def _revoke(server: AuthServer, token: str, client_id: str) -> dict[str, Any] | None:
    claims = server.issuer.verify(token, check_exp=False)
    if claims is not None:
        if claims.get("client_id") != client_id:
            return None  # RFC 7009: a client revokes only its own tokens
        await revoke_access_token(server.deps.redis, claims["jti"], claims.get("exp"))
        return {"patient": claims.get("patient"), "sub": claims.get("sub"),
                "detail": f"access token jti={claims['jti']}"}
    grant = await server.grants.grant_for_refresh(token)
    if grant is None or grant.client_id != client_id:
        return None
    await server.grants.revoke(grant.grant_id)
    return {"patient": grant.patient, "sub": grant.account_id, "detail": f"refresh token; grant {grant.grant_id}"}
