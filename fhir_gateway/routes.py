"""The /fhir routes: thin HTTP adapters that hand what the URL names to the gateway's interactions.

Each route also tells the OpenAPI document (`/openapi.json`) what it takes: typed path parameters (the
served resource types, the FHIR id grammar), search parameters as a free-form query, resources as JSON
objects in FHIR's media type, and OperationOutcome for every error, so that generated clients and API
fuzzers can exercise it. The URL is checked by the pipeline, not by FastAPI, so that a malformed id is
a 400 OperationOutcome with its audit record like any other refusal.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

from .errors import FHIR_JSON, PolicyRefusal
from .gateway import Gateway
from .policy import CREATE, HISTORY_INSTANCE, POLICIES, READ, SEARCH, UPDATE, VREAD
from .responses import FHIR_JSON_UTF8, FHIRResponse

ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_ID = {"type": "string", "pattern": ID_PATTERN}
_OUTCOME = {"type": "object", "required": ["resourceType", "issue"],
            "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}}}
_RESOURCE = {"type": "object", "required": ["resourceType"], "additionalProperties": True,
             "properties": {"resourceType": {"type": "string"}, "id": _ID}}
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "A FHIR resource or Bundle", "content": {FHIR_JSON_UTF8: {"schema": _RESOURCE}}},
    **{code: {"description": text, "content": {FHIR_JSON: {"schema": _OUTCOME}}}
       for code, text in (("4XX", "Refused or not valid (OperationOutcome)"),
                          ("5XX", "The EHR or the audit trail is unavailable (OperationOutcome)"))},
}
NOT_MODIFIED = {"responses": {"304": {"description": "Not modified since the ETag in If-None-Match"}}}



def _types(interaction: str) -> Any:
    """A path parameter naming one of the resource types that serve ``interaction``."""
    served = sorted(name for name, policy in POLICIES.items() if interaction in policy.interactions)
    return Annotated[str, Path(description=f"A resource type that serves {interaction} (see /fhir/metadata)",
                               json_schema_extra={"enum": served})]


SearchType, ReadType, VreadType = _types(SEARCH), _types(READ), _types(VREAD)
HistoryType, CreateType, UpdateType = _types(HISTORY_INSTANCE), _types(CREATE), _types(UPDATE)
ResourceId = Annotated[str, Path(description="The resource's logical id", json_schema_extra={"pattern": ID_PATTERN})]
VersionId = Annotated[str, Path(description="A version id of the resource", json_schema_extra={"pattern": ID_PATTERN})]
PatientId = Annotated[str, Path(description="The Patient's logical id", json_schema_extra={"pattern": ID_PATTERN})]


def _query(name: str, description: str, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}, **extra}


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": {"type": "string"}}


_COUNT = {"type": "integer", "minimum": 0}
_INSTANT = {"type": "string", "format": "date-time"}
_FORM = {"type": "object", "additionalProperties": {"type": "string"}}
_IF_NONE_MATCH = _header("If-None-Match", "An ETag of an earlier answer: 304 when nothing changed")
SEARCH_DOC = {**NOT_MODIFIED, "parameters": [
    _query("parameters", "FHIR search parameters of the type (see /fhir/metadata), e.g. code=4548-4&_count=10",
           _FORM, style="form", explode=True),
    _IF_NONE_MATCH,
]}
SEARCH_FORM_DOC = {"requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {
    "schema": _FORM}}}}
PAGE_DOC = {"parameters": [
    _query("_getpages", "The search a page link belongs to (from a Bundle's `next`/`previous` link)"),
    _query("_getpagesoffset", "Where the page starts", _COUNT),
    _query("_count", "Page size", _COUNT),
    _query("_bundletype", "The Bundle type of the page"),
    _query("_page_sig", "The signature binding the link to the token that searched"),
]}
READ_DOC = {**NOT_MODIFIED, "parameters": [_IF_NONE_MATCH]}
HISTORY_DOC = {"parameters": [
    _query("_count", "Versions per page", _COUNT),
    _query("_since", "Only versions since this instant", _INSTANT),
    _query("_at", "Only versions current at this time", _INSTANT),
]}
EVERYTHING_DOC = {"parameters": [
    _query("_count", "Page size", _COUNT),
    _query("_since", "Only resources changed since", _INSTANT),
    _query("_type", "Resource types to include, comma-separated"),
]}


def _write(description: str) -> dict[str, Any]:
    body = {"schema": _RESOURCE}
    return {"requestBody": {"required": True, "description": description,
                            "content": {FHIR_JSON: body, "application/json": body}},
            "parameters": [_header("Idempotency-Key", "A retry with the same key gets the first answer"),
                           _header("If-Match", "The ETag the change is based on (412 when it moved on)"),
                           _header("If-None-Exist", "Conditional create (staff and backend services)")]}


def _literal_segments(path: str) -> int:
    return sum(1 for segment in path.split("/") if segment and not segment.startswith("{"))


def _unsupported(request: Request, served: list[BaseRoute]) -> tuple[str, PolicyRefusal]:
    """Any other method or path: the interaction to record, and the refusal. A path that is served, asked
    with a method it is not served with, is a 405 naming the methods it is served with."""
    method = request.method
    # The served paths this one matches, the most specific first (`/{rtype}/_search` over `/{rtype}/{id}`).
    matching = [route for route in served if isinstance(route, APIRoute)
                and route.matches(request.scope)[0] is Match.PARTIAL]
    literal = max((_literal_segments(route.path) for route in matching), default=0)
    allowed = sorted({m for route in matching if _literal_segments(route.path) == literal for m in route.methods})
    if allowed or method == "DELETE":
        text = "Deleting records is not supported through the portal" if method == "DELETE" else (
            f"{method} is not supported here")
        error = PolicyRefusal(405, "not-supported", text, headers={"Allow": ", ".join(allowed)})
    else:
        error = PolicyRefusal(404, "not-supported", f"{method} {request.url.path[:100]} is not supported")
    return {"DELETE": "delete", "PATCH": "patch"}.get(method, "operation"), error


def build_fhir_router(gateway: Gateway) -> APIRouter:
    # Long on purpose: it is the FHIR URL table, one thin declaration per interaction, each handing the
    # request to `gateway`; split up, the table could no longer be read in one place.
    router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FHIRResponse, responses=ANSWERS)
    # Reads the header only for the OpenAPI document ("Authorize" in /docs); the pipeline verifies it.
    bearer = [Security(HTTPBearer(auto_error=False, description="A SMART access token"))]

    @router.get("/metadata", summary="The CapabilityStatement (no token needed)")
    async def metadata() -> Response:
        return await gateway.metadata()

    async def unsupported(request: Request) -> Response:
        return await gateway.refuse(request, *_unsupported(request, served))

    # Ahead of `/{rtype}` (which would take "metadata" for a type): any other method here is a 405.
    router.add_api_route("/metadata", unsupported, methods=[m for m in ALL_METHODS if m != "GET"],
                         dependencies=bearer, include_in_schema=False)

    @router.get("", dependencies=bearer, openapi_extra=PAGE_DOC, summary="Follow a page link of a search")
    async def page(request: Request) -> Response:
        if "_getpages" in request.query_params:
            return await gateway.page(request)
        return await gateway.refuse(request, "search-system", PolicyRefusal(
            403, "forbidden", "System-wide search is not supported; search a resource type"))

    @router.post("", dependencies=bearer, summary="Batch and transaction (refused)")
    async def batch(request: Request) -> Response:
        return await gateway.refuse(request, "batch", PolicyRefusal(
            403, "forbidden", "Batch and transaction bundles are not accepted; send each request on its own"))

    @router.get("/{rtype}", dependencies=bearer, openapi_extra=SEARCH_DOC, summary="Search")
    async def search(request: Request, rtype: SearchType) -> Response:
        return await gateway.search(request, rtype)

    @router.post("/{rtype}/_search", dependencies=bearer, openapi_extra={**SEARCH_DOC, **SEARCH_FORM_DOC},
                 summary="Search with a form body")
    async def post_search(request: Request, rtype: SearchType) -> Response:
        return await gateway.search(request, rtype, form=True)

    @router.get("/Patient/{patient_id}/$everything", dependencies=bearer, openapi_extra=EVERYTHING_DOC,
                summary="Everything in one patient's record")
    async def everything(request: Request, patient_id: PatientId) -> Response:
        return await gateway.patient_operation(request, patient_id, "everything")

    @router.get("/Patient/{patient_id}/$summary", dependencies=bearer,
                summary="The International Patient Summary of one patient (501 when the EHR has none)")
    async def summary(request: Request, patient_id: PatientId) -> Response:
        return await gateway.patient_operation(request, patient_id, "summary")

    @router.get("/{rtype}/{resource_id}", dependencies=bearer, openapi_extra=READ_DOC, summary="Read")
    async def read(request: Request, rtype: ReadType, resource_id: ResourceId) -> Response:
        return await gateway.read(request, rtype, resource_id)

    @router.get("/{rtype}/{resource_id}/_history", dependencies=bearer, openapi_extra=HISTORY_DOC,
                summary="The versions of one resource")
    async def history(request: Request, rtype: HistoryType, resource_id: ResourceId) -> Response:
        return await gateway.history(request, rtype, resource_id)

    @router.get("/{rtype}/{resource_id}/_history/{version_id}", dependencies=bearer, openapi_extra=READ_DOC,
                summary="Read one version")
    async def vread(request: Request, rtype: VreadType, resource_id: ResourceId, version_id: VersionId) -> Response:
        return await gateway.read(request, rtype, resource_id, version_id)

    @router.post("/{rtype}", dependencies=bearer, openapi_extra=_write("The resource to create"), summary="Create",
                 status_code=201)
    async def create(request: Request, rtype: CreateType) -> Response:
        return await gateway.create(request, rtype)

    @router.put("/{rtype}/{resource_id}", dependencies=bearer, openapi_extra=_write("The resource as it should be"),
                summary="Update")
    async def update(request: Request, rtype: UpdateType, resource_id: ResourceId) -> Response:
        return await gateway.update(request, rtype, resource_id)

    served = [route for route in router.routes if getattr(route, "endpoint", None) is not unsupported]
    for path in ("", "/{path:path}"):
        router.add_api_route(path, unsupported, methods=ALL_METHODS, dependencies=bearer, include_in_schema=False)
    # Any other method (TRACE, a made-up one): a route that lists no methods takes every method, so these
    # reach the pipeline and its audit too, instead of Starlette's own unaudited 405.
    for path in ("", "/{path:path}"):
        router.add_api_route(path, unsupported, methods=[], dependencies=bearer, include_in_schema=False,
                             generate_unique_id_function=lambda route: f"unsupported_any_method{route.path_format}")
    return router
