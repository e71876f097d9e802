"""Health record: visits with their written summaries, health problems, medicines (current and past),
allergies, vaccinations and procedures. Its FHIR searches run at once; the wording is mappers'."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.allergies import allergy_list
from mappers.conditions import problem_list
from mappers.immunizations import vaccine_list
from mappers.medications import medication_list
from mappers.procedures import procedure_list
from mappers.visits import visit_list
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, Portal, Visit
from ..sections import load_sections


async def show_record(visit: Visit) -> Response:
    fhir, pid, tz = visit.fhir, visit.patient_id, visit.portal.clock.tz
    locale = visit.portal.clock.formats(visit.locale)  # the reader's language, written the clinic's way
    p = [("patient", pid), ("_count", "200")]
    parts = await load_sections(
        encounters=fhir.search("Encounter", p),
        documents=fhir.search("DocumentReference", p),
        conditions=fhir.search("Condition", p),
        medicines=fhir.search("MedicationRequest", p),
        allergies=fhir.search("AllergyIntolerance", p),
        immunizations=fhir.search("Immunization", p),
        procedures=fhir.search("Procedure", p),
    )
    current_problems, past_problems = problem_list(parts["conditions"].value or [], tz, locale)
    current_medicines, past_medicines = medication_list(parts["medicines"].value or [], tz=tz, locale=locale)
    return visit.render(
        "portal/record.html", title=_l("Health record"), parts=parts,
        visits=visit_list(parts["encounters"].value or [], parts["documents"].value or [], tz=tz, locale=locale),
        current_problems=current_problems, past_problems=past_problems,
        current_medicines=current_medicines, past_medicines=past_medicines,
        allergies=allergy_list(parts["allergies"].value or [], tz, locale),
        vaccines=vaccine_list(parts["immunizations"].value or [], tz, locale),
        procedures=procedure_list(parts["procedures"].value or [], tz, locale))


def add_record_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/record", include_in_schema=False)(portal.page(show_record))
