"""Health problems (Condition) in words: current or past, since when, confirmed or not."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .concepts import concept_text
from .dates import date_words
from .instants import FhirTime, parse_fhir_time
from .references import reference_display, reference_to

CURRENT = frozenset({"active", "recurrence", "relapse"})
HIDDEN_VERIFICATION = frozenset({"entered-in-error", "refuted"})
CLINICAL_WORDS = {"active": N_("Current"), "recurrence": N_("Back again"), "relapse": N_("Back again"),
                  "inactive": N_("Past"), "remission": N_("In remission (not active now)"),
                  "resolved": N_("Resolved")}
CATEGORY_WORDS = {"problem-list-item": N_("Health problem"), "encounter-diagnosis": N_("Found at a visit"),
                  "health-concern": N_("Health concern")}
CURRENT_WORD, PAST_WORD = N_("Current"), N_("Past")
A_PROBLEM = N_("A health problem")


@dataclass(frozen=True, slots=True)
class Problem:
    reference: str | None
    name: str
    is_current: bool
    status_text: str
    category: str | None
    since: FhirTime | None
    since_text: str | None  # "March 2024" / "Tuesday 4 March 2024" / "age 40" / the record's words
    ended_text: str | None
    unconfirmed: bool
    recorded_by: str | None
    notes: tuple[str, ...]


def _code(concept: Any) -> str | None:
    for coding in (concept or {}).get("coding") or [] if isinstance(concept, Mapping) else []:
        if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
            return coding["code"]
    return None


def _when(item: Mapping[str, Any], prefix: str, tz: tzinfo | None,
          locale: str = ENGLISH) -> tuple[FhirTime | None, str | None]:
    found = parse_fhir_time(item.get(f"{prefix}DateTime"))
    period = item.get(f"{prefix}Period")
    if found is None and isinstance(period, Mapping):
        found = parse_fhir_time(period.get("start"))
    if found is not None:
        return found, date_words(found, tz, locale)
    age = item.get(f"{prefix}Age")
    if isinstance(age, Mapping) and isinstance(age.get("value"), (int, float)):
        return None, gettext_in(locale, "age %(years)s") % {"years": f"{age['value']:g}"}
    text = item.get(f"{prefix}String")
    return None, text.strip() if isinstance(text, str) and text.strip() else None


def problem(resource: Any, tz: tzinfo | None = None, locale: str = ENGLISH) -> Problem:
    """One Condition in words, in `locale`."""
    item: Mapping[str, Any] = resource if isinstance(resource, Mapping) else {}
    clinical = _code(item.get("clinicalStatus"))
    abated = any(k.startswith("abatement") for k in item)
    current = clinical in CURRENT if clinical else not abated
    since, since_text = _when(item, "onset", tz, locale)
    _, ended_text = _when(item, "abatement", tz, locale)
    categories = [c for c in (_code(x) for x in item.get("category") or []) if c]
    notes = tuple(n["text"].strip() for n in item.get("note") or []
                  if isinstance(n, Mapping) and isinstance(n.get("text"), str) and n["text"].strip())
    return Problem(
        reference=reference_to(item),
        name=concept_text(item.get("code")) or gettext_in(locale, A_PROBLEM),
        is_current=current,
        status_text=gettext_in(locale, CLINICAL_WORDS.get(clinical or "", CURRENT_WORD if current else PAST_WORD)),
        category=next((gettext_in(locale, CATEGORY_WORDS[c]) for c in categories if c in CATEGORY_WORDS), None),
        since=since,
        since_text=since_text,
        ended_text=ended_text,
        unconfirmed=_code(item.get("verificationStatus")) in ("unconfirmed", "provisional", "differential"),
        recorded_by=reference_display(item.get("recorder")) or reference_display(item.get("asserter")),
        notes=notes,
    )


def problem_list(resources: Iterable[Any], tz: tzinfo | None = None,
                 locale: str = ENGLISH) -> tuple[list[Problem], list[Problem]]:
    """(current, past) problems, each newest first; refuted ones and entries in error are left out."""
    shown = [problem(r, tz, locale) for r in resources if isinstance(r, Mapping)
             and _code(r.get("verificationStatus")) not in HIDDEN_VERIFICATION]
    shown.sort(key=lambda p: p.since.sort_key().timestamp() if p.since else 0.0, reverse=True)
    return [p for p in shown if p.is_current], [p for p in shown if not p.is_current]
