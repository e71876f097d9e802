"""Finding a patient and opening their chart.

Every chart opened is a read through the gateway, so it is audited and shows in the patient's access
log by the staff member's name. A patient outside the person's care teams is not shown: the page says so
and offers break-the-glass, which needs a reason; the reason goes with every request about that patient
for the rest of the session and is recorded with each (purposeOfUse BTG).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mappers.staff import patient_banner
from mappers.validation import is_fhir_id
from portal.fhir import NotFound, OutsideCareTeam, PortalFhir, Refused

from ..core import StaffArea, StaffVisit
from ..roles import CLINICAL
from ..settings import PREFIX

MAX_REASON = 200


async def _optional(fhir: PortalFhir, rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]] | None:
    """A search the person's role may not be allowed (the gateway refuses): None instead of a failure."""
    try:
        return await fhir.search(rtype, params, all_pages=False)
    except Refused:
        return None


def add_chart_routes(router: APIRouter, area: StaffArea) -> None:
    async def find(visit: StaffVisit) -> Response:
        q = " ".join(visit.request.query_params.get("q", "").split())[:80]
        found: list[Any] = []
        if q:
            param = ("identifier", q) if any(c.isdigit() for c in q) else ("name", q)
            found = [patient_banner(p) for p in await visit.fhir.search("Patient", [param, ("_count", "20")],
                                                                        all_pages=False)]
        return visit.render("staff/patients.html", title="Find a patient", q=q, found=found)

    router.get(f"{PREFIX}/patients", include_in_schema=False)(area.page(find))

    @router.get(PREFIX + "/patients/{patient_id}", include_in_schema=False)
    async def chart(request: Request, patient_id: str) -> Response:
        visit = await area.visit(request)
        if not is_fhir_id(patient_id):
            raise NotFound("Patient")
        fhir = visit.fhir_about(patient_id)
        try:
            patient = await fhir.read("Patient", patient_id)
        except OutsideCareTeam:
            return visit.render("staff/break_glass.html", 403, title="Not one of your patients",
                                patient_id=patient_id, errors={})
        ref = f"Patient/{patient_id}"
        messages = await _optional(fhir, "Communication", [("subject", ref), ("_sort", "-sent"), ("_count", "10")])
        appointments = await _optional(fhir, "Appointment", [("patient", ref), ("_sort", "-date"), ("_count", "5")])
        conditions = None
        if visit.role in CLINICAL:
            conditions = await _optional(fhir, "Condition", [("patient", ref), ("clinical-status", "active")])
        return visit.render("staff/chart.html", title=f"Chart: {patient_banner(patient).name}",
                            banner=patient_banner(patient), glass=visit.glass_reason(patient_id),
                            messages=messages or [], appointments=appointments, conditions=conditions)

    @router.post(PREFIX + "/patients/{patient_id}/break-glass", include_in_schema=False)
    async def break_glass(request: Request, patient_id: str) -> Response:
        visit = await area.visit(request)
        await visit.check_csrf()
        if not is_fhir_id(patient_id):
            raise NotFound("Patient")
        form = await request.form()
        reason = " ".join(str(form.get("reason") or "").split())
        if not reason or len(reason) > MAX_REASON:
            return visit.render("staff/break_glass.html", 400, title="Not one of your patients",
                                patient_id=patient_id,
                                errors={"reason": [f"Say why you need this record now (1 to {MAX_REASON} "
                                                   "characters)."]})
        visit.session.extra.setdefault("glass", {})[patient_id] = reason
        await area.store.save(visit.session)
        return RedirectResponse(f"{PREFIX}/patients/{patient_id}", status_code=303)
