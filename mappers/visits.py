"""Visits (Encounter) with their notes (DocumentReference, Composition) as readable text."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .concepts import concept_text, concept_texts
from .dates import date_words, time_of_day, unknown_date
from .documents import document_text
from .instants import FhirTime, first_time, parse_fhir_time
from .references import parse_reference, reference_display, reference_to

CLASS_WORDS = {"AMB": N_("Office visit"), "VR": N_("Video visit"), "EMER": N_("Emergency visit"),
               "IMP": N_("Hospital stay"), "ACUTE": N_("Hospital stay"), "NONAC": N_("Hospital stay"),
               "SS": N_("Day procedure"), "HH": N_("Home visit"), "OBSENC": N_("Observation stay"),
               "PRENC": N_("Pre-admission visit"), "FLD": N_("Visit outside the clinic")}
STATUS_WORDS = {"planned": N_("Upcoming"), "arrived": N_("Checked in"), "triaged": N_("Checked in"),
                "in-progress": N_("Happening now"), "onleave": N_("On leave"), "finished": N_("Done"),
                "cancelled": N_("Cancelled"), "unknown": N_("Status not known")}
STATUS_NOT_KNOWN = N_("Status not known")
A_VISIT = N_("Visit")
A_NOTE = N_("Visit note")
HIDDEN_STATUSES = frozenset({"entered-in-error"})


@dataclass(frozen=True, slots=True)
class VisitNote:
    reference: str | None
    title: str
    author: str | None
    date_text: str | None
    text: str | None  # None when the note is in a form that cannot be shown as text (e.g. a PDF)


@dataclass(frozen=True, slots=True)
class Visit:
    reference: str | None
    kind: str  # "Annual physical", "Video visit"
    is_video: bool
    start: FhirTime | None
    date_text: str
    time_text: str | None
    status_key: str  # the Encounter's status code ("finished")
    status_text: str
    clinicians: tuple[str, ...]
    place: str | None
    reasons: tuple[str, ...]
    diagnoses: tuple[str, ...]
    notes: tuple[VisitNote, ...]


def _encounters_of(resource: Mapping[str, Any]) -> list[str]:
    """The Encounters a DocumentReference or Composition belongs to, as `Type/id`."""
    if resource.get("resourceType") == "Composition":
        candidates = [resource.get("encounter")]
    else:
        context = resource.get("context") if isinstance(resource.get("context"), Mapping) else {}
        encounter = context.get("encounter")
        candidates = encounter if isinstance(encounter, list) else [encounter]
    return [r.text for c in candidates if (r := parse_reference(c, "Encounter"))]


def visit_note(document: Any, tz: tzinfo | None = None, locale: str = ENGLISH) -> VisitNote:
    item: Mapping[str, Any] = document if isinstance(document, Mapping) else {}
    title = item.get("title") or item.get("description")
    if not isinstance(title, str) or not title.strip():
        title = concept_text(item.get("type")) or gettext_in(locale, A_NOTE)
    when = first_time(item, "date") or parse_fhir_time(
        next((c.get("attachment", {}).get("creation") for c in item.get("content") or []
              if isinstance(c, Mapping) and isinstance(c.get("attachment"), Mapping)), None))
    authors = [a for a in (reference_display(x) for x in item.get("author") or []) if a]
    return VisitNote(
        reference=reference_to(item),
        title=str(title).strip(),
        author=", ".join(authors) or None,
        date_text=date_words(when, tz, locale) if when else None,
        text=document_text(item),
    )


def notes_by_visit(documents: Iterable[Any], tz: tzinfo | None = None,
                   locale: str = ENGLISH) -> dict[str, list[VisitNote]]:
    """Readable notes keyed by the `Encounter/id` they belong to (superseded and erroneous ones left out)."""
    found: dict[str, list[VisitNote]] = defaultdict(list)
    for document in documents:
        if not isinstance(document, Mapping) or document.get("status") in ("entered-in-error", "superseded"):
            continue
        for encounter in _encounters_of(document):
            found[encounter].append(visit_note(document, tz, locale))
    return found


def visit(encounter: Any, notes: Iterable[VisitNote] = (), resources: Mapping[str, Any] | None = None,
          tz: tzinfo | None = None, locale: str = ENGLISH) -> Visit:
    """One Encounter in words, in `locale`."""
    item: Mapping[str, Any] = encounter if isinstance(encounter, Mapping) else {}
    class_code = (item.get("class") or {}).get("code") if isinstance(item.get("class"), Mapping) else None
    start = first_time(item, "period")
    clinicians = [reference_display(p.get("individual"), resources) for p in item.get("participant") or []
                  if isinstance(p, Mapping)]
    places = [reference_display(x.get("location"), resources) for x in item.get("location") or []
              if isinstance(x, Mapping)]
    place = next((p for p in places if p), None) or reference_display(item.get("serviceProvider"), resources)
    diagnoses = [reference_display(d.get("condition"), resources) for d in item.get("diagnosis") or []
                 if isinstance(d, Mapping)]
    return Visit(
        reference=reference_to(item),
        kind=concept_text(item.get("type")) or gettext_in(locale, CLASS_WORDS.get(str(class_code), A_VISIT)),
        is_video=class_code == "VR",
        start=start,
        date_text=date_words(start, tz, locale) if start else unknown_date(locale),
        time_text=time_of_day(start.moment, tz, locale) if start and start.moment else None,
        status_key=str(item.get("status") or "unknown"),
        status_text=gettext_in(locale, STATUS_WORDS.get(str(item.get("status") or ""), STATUS_NOT_KNOWN)),
        clinicians=tuple(dict.fromkeys(c for c in clinicians if c)),
        place=place,
        reasons=tuple(concept_texts(item.get("reasonCode"))),
        diagnoses=tuple(dict.fromkeys(d for d in diagnoses if d)),
        notes=tuple(notes),
    )


def visit_list(encounters: Iterable[Any], documents: Iterable[Any] = (), resources: Mapping[str, Any] | None = None,
               tz: tzinfo | None = None, locale: str = ENGLISH) -> list[Visit]:
    """Visits newest first, each with its notes (DocumentReferences and Compositions that name it)."""
    notes = notes_by_visit(documents, tz, locale)
    shown = [visit(e, notes.get(reference_to(e) or "", ()), resources, tz, locale) for e in encounters
             if isinstance(e, Mapping) and e.get("status") not in HIDDEN_STATUSES]
    shown.sort(key=lambda v: v.start.sort_key().timestamp() if v.start else 0.0, reverse=True)
    return shown
