"""Download my record: the whole record as FHIR JSON (Patient/$everything, paged to completion and
streamed as it arrives, so a large record never sits whole in memory), the International Patient Summary
(Patient/$summary, with a plain answer when the EHR does not offer it), and a printable health summary as a
page (with a print stylesheet) and as a PDF made on the server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from mappers.explanations import load_explanations, plain_names
from mappers.notebook import without_notebook
from mappers.summary import HealthSummary, health_summary
from web.i18n import lazy_gettext as _l
from web.templates import PRODUCT_NAME

from ..core import PREFIX, Portal, Visit
from ..fhir import FhirProblem, NotFound, NotSupported, RecordUnavailable, resources_of
from ..sections import load_sections
from ..summary_pdf import chunks, summary_pdf

log = logging.getLogger("portal.downloads")
DOWNLOAD_TITLE = _l("Download your record")
DOWNLOAD_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
SUMMARY_TYPES = ("Condition", "MedicationRequest", "AllergyIntolerance", "Immunization", "Procedure", "Observation",
                 "Encounter")

# What "my record" holds: the clinical record, visits, messages, forms, requests and bills, and who is who
# in them. The access log (AuditEvent) is left out: it has its own page, and on a busy record it is most of
# what $everything would return (thousands of entries that make the download minutes long).
RECORD_TYPES = ("Patient", "RelatedPerson", "Encounter", "Condition", "Observation", "DiagnosticReport",
                "DocumentReference", "MedicationRequest", "MedicationDispense", "AllergyIntolerance",
                "Immunization", "Procedure", "Appointment", "Communication", "ServiceRequest", "Task",
                "QuestionnaireResponse", "CareTeam", "Coverage", "Account", "Invoice", "ChargeItem",
                "Practitioner", "PractitionerRole", "Organization")


async def everything_json(visit: Visit) -> AsyncIterator[bytes]:
    """A `collection` Bundle of every resource $everything returns, one page at a time. The first page is
    fetched before the answer starts, so a record system that is down gets an error page instead."""
    pages = visit.fhir.everything(visit.patient_id, types=RECORD_TYPES)
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


async def load_summary(visit: Visit) -> tuple[HealthSummary, dict[str, Any]]:
    """The health summary of the open record, its searches run at once. A part the record system cannot
    answer makes the whole summary unavailable (a printed summary with a silent gap would mislead)."""
    fhir, pid, clock = visit.fhir, visit.patient_id, visit.portal.clock
    params = [("patient", pid), ("_count", "200")]
    parts = await load_sections(patient=fhir.read("Patient", pid),
                                **{t: fhir.search(t, params) for t in SUMMARY_TYPES})
    if not all(part.ok for part in parts.values()):
        raise RecordUnavailable("summary")
    # The health notebook's entries are the patient's own notes: they have their own printout.
    resources = without_notebook(r for t in SUMMARY_TYPES for r in parts[t].value or [])
    locale = clock.formats(visit.locale)  # the reader's language, written the clinic's way
    summary = health_summary(parts["patient"].value or {}, resources, clock.today(), clock.tz,
                             plain_names(load_explanations(), locale), locale)
    return summary, parts


def _problem_page(visit: Visit, problem: str, status: int) -> Response:
    return visit.render("portal/download.html", status, title=DOWNLOAD_TITLE, problem=problem)


async def show_downloads(visit: Visit) -> Response:
    return visit.render("portal/download.html", title=DOWNLOAD_TITLE,
                        problem=visit.request.query_params.get("problem"))


async def whole_record(visit: Visit) -> Response:
    try:
        body = await everything_json(visit)
    except (RecordUnavailable, StopAsyncIteration):
        return _problem_page(visit, "unavailable", 503)
    return StreamingResponse(body, media_type="application/fhir+json", headers={
        **DOWNLOAD_HEADERS, "Content-Disposition": 'attachment; filename="health-record.json"'})


async def patient_summary_document(visit: Visit) -> Response:
    try:
        document = await visit.fhir.summary(visit.patient_id)
    except (NotSupported, NotFound):
        return _problem_page(visit, "no-summary", 200)
    except RecordUnavailable:
        return _problem_page(visit, "unavailable", 503)
    if document.get("resourceType") != "Bundle" or document.get("type") != "document":
        log.warning("the patient summary was not a document bundle")
        return _problem_page(visit, "no-summary", 200)
    return Response(json.dumps(document), media_type="application/fhir+json", headers={
        **DOWNLOAD_HEADERS, "Content-Disposition": 'attachment; filename="patient-summary.json"'})


async def printable_summary(visit: Visit) -> Response:
    try:
        summary, _ = await load_summary(visit)
    except RecordUnavailable:
        return _problem_page(visit, "unavailable", 503)
    return visit.render("portal/summary.html", title=_l("Health summary"), summary=summary)


async def summary_as_pdf(visit: Visit) -> Response:
    try:
        summary, _ = await load_summary(visit)
    except RecordUnavailable:
        return _problem_page(visit, "unavailable", 503)
    # Setting type and fitting fonts is CPU work: off the event loop, so other pages keep answering.
    data = await asyncio.to_thread(summary_pdf, summary, str(PRODUCT_NAME), visit.locale)
    return StreamingResponse(_iterate(data), media_type="application/pdf", headers={
        **DOWNLOAD_HEADERS, "Content-Disposition": 'attachment; filename="health-summary.pdf"',
        "Content-Length": str(len(data))})


async def _iterate(data: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks(data):
        yield chunk


async def pdf_progress(visit: Visit) -> Response:
    """Shown while the PDF is made: the page asks for the file by itself (a meta refresh, no script), and
    says what is happening; the browser keeps it on screen while the download starts."""
    return visit.render("portal/making_pdf.html", title=_l("Making your PDF"))


def add_download_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/download", include_in_schema=False)(portal.page(show_downloads))
    router.get(f"{PREFIX}/download/record.json", include_in_schema=False)(portal.page(whole_record))
    router.get(f"{PREFIX}/download/summary.json", include_in_schema=False)(portal.page(patient_summary_document))
    router.get(f"{PREFIX}/download/summary", include_in_schema=False)(portal.page(printable_summary))
    router.get(f"{PREFIX}/download/summary.pdf", include_in_schema=False)(portal.page(summary_as_pdf))
    router.get(f"{PREFIX}/download/making-pdf", include_in_schema=False)(portal.page(pdf_progress))
