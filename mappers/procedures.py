"""Procedures (operations, tests done to the body, screenings) in words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .concepts import concept_text, concept_texts
from .dates import date_words, unknown_date
from .instants import FhirTime, first_time
from .references import reference_display, reference_to

STATUS_WORDS = {"completed": N_("Done"), "in-progress": N_("In progress"), "preparation": N_("Planned"),
                "not-done": N_("Not done"), "on-hold": N_("On hold"), "stopped": N_("Stopped before it was finished"),
                "unknown": N_("Status not known")}
STATUS_NOT_KNOWN = N_("Status not known")
A_PROCEDURE = N_("A procedure")


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


def procedure(resource: Any, tz: tzinfo | None = None, locale: str = ENGLISH) -> ProcedureDone:
    """One Procedure in words, in `locale`."""
    item: Mapping[str, Any] = resource if isinstance(resource, Mapping) else {}
    performed = first_time(item, "performedDateTime", "performedPeriod")
    when = date_words(performed, tz, locale) if performed else None
    if when is None and isinstance(item.get("performedString"), str):
        when = item["performedString"].strip() or None
    performers = [reference_display(p.get("actor")) for p in item.get("performer") or [] if isinstance(p, Mapping)]
    reasons = concept_texts(item.get("reasonCode")) + [
        r for r in (reference_display(x) for x in item.get("reasonReference") or []) if r]
    return ProcedureDone(
        reference=reference_to(item),
        name=concept_text(item.get("code")) or gettext_in(locale, A_PROCEDURE),
        performed=performed,
        date_text=when or unknown_date(locale),
        status_text=gettext_in(locale, STATUS_WORDS.get(str(item.get("status") or ""), STATUS_NOT_KNOWN)),
        done_by=next((p for p in performers if p), None),
        reason=", ".join(reasons) or None,
        body_site=", ".join(concept_texts(item.get("bodySite"))) or None,
        outcome=concept_text(item.get("outcome")),
        notes=tuple(n["text"].strip() for n in item.get("note") or []
                    if isinstance(n, Mapping) and isinstance(n.get("text"), str) and n["text"].strip()),
    )


def procedure_list(resources: Iterable[Any], tz: tzinfo | None = None,
                   locale: str = ENGLISH) -> list[ProcedureDone]:
    """Procedures newest first; entries in error are left out."""
    shown = [procedure(r, tz, locale) for r in resources
             if isinstance(r, Mapping) and r.get("status") != "entered-in-error"]
    shown.sort(key=lambda p: p.performed.sort_key().timestamp() if p.performed else 0.0, reverse=True)
    return shown
