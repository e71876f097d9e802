"""Building /fhir answers: FHIR JSON bodies, validators (ETag, Last-Modified), 304s and cache labels."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cache import CachedResponse

from .caching import STALE
from .errors import FHIR_JSON
from .writes import etag_of

FHIR_JSON_UTF8 = f"{FHIR_JSON}; charset=utf-8"


class FHIRResponse(JSONResponse):
    """A FHIR JSON answer (orjson; also what the OpenAPI document names as every route's media type)."""

    media_type = FHIR_JSON_UTF8

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dump(content)


def dump(body: Any) -> bytes:
    return orjson.dumps(body)


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return FHIRResponse(dump(body), status_code=status, headers=headers)


def conditional_response(request: Request, body: bytes, headers: dict[str, str], status: int = 200) -> Response:
    """``body``, or 304 with the same headers when the client's If-None-Match is the answer's ETag."""
    inm = request.headers.get("if-none-match")
    if inm and headers.get("ETag") and inm.strip() == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return FHIRResponse(body, status_code=status, headers=headers)


def cached_response(request: Request, entry: CachedResponse, label: str) -> Response:
    headers = {"X-Cache": label}
    if entry.etag:
        headers["ETag"] = entry.etag
    if entry.last_modified:
        headers["Last-Modified"] = entry.last_modified
    if label == STALE:
        # RFC 9111 §5.5 / RFC 7234 Warning 110: the EHR could not be asked; this is what we last knew.
        headers["Warning"] = '110 - "Response is Stale"'
        headers["Age"] = str(int(entry.age()))
    return conditional_response(request, entry.body, headers, entry.status)


def http_date(instant: str | None) -> str | None:
    if not instant:
        return None
    try:
        return format_datetime(datetime.fromisoformat(instant.replace("Z", "+00:00")), usegmt=True)
    except ValueError:
        return None


def resource_headers(resource: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    if etag := etag_of(resource):
        headers["ETag"] = etag
    if last := http_date((resource.get("meta") or {}).get("lastUpdated")):
        headers["Last-Modified"] = last
    return headers


def written_response(resource: dict[str, Any], status: int, public_base: str) -> Response:
    """The answer to a create or update: the resource, its validators and, for a create, its Location."""
    headers = resource_headers(resource)
    rtype, resource_id = resource.get("resourceType"), resource.get("id")
    if rtype and resource_id and status == 201:
        version = (resource.get("meta") or {}).get("versionId")
        headers["Location"] = f"{public_base}/{rtype}/{resource_id}" + (f"/_history/{version}" if version else "")
    return fhir_response(resource, status=status, headers=headers)
