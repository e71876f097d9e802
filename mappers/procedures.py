"""Procedures (operations, tests done to the body, screenings) in words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from .concepts import concept_text, concept_texts
from .dates import date_words
from .instants import FhirTime, first_time
from .references import reference_display, reference_to

STATUS_WORDS = {"completed": "Done", "in-progress": "In progress", "preparation": "Planned",
                "not-done": "Not done", "on-hold": "On hold", "stopped": "Stopped before it was finished",
                "unknown": "Status not known"}


@dataclass(frozen=True, slots=True)
class ProcedureDone:
    reference: str | None
    name: str
    performed: FhirTime | None
    date_text: str
    status_text: str
    done_by: str | None
    reason: str | None
    body_site: str | None
    outcome: str | None
    notes: tuple[str, ...]


def procedure(resource: Any, tz: tzinfo | None = None) -> ProcedureDone:
    item: Mapping[str, Any] = resource if isinstance(resource, Mapping) else {}
    performed = first_time(item, "performedDateTime", "performedPeriod")
    when = date_words(performed, tz) if performed else None
    if when is None and isinstance(item.get("performedString"), str):
        when = item["performedString"].strip() or None
    performers = [reference_display(p.get("actor")) for p in item.get("performer") or [] if isinstance(p, Mapping)]
    reasons = concept_texts(item.get("reasonCode")) + [
        r for r in (reference_display(x) for x in item.get("reasonReference") or []) if r]
    return ProcedureDone(
        reference=reference_to(item),
        name=concept_text(item.get("code"), "A procedure") or "A procedure",
        performed=performed,
        date_text=when or "an unknown date",
        status_text=STATUS_WORDS.get(str(item.get("status") or ""), "Status not known"),
        done_by=next((p for p in performers if p), None),
        reason=", ".join(reasons) or None,
        body_site=", ".join(concept_texts(item.get("bodySite"))) or None,
        outcome=concept_text(item.get("outcome")),
        notes=tuple(n["text"].strip() for n in item.get("note") or []
                    if isinstance(n, Mapping) and isinstance(n.get("text"), str) and n["text"].strip()),
    )


def procedure_list(resources: Iterable[Any], tz: tzinfo | None = None) -> list[ProcedureDone]:
    """Procedures newest first; entries in error are left out."""
    shown = [procedure(r, tz) for r in resources if isinstance(r, Mapping) and r.get("status") != "entered-in-error"]
    shown.sort(key=lambda p: p.performed.sort_key().timestamp() if p.performed else 0.0, reverse=True)
    return shown
