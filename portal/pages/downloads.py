"""Download my record: the whole record as FHIR JSON (Patient/$everything, paged to completion and
streamed as it arrives, so a large record never sits whole in memory) and the International Patient
Summary (Patient/$summary), with a plain answer when the EHR does not offer it."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from ..core import PREFIX, Portal, Visit
from ..fhir import FhirProblem, NotFound, NotSupported, RecordUnavailable, resources_of

log = logging.getLogger("portal.downloads")
DOWNLOAD_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


async def everything_json(visit: Visit) -> AsyncIterator[bytes]:
    """A `collection` Bundle of every resource $everything returns, one page at a time. The first page is
    fetched before the answer starts, so a record system that is down gets an error page instead."""
    pages = visit.fhir.everything(visit.patient_id)
    first = await pages.__anext__()

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"resourceType": "Bundle", "type": "collection", "entry": ['
        seen: set[str] = set()
        count = 0
        try:
            page: dict | None = first
            while page is not None:
                for resource in resources_of(page):
                    key = f"{resource.get('resourceType')}/{resource.get('id')}"
                    if key in seen:
                        continue
                    seen.add(key)
                    yield (b"," if count else b"") + json.dumps({"resource": resource}).encode()
                    count += 1
                page = await anext(pages, None)
        except FhirProblem:
            # Headers are gone already: end the JSON cleanly; the missing tail is logged (no PHI).
            log.warning("record download stopped early after %d resources", count)
        yield b"]}"

    return stream()


def add_download_routes(router: APIRouter, portal: Portal) -> None:
    async def downloads(visit: Visit) -> Response:
        return visit.render("portal/download.html", title="Download your record",
                            problem=visit.request.query_params.get("problem"))

    async def whole_record(visit: Visit) -> Response:
        try:
            body = await everything_json(visit)
        except (RecordUnavailable, StopAsyncIteration):
            return visit.render("portal/download.html", 503, title="Download your record", problem="unavailable")
        return StreamingResponse(body, media_type="application/fhir+json", headers={
            **DOWNLOAD_HEADERS, "Content-Disposition": 'attachment; filename="health-record.json"'})

    async def summary(visit: Visit) -> Response:
        try:
            document = await visit.fhir.summary(visit.patient_id)
        except (NotSupported, NotFound):
            return visit.render("portal/download.html", 200, title="Download your record", problem="no-summary")
        except RecordUnavailable:
            return visit.render("portal/download.html", 503, title="Download your record", problem="unavailable")
        return Response(json.dumps(document), media_type="application/fhir+json", headers={
            **DOWNLOAD_HEADERS, "Content-Disposition": 'attachment; filename="patient-summary.json"'})

    router.get(f"{PREFIX}/download", include_in_schema=False)(portal.page(downloads))
    router.get(f"{PREFIX}/download/record.json", include_in_schema=False)(portal.page(whole_record))
    router.get(f"{PREFIX}/download/summary.json", include_in_schema=False)(portal.page(summary))
