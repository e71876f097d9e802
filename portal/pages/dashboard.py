"""Home: what is coming up and what is new, in one glance. Its FHIR searches run at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.concepts import concept_text
from mappers.instants import parse_instant
from mappers.references import parse_reference, reference_display

from ..core import PREFIX, Portal, Visit
from ..sections import load_sections

UPCOMING = 3
NEW_RESULTS_SHOWN = 5


@dataclass(frozen=True)
class Upcoming:
    when: str
    what: str
    with_whom: str | None
    instructions: str | None


@dataclass(frozen=True)
class NewResult:
    name: str
    when: str
    is_new: bool


@dataclass(frozen=True)
class ActiveMedicine:
    name: str
    instructions: str | None
    refills_left: int | None


def _ref(value: Any) -> str | None:
    ref = parse_reference(value)
    return ref.text if ref else None


def _after(value: Any, since: float | None) -> bool:
    when = parse_instant(value)
    return since is not None and when is not None and when.timestamp() > since


def _appointment(visit: Visit, appt: Mapping[str, Any]) -> Upcoming:
    clinicians = [reference_display(p.get("actor")) for p in appt.get("participant") or []
                  if (_ref(p.get("actor")) or "").startswith(("Practitioner/", "PractitionerRole/"))]
    what = concept_text((appt.get("serviceType") or [None])[0]) or appt.get("description") or "Visit"
    return Upcoming(visit.portal.clock.when(appt.get("start")), what, next((c for c in clinicians if c), None),
                    appt.get("patientInstruction"))


def _medicine(request: Mapping[str, Any]) -> ActiveMedicine:
    dosage = [d.get("text") for d in request.get("dosageInstruction") or [] if d.get("text")]
    repeats = (request.get("dispenseRequest") or {}).get("numberOfRepeatsAllowed")
    return ActiveMedicine(concept_text(request.get("medicationCodeableConcept")) or
                          reference_display(request.get("medicationReference")) or "A medicine",
                          dosage[0] if dosage else None, repeats if isinstance(repeats, int) else None)


def add_dashboard_routes(router: APIRouter, portal: Portal) -> None:
    async def dashboard(visit: Visit) -> Response:
        fhir, pid = visit.fhir, visit.patient_id
        since = visit.session.previous_sign_in
        today = visit.portal.clock.today().isoformat()
        parts = await load_sections(
            appointments=fhir.search("Appointment", [("patient", pid), ("date", f"ge{today}"),
                                                     ("status", "booked"), ("_sort", "date"), ("_count", "10")],
                                     all_pages=False),
            reports=fhir.search("DiagnosticReport", [("patient", pid), ("_sort", "-date"), ("_count", "20")],
                                all_pages=False),
            messages=fhir.search("Communication", [("subject", pid), ("_sort", "-sent"), ("_count", "50")],
                                 all_pages=False),
            medicines=fhir.search("MedicationRequest", [("patient", pid), ("status", "active")]),
        )
        now = datetime.now(UTC)
        appointments = parts["appointments"]
        upcoming = [_appointment(visit, a) for a in (appointments.value or [])
                    if (parse_instant(a.get("start")) or now) >= now][:UPCOMING]
        reports = parts["reports"].value or []
        results = [NewResult(concept_text(r.get("code")) or "Test result",
                             visit.portal.clock.day(r.get("issued") or r.get("effectiveDateTime")),
                             _after(r.get("issued") or r.get("effectiveDateTime"), since))
                   for r in reports[:NEW_RESULTS_SHOWN]]
        new_results = sum(1 for r in reports if _after(r.get("issued") or r.get("effectiveDateTime"), since))
        me = f"Patient/{pid}"
        messages = parts["messages"].value or []
        new_messages = sum(1 for m in messages
                           if any(_ref(r) == me for r in m.get("recipient") or [])
                           and _after(m.get("sent"), since))
        medicines = [_medicine(m) for m in parts["medicines"].value or []]
        return visit.render(
            "portal/dashboard.html", title="Home", parts=parts, upcoming=upcoming, results=results,
            new_results=new_results, new_messages=new_messages, medicines=medicines,
            previous_sign_in=since, first_sign_in=since is None)

    router.get(f"{PREFIX}/", include_in_schema=False)(portal.page(dashboard))
