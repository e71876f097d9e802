"""Health record: visits with their written summaries, health problems, medicines (current and past),
allergies and vaccinations. Its FHIR searches run at once.

The per-resource wording below uses mappers' primitives (concept text, reference display, dates); it is
the seam where mappers' medication, allergy, immunization and visit shaping plugs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from mappers.concepts import concept_text, concept_texts
from mappers.documents import document_text
from mappers.instants import first_time
from mappers.references import parse_reference, reference_display

from ..clock import Clock
from ..core import PREFIX, Portal, Visit
from ..sections import load_sections

CONDITION_STATUS = {"active": "Current", "recurrence": "Current", "relapse": "Current", "inactive": "Past",
                    "remission": "In remission", "resolved": "Resolved"}
MEDICINE_STATUS = {"active": "Current", "on-hold": "On hold", "stopped": "Stopped", "completed": "Finished",
                   "cancelled": "Cancelled", "draft": "Not started yet"}
CRITICALITY = {"high": "Serious", "low": "Mild", "unable-to-assess": "Not known"}
SEVERITY = {"severe": "Severe", "moderate": "Moderate", "mild": "Mild"}


@dataclass(frozen=True)
class VisitItem:
    when: str
    what: str
    clinician: str | None
    reasons: list[str]
    summary: str | None


@dataclass(frozen=True)
class Item:
    """One line of the record: a name, what state it is in, and details in words."""

    name: str
    status: str | None
    details: list[str]


def _status(resource: Mapping[str, Any], field: str) -> str | None:
    concept = resource.get(field)
    codes = [c.get("code") for c in (concept or {}).get("coding") or []] if isinstance(concept, Mapping) else []
    return next((CONDITION_STATUS[c] for c in codes if c in CONDITION_STATUS), concept_text(concept))


def _sort_newest(resources: list[dict[str, Any]], *fields: str) -> list[dict[str, Any]]:
    def key(r: dict[str, Any]) -> float:
        found = first_time(r, *fields)
        return -found.sort_key().timestamp() if found else 0.0
    return sorted(resources, key=key)


def _visits(clock: Clock, encounters: list[dict[str, Any]], documents: list[dict[str, Any]]) -> list[VisitItem]:
    notes: dict[str, str] = {}
    for doc in documents:
        for ref in (doc.get("context") or {}).get("encounter") or []:
            parsed = parse_reference(ref)
            text = document_text(doc)
            if parsed and text:
                notes.setdefault(parsed.text, text)
    out = []
    for enc in _sort_newest(encounters, "period"):
        clinician = next((reference_display(p.get("individual")) for p in enc.get("participant") or []
                          if reference_display(p.get("individual"))), None)
        out.append(VisitItem(clock.date((enc.get("period") or {}).get("start")),
                             concept_text((enc.get("type") or [None])[0]) or "Visit", clinician,
                             concept_texts(enc.get("reasonCode")), notes.get(f"Encounter/{enc.get('id')}")))
    return out


def _condition(clock: Clock, c: Mapping[str, Any]) -> Item:
    details = []
    if c.get("onsetDateTime"):
        details.append(f"Since {clock.date(c['onsetDateTime'])}")
    if c.get("abatementDateTime"):
        details.append(f"Ended {clock.date(c['abatementDateTime'])}")
    return Item(concept_text(c.get("code")) or "A health problem", _status(c, "clinicalStatus"), details)


def _medicine(m: Mapping[str, Any]) -> Item:
    details = [d["text"] for d in m.get("dosageInstruction") or [] if isinstance(d, Mapping) and d.get("text")]
    if prescriber := reference_display(m.get("requester")):
        details.append(f"Prescribed by {prescriber}")
    repeats = (m.get("dispenseRequest") or {}).get("numberOfRepeatsAllowed")
    if m.get("status") == "active" and isinstance(repeats, int):
        details.append("No refills left" if repeats == 0 else f"{repeats} refill{'s' if repeats != 1 else ''} left")
    if reason := concept_text(m.get("statusReason")):
        details.append(f"Why it changed: {reason}")
    return Item(concept_text(m.get("medicationCodeableConcept")) or reference_display(m.get("medicationReference"))
                or "A medicine", MEDICINE_STATUS.get(str(m.get("status")), None), details)


def _allergy(a: Mapping[str, Any]) -> Item:
    details = []
    for reaction in a.get("reaction") or []:
        signs = ", ".join(concept_texts(reaction.get("manifestation")))
        severity = SEVERITY.get(str(reaction.get("severity")))
        if signs:
            details.append(f"Reaction: {signs}" + (f" ({severity.lower()})" if severity else ""))
    return Item(concept_text(a.get("code")) or "An allergy", CRITICALITY.get(str(a.get("criticality"))), details)


def _immunization(clock: Clock, i: Mapping[str, Any]) -> Item:
    when = i.get("occurrenceDateTime") or i.get("occurrenceString")
    status = "Not given" if i.get("status") == "not-done" else None
    given = [f"Given {clock.date(when)}"] if when else []
    return Item(concept_text(i.get("vaccineCode")) or "A vaccine", status, given)


def add_record_routes(router: APIRouter, portal: Portal) -> None:
    async def record(visit: Visit) -> Response:
        fhir, pid, clock = visit.fhir, visit.patient_id, visit.portal.clock
        p = [("patient", pid), ("_count", "200")]
        parts = await load_sections(
            encounters=fhir.search("Encounter", p),
            documents=fhir.search("DocumentReference", p),
            conditions=fhir.search("Condition", p),
            medicines=fhir.search("MedicationRequest", p),
            allergies=fhir.search("AllergyIntolerance", p),
            immunizations=fhir.search("Immunization", p),
        )
        meds = _sort_newest(parts["medicines"].value or [], "authoredOn")
        conditions = _sort_newest(parts["conditions"].value or [], "onsetDateTime", "recordedDate")
        return visit.render(
            "portal/record.html", title="Health record", parts=parts,
            visits=_visits(clock, parts["encounters"].value or [], parts["documents"].value or []),
            problems=[_condition(clock, c) for c in conditions],
            current_medicines=[_medicine(m) for m in meds if m.get("status") in ("active", "on-hold")],
            past_medicines=[_medicine(m) for m in meds if m.get("status") not in ("active", "on-hold")],
            allergies=[_allergy(a) for a in parts["allergies"].value or []],
            immunizations=[_immunization(clock, i)
                           for i in _sort_newest(parts["immunizations"].value or [], "occurrenceDateTime")])

    router.get(f"{PREFIX}/record", include_in_schema=False)(portal.page(record))
