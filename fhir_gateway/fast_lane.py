"""The short way in for the two requests a portal makes most: `GET /fhir/<Type>` (search) and
`GET /fhir/<Type>/<id>` (read).

They go straight to `Gateway.search` / `Gateway.read`, the very calls their routes make, without
FastAPI's walk over every route of the app and its per-request parameter handling (about a tenth of
the CPU of a cached answer). Only paths the router would hand to those two routes take it (a resource
type name, then an id that passes the FHIR id grammar); anything else, including every refusal of a
malformed name, goes the usual way. The lane sits inside the request-id, CORS and security-header
middleware, so its answers get the same headers, and it turns a `FHIRError` into its answer as the
app's exception handler does.

`LaneFirstApp` also spares the lane's requests the layers FastAPI puts around every app (its server-error,
telemetry and body-limit middleware, about 5 % of a cached answer's CPU): they go through the app's own
middleware (the same classes and settings, built once more around the lane) and nothing else. Nothing is
lost for them: the lane answers every `FHIRError`, and the request-id middleware turns anything else into
a clean 500 before FastAPI's server-error middleware would see it, as it does for every request.
"""

from __future__ import annotations

from fastapi import FastAPI
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


class LaneFirstApp(FastAPI):
    """FastAPI, with the fast lane's requests sent straight into the app's own middleware around the lane."""

    _lane_stack: ASGIApp | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        self._lane_stack = None
        if self.user_middleware and self.user_middleware[-1].cls is FhirFastLane:
            # The user middleware once more, around the whole stack: FhirFastLane, innermost, answers every
            # request sent here (lane_of said so) and would hand anything else to the full stack.
            lane: ASGIApp = stack
            for cls, args, kwargs in reversed(self.user_middleware):
                lane = cls(lane, *args, **kwargs)
            self._lane_stack = lane
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        lane = self._lane_stack
        if lane is None or scope["type"] != "http" or lane_of(scope["method"], scope["path"]) is None:
            await super().__call__(scope, receive, send)
            return
        if self.root_path:
            scope["root_path"] = self.root_path
        scope["app"] = self
        await lane(scope, receive, send)
