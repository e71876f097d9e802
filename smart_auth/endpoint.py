"""What the token, introspection, revocation and registration endpoints share (after authlib's endpoint
classes): a request object free of HTTP plumbing, an answer, and one way to refuse (audited RFC 6749
error). The HTTP routes are thin adapters, so each endpoint class can be tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .auditing import Auditor
from .errors import NO_STORE, OAuth2Error, error_parts
from .request_bodies import oauth_form, read_json_object


@dataclass
class EndpointRequest:
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)
    source_ip: str | None = None
    request_id: str | None = None
    client_id: str | None = None  # set as soon as the caller is known, for the audit of a refusal

    @classmethod
    def of(cls, request: Request) -> EndpointRequest:
        return cls(headers=request.headers, source_ip=request.client.host if request.client else None,
                   request_id=request.headers.get("x-request-id"))


@dataclass
class OAuthAnswer:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(NO_STORE))

    @classmethod
    def error(cls, exc: OAuth2Error) -> OAuthAnswer:
        status, body, headers = error_parts(exc)
        return cls(status, body, headers)

    def response(self) -> Response:
        if self.body is None:
            return Response(status_code=self.status, headers=self.headers)
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class OAuthEndpoint:
    """`await endpoint(request)` answers; a refusal is audited (kind `audit_kind`) before it is sent."""

    audit_kind: ClassVar[str]

    def __init__(self, audit: Auditor) -> None:
        self.audit = audit

    async def process(self, request: EndpointRequest) -> OAuthAnswer:
        raise NotImplementedError

    def unavailable(self) -> OAuthAnswer | None:
        """The answer while this endpoint is switched off (before the body is read), else None."""
        return None

    async def __call__(self, request: EndpointRequest) -> OAuthAnswer:
        try:
            return await self.process(request)
        except OAuth2Error as exc:
            return await self.refuse(request, exc)

    async def refuse(self, request: EndpointRequest, exc: OAuth2Error) -> OAuthAnswer:
        try:
            await self.audit(self.audit_kind, "failure", client_id=request.client_id, source_ip=request.source_ip,
                             request_id=request.request_id,
                             detail=f"{exc.error}: {exc.get_error_description() or ''}")
        except OAuth2Error as audit_exc:
            return OAuthAnswer.error(audit_exc)
        return OAuthAnswer.error(exc)


def add_endpoint_route(router: APIRouter, path: str, endpoint: OAuthEndpoint, *,
                       body: Literal["form", "json"] = "form", doc: dict[str, Any] | None = None) -> None:
    """POST `path` → `endpoint`, with the body read as a form (OAuth parameters) or a JSON object; `doc`
    is what /openapi.json says of its body and answers."""

    async def route(request: Request) -> Response:
        off = endpoint.unavailable()
        if off is not None:
            return off.response()
        call = EndpointRequest.of(request)
        try:
            if body == "form":
                call.form = await oauth_form(request)
                call.client_id = call.form.get("client_id")
            else:
                call.json = await read_json_object(request)
        except OAuth2Error as exc:
            return (await endpoint.refuse(call, exc)).response()
        return (await endpoint(call)).response()

    router.add_api_route(path, route, methods=["POST"], tags=["oauth"], name=type(endpoint).__name__,
                         openapi_extra=doc)
