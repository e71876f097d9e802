"""The short way in for the two requests a portal makes most: `GET /fhir/<Type>` (search) and
`GET /fhir/<Type>/<id>` (read).

They go straight to `Gateway.search` / `Gateway.read`, the very calls their routes make, without
FastAPI's walk over every route of the app and its per-request parameter handling (about a tenth of
the CPU of a cached answer). Only paths the router would hand to those two routes take it (a resource
type name, then an id that passes the FHIR id grammar); anything else, including every refusal of a
malformed name, goes the usual way. The lane sits inside the request-id, CORS and security-header
middleware, so its answers get the same headers, and it turns a `FHIRError` into its answer as the
app's exception handler does.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mappers.validation import RESOURCE_TYPE, is_fhir_id

from .errors import FHIRError
from .gateway import Gateway

PREFIX = "/fhir/"


def lane_of(method: str, path: str) -> tuple[str, str | None] | None:
    """(resource type, id or None for a search) when the request takes the lane, else None."""
    if method != "GET" or not path.startswith(PREFIX):
        return None
    rtype, _, rest = path[len(PREFIX):].partition("/")
    if not RESOURCE_TYPE.fullmatch(rtype):
        return None
    if not rest:
        return (rtype, None) if not path.endswith("/") else None
    if "/" in rest or not is_fhir_id(rest):
        return None
    return rtype, rest


class FhirFastLane:
    def __init__(self, app: ASGIApp, *, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = lane_of(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if lane is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        rtype, resource_id = lane
        try:
            if resource_id is None:
                response = await self.gateway.search(request, rtype)
            else:
                response = await self.gateway.read(request, rtype, resource_id)
        except FHIRError as exc:
            response = exc.response()
        await response(scope, receive, send)
