"""Home: what is coming up and what is new, in one glance: next visits, new results, new messages,
medicines (refills due first) and vaccines or screenings due. Its FHIR searches run at once; the wording
is mappers'."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.appointments import upcoming_appointments
from mappers.care_due import care_due, evidence_codes, load_rules
from mappers.explanations import load_explanations, plain_names
from mappers.instants import parse_instant
from mappers.medications import Medication, medication_list, refill_due
from mappers.messages import unread_count
from mappers.results import report_panel

from ..core import PREFIX, Portal, Visit
from ..sections import load_sections

UPCOMING = 3
NEW_RESULTS_SHOWN = 5
REFILL_WITHIN_DAYS = 14


@dataclass(frozen=True)
class NewResult:
    name: str
    date_text: str
    is_new: bool


@dataclass(frozen=True)
class MedicineLine:
    medicine: Medication
    refill_due: bool


def _after(value: Any, since: float | None) -> bool:
    when = parse_instant(value)
    return since is not None and when is not None and when.timestamp() > since


def _reported(report: Mapping[str, Any]) -> Any:
    return report.get("issued") or report.get("effectiveDateTime")


# Only the tests the rules count are fetched for "due", not every result (vaccines: all of them).
NARROWED = ("Observation", "DiagnosticReport", "Procedure")


def _evidence_search(visit: Visit, rtype: str, codes: dict[str, list[str]]) -> Any:
    params = [("patient", visit.patient_id), ("_sort", "-date"), ("_count", "200")]
    if rtype in NARROWED and codes.get(rtype):
        params.append(("code", ",".join(codes[rtype])))
    return visit.fhir.search(rtype, params, all_pages=False)


async def show_dashboard(visit: Visit) -> Response:
    names, rules = plain_names(load_explanations()), load_rules()  # both validated once (cached)
    codes = evidence_codes(rules)
    fhir, pid, clock = visit.fhir, visit.patient_id, visit.portal.clock
    since = visit.session.previous_sign_in
    now, today, tz = clock.now(), clock.today(), clock.tz
    parts = await load_sections(
        appointments=fhir.search("Appointment", [("patient", pid), ("date", f"ge{today.isoformat()}"),
                                                 ("status", "booked"), ("_sort", "date"), ("_count", "10")],
                                 all_pages=False),
        reports=fhir.search("DiagnosticReport", [("patient", pid), ("_sort", "-date"), ("_count", "20")],
                            all_pages=False),
        messages=fhir.search("Communication", [("subject", pid), ("_sort", "-sent"), ("_count", "50")],
                             all_pages=False),
        medicines=fhir.search("MedicationRequest", [("patient", pid), ("status", "active")]),
        patient=fhir.read("Patient", pid),
        immunizations=_evidence_search(visit, "Immunization", codes),
        conditions=fhir.search("Condition", [("patient", pid), ("_count", "200")], all_pages=False),
        tests=_evidence_search(visit, "Observation", codes),
        test_reports=_evidence_search(visit, "DiagnosticReport", codes),
        procedures=_evidence_search(visit, "Procedure", codes),
    )
    upcoming = upcoming_appointments(parts["appointments"].value or [], today, now, tz=tz)[:UPCOMING]
    reports = parts["reports"].value or []  # newest first, as asked for
    results = [NewResult(report_panel(r, None, tz, names).name, clock.day(_reported(r)), _after(_reported(r), since))
               for r in reports[:NEW_RESULTS_SHOWN]]
    current, _ = medication_list(parts["medicines"].value or [], tz=tz)
    medicines = sorted((MedicineLine(m, refill_due(m, today, REFILL_WITHIN_DAYS)) for m in current),
                       key=lambda line: not line.refill_due)
    due_parts = ("patient", "immunizations", "conditions", "tests", "test_reports", "procedures")
    due_ok = all(parts[name].ok for name in due_parts)
    record = [r for name in due_parts[1:] for r in parts[name].value or []]
    due = care_due(parts["patient"].value or {}, record, today, rules) if due_ok else []
    return visit.render(
        "portal/dashboard.html", title="Home", parts=parts, due_ok=due_ok, upcoming=upcoming, results=results,
        new_results=sum(1 for r in reports if _after(_reported(r), since)),
        unread_messages=unread_count(parts["messages"].value or [], [f"Patient/{pid}", visit.session.fhir_user]),
        medicines=medicines, refills_due=sum(1 for line in medicines if line.refill_due), due=due,
        previous_sign_in=since, first_sign_in=since is None)


def add_dashboard_routes(router: APIRouter, portal: Portal) -> None:
    router.get(f"{PREFIX}/", include_in_schema=False)(portal.page(show_dashboard))
