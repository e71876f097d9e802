"""Per-request plumbing: request ids, CORS, and a last-resort handler so nothing leaves as a bare 500."""

from __future__ import annotations

import logging
import os
import re

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import FHIR_JSON, FHIRError, operation_outcome

log = logging.getLogger("fhir_gateway")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
EXPOSED = ["ETag", "Location", "Last-Modified", "X-Request-Id", "Content-Location", "X-Cache", "Warning"]


class RequestIdMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware task group per request): gives every request an id, echoes it
    in X-Request-Id, and turns any failure that escaped the handlers into a clean error answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # On every request: the raw header lists rather than starlette's Headers views (a few us each).
        incoming = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        text = incoming.decode("latin-1")
        request_id = text if _SAFE_ID.match(text) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # A fresh list: the response's own header list is not ours to change.
                message["headers"] = [*(h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"),
                                      id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The one place an unexpected failure is caught: log the trace, answer without it.
            log.exception("unhandled error request_id=%s path=%s", request_id, scope.get("path", ""))
            if started:
                raise  # the answer is already on its way; nothing clean can be said any more
            await _internal_error(scope["path"])(scope, receive, send_with_id)


def install_request_context(app: FastAPI, cors_origins: list[str]) -> None:
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cors_origins,
        allow_methods=["GET", "POST", "PUT", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Accept", "If-Match", "If-None-Match", "If-None-Exist",
                       "Idempotency-Key", "Prefer", "X-Request-Id"],
        expose_headers=EXPOSED,
        max_age=600,
    )

    @app.exception_handler(FHIRError)
    async def fhir_error(request: Request, exc: FHIRError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/fhir"):
            code = "not-found" if exc.status_code == 404 else "processing"
            return JSONResponse(operation_outcome("error", code, str(exc.detail)), status_code=exc.status_code,
                                media_type=FHIR_JSON, headers=getattr(exc, "headers", None))
        return JSONResponse({"error": "invalid_request" if exc.status_code < 500 else "server_error",
                             "error_description": str(exc.detail)}, status_code=exc.status_code)


def _internal_error(path: str) -> Response:
    if path.startswith("/fhir"):
        return JSONResponse(operation_outcome("error", "exception", "An internal error occurred"),
                            status_code=500, media_type=FHIR_JSON)
    return JSONResponse({"error": "server_error", "error_description": "An internal error occurred"}, status_code=500)
