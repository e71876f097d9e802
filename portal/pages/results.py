"""Test results: lab panels with flags in words and colour, the clinician's notes, imaging reports,
results outside any report, and every analyte with two or more values as a trend table."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.results import results_page, trends

from ..core import PREFIX, Portal, Visit
from ..sections import load_sections

OPEN_PANELS = 4  # the newest panels are shown open; older ones fold away (a <details>, no script needed)


def add_results_routes(router: APIRouter, portal: Portal) -> None:
    async def results(visit: Visit) -> Response:
        fhir, pid = visit.fhir, visit.patient_id
        parts = await load_sections(
            reports=fhir.search("DiagnosticReport", [("patient", pid), ("_sort", "-date"), ("_count", "200")]),
            observations=fhir.search("Observation", [("patient", pid), ("_sort", "-date"), ("_count", "200")]),
        )
        reports, observations = parts["reports"].value or [], parts["observations"].value or []
        page = results_page(reports, observations, visit.portal.clock.tz)
        labs = [p for p in page.panels if not p.is_imaging]
        imaging = [p for p in page.panels if p.is_imaging]
        return visit.render("portal/results.html", title="Test results", parts=parts, labs=labs, imaging=imaging,
                            groups=page.groups, series=trends(observations), open_panels=OPEN_PANELS)

    router.get(f"{PREFIX}/results", include_in_schema=False)(portal.page(results))
