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
from fastapi.security import HTTPBearer
from starlette.responses import Response

from .errors import FHIR_JSON, PolicyRefusal
from .gateway import Gateway
from .policy import POLICIES
from .responses import FHIR_JSON_UTF8, FHIRResponse

ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
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

TypeName = Annotated[str, Path(description="A resource type served here (see /fhir/metadata)",
                               json_schema_extra={"enum": sorted(POLICIES)})]
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
SEARCH = {**NOT_MODIFIED, "parameters": [
    _query("parameters", "FHIR search parameters of the type (see /fhir/metadata), e.g. code=4548-4&_count=10",
           {"type": "object", "additionalProperties": {"type": "string"}}, style="form", explode=True),
    _header("If-None-Match", "An ETag of an earlier answer: 304 when nothing changed"),
]}
SEARCH_FORM = {"requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {
    "schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}}
PAGE = {"parameters": [
    _query("_getpages", "The search a page link belongs to (from a Bundle's `next`/`previous` link)"),
    _query("_getpagesoffset", "Where the page starts", _COUNT),
    _query("_count", "Page size", _COUNT),
    _query("_bundletype", "The Bundle type of the page"),
    _query("_page_sig", "The signature binding the link to the token that searched"),
]}
READ = {**NOT_MODIFIED, "parameters": [_header("If-None-Match", "An ETag of an earlier answer: 304 when unchanged")]}
HISTORY = {"parameters": [_query("_count", "Versions per page", _COUNT),
                          _query("_since", "Only versions since this instant", _INSTANT),
                          _query("_at", "Only versions current at this time")]}
EVERYTHING = {"parameters": [_query("_count", "Page size", _COUNT),
                             _query("_since", "Only resources changed since", _INSTANT),
                             _query("_type", "Resource types to include, comma-separated")]}


def _write(description: str) -> dict[str, Any]:
    body = {"schema": _RESOURCE}
    return {"requestBody": {"required": True, "description": description,
                            "content": {FHIR_JSON: body, "application/json": body}},
            "parameters": [_header("Idempotency-Key", "A retry with the same key gets the first answer"),
                           _header("If-Match", "The ETag the change is based on (412 when it moved on)"),
                           _header("If-None-Exist", "Conditional create (staff and backend services)")]}


def build_fhir_router(gateway: Gateway) -> APIRouter:
    router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FHIRResponse, responses=ANSWERS)
    # Reads the header only for the OpenAPI document ("Authorize" in /docs); the pipeline verifies it.
    bearer = [Security(HTTPBearer(auto_error=False, description="A SMART access token"))]

    @router.get("/metadata", summary="The CapabilityStatement (no token needed)")
    async def metadata() -> Response:
        return await gateway.metadata()

    @router.get("", dependencies=bearer, openapi_extra=PAGE, summary="Follow a page link of a search")
    async def page(request: Request) -> Response:
        if "_getpages" in request.query_params:
            return await gateway.page(request)
        return await gateway.refuse(request, "search-system", PolicyRefusal(
            403, "forbidden", "System-wide search is not supported; search a resource type"))

    @router.post("", dependencies=bearer, summary="Batch and transaction (refused)")
    async def batch(request: Request) -> Response:
        return await gateway.refuse(request, "batch", PolicyRefusal(
            403, "forbidden", "Batch and transaction bundles are not accepted; send each request on its own"))

    @router.get("/{rtype}", dependencies=bearer, openapi_extra=SEARCH, summary="Search")
    async def search(request: Request, rtype: TypeName) -> Response:
        return await gateway.search(request, rtype)

    @router.post("/{rtype}/_search", dependencies=bearer, openapi_extra={**SEARCH, **SEARCH_FORM},
                 summary="Search with a form body")
    async def post_search(request: Request, rtype: TypeName) -> Response:
        return await gateway.search(request, rtype, form=True)

    @router.get("/Patient/{patient_id}/$everything", dependencies=bearer, openapi_extra=EVERYTHING,
                summary="Everything in one patient's record")
    async def everything(request: Request, patient_id: PatientId) -> Response:
        return await gateway.patient_operation(request, patient_id, "everything")

    @router.get("/Patient/{patient_id}/$summary", dependencies=bearer,
                summary="The International Patient Summary of one patient (501 when the EHR has none)")
    async def summary(request: Request, patient_id: PatientId) -> Response:
        return await gateway.patient_operation(request, patient_id, "summary")

    @router.get("/{rtype}/{resource_id}", dependencies=bearer, openapi_extra=READ, summary="Read")
    async def read(request: Request, rtype: TypeName, resource_id: ResourceId) -> Response:
        return await gateway.read(request, rtype, resource_id)

    @router.get("/{rtype}/{resource_id}/_history", dependencies=bearer, openapi_extra=HISTORY,
                summary="The versions of one resource")
    async def history(request: Request, rtype: TypeName, resource_id: ResourceId) -> Response:
        return await gateway.history(request, rtype, resource_id)

    @router.get("/{rtype}/{resource_id}/_history/{version_id}", dependencies=bearer, openapi_extra=READ,
                summary="Read one version")
    async def vread(request: Request, rtype: TypeName, resource_id: ResourceId, version_id: VersionId) -> Response:
        return await gateway.read(request, rtype, resource_id, version_id)

    @router.post("/{rtype}", dependencies=bearer, openapi_extra=_write("The resource to create"), summary="Create",
                 status_code=201)
    async def create(request: Request, rtype: TypeName) -> Response:
        return await gateway.create(request, rtype)

    @router.put("/{rtype}/{resource_id}", dependencies=bearer, openapi_extra=_write("The resource as it should be"),
                summary="Update")
    async def update(request: Request, rtype: TypeName, resource_id: ResourceId) -> Response:
        return await gateway.update(request, rtype, resource_id)

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], dependencies=bearer,
                      summary="Anything else (refused)", include_in_schema=False)
    async def unsupported(request: Request, path: str) -> Response:
        method = request.method
        if method == "DELETE":
            error = PolicyRefusal(405, "not-supported", "Deleting records is not supported through the portal")
        else:
            error = PolicyRefusal(404, "not-supported", f"{method} /fhir/{path[:100]} is not supported")
        return await gateway.refuse(request, {"DELETE": "delete", "PATCH": "patch"}.get(method, "operation"), error)

    return router
