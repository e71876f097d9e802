"""Allergies and intolerances in words: what to, what happens, how bad, and the risk of a serious reaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .concepts import SNOMED, code_in, concept_text
from .dates import date_words
from .instants import first_time
from .references import reference_to

# SNOMED CT "no known ..." findings: the record says the patient has none.
NO_KNOWN = frozenset({"716186003", "409137002", "428607008", "429625007", "428197003", "1150002009"})
CATEGORY_WORDS = {"food": N_("Food"), "medication": N_("Medicine"), "environment": N_("Something around you"),
                  "biologic": N_("Biologic medicine")}
CRITICALITY_WORDS = {"high": N_("High risk of a serious reaction"), "low": N_("Low risk of a serious reaction"),
                     "unable-to-assess": N_("Risk of a serious reaction not known")}
SEVERITY_WORDS = {"mild": N_("Mild"), "moderate": N_("Moderate"), "severe": N_("Severe")}
TYPE_WORDS = {"allergy": N_("Allergy"), "intolerance": N_("Intolerance (a reaction that is not an allergy)")}
NO_LONGER = N_("No longer a problem")
NOT_CONFIRMED = N_("Not confirmed yet")
UNNAMED = N_("An unnamed substance")
HIDDEN_VERIFICATION = frozenset({"entered-in-error", "refuted"})


@dataclass(frozen=True, slots=True)
class Reaction:
    what: str  # "Hives, Itching"
    severity: str | None


@dataclass(frozen=True, slots=True)
class Allergy:
    reference: str | None
    substance: str
    no_known: bool  # "No known allergies" recorded
    kind: str | None
    categories: tuple[str, ...]
    criticality: str | None
    is_high_risk: bool
    reactions: tuple[Reaction, ...]
    is_current: bool
    status_text: str | None  # "No longer a problem", "Not confirmed yet"
    recorded_text: str | None


def _status_code(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
            return coding["code"]
    return None


def _in(locale: str, words: str | None) -> str | None:
    return gettext_in(locale, words) if words else None


def allergy(resource: Any, tz: tzinfo | None = None, locale: str = ENGLISH) -> Allergy:
    """One AllergyIntolerance in words, in `locale`."""
    item: Mapping[str, Any] = resource if isinstance(resource, Mapping) else {}
    clinical = _status_code(item.get("clinicalStatus"))
    verification = _status_code(item.get("verificationStatus"))
    reactions = []
    for reaction in item.get("reaction") or []:
        if not isinstance(reaction, Mapping):
            continue
        what = ", ".join(t for t in (concept_text(m) for m in reaction.get("manifestation") or []) if t)
        if what or reaction.get("description"):
            reactions.append(Reaction(what or str(reaction.get("description")).strip(),
                                      _in(locale, SEVERITY_WORDS.get(str(reaction.get("severity") or "")))))
    status_text = None
    if clinical in ("inactive", "resolved"):
        status_text = gettext_in(locale, NO_LONGER)
    elif verification in ("unconfirmed", "presumed"):
        status_text = gettext_in(locale, NOT_CONFIRMED)
    recorded = first_time(item, "recordedDate", "onsetDateTime")
    categories = item.get("category") if isinstance(item.get("category"), list) else []
    return Allergy(
        reference=reference_to(item),
        substance=concept_text(item.get("code")) or gettext_in(locale, UNNAMED),
        no_known=code_in(item.get("code"), SNOMED) in NO_KNOWN,
        kind=_in(locale, TYPE_WORDS.get(str(item.get("type") or ""))),
        categories=tuple(gettext_in(locale, CATEGORY_WORDS[c]) for c in categories if c in CATEGORY_WORDS),
        criticality=_in(locale, CRITICALITY_WORDS.get(str(item.get("criticality") or ""))),
        is_high_risk=item.get("criticality") == "high",
        reactions=tuple(reactions),
        is_current=clinical not in ("inactive", "resolved"),
        status_text=status_text,
        recorded_text=date_words(recorded, tz, locale) if recorded else None,
    )


def allergy_list(resources: Iterable[Any], tz: tzinfo | None = None, locale: str = ENGLISH) -> list[Allergy]:
    """Current allergies first (high risk first), then past ones; entries in error are left out. A "no known
    allergies" entry is kept only when nothing else is recorded."""
    shown = [allergy(r, tz, locale) for r in resources if isinstance(r, Mapping)
             and _status_code(r.get("verificationStatus")) not in HIDDEN_VERIFICATION]
    real = [a for a in shown if not a.no_known]
    if not real:
        return shown[:1]
    real.sort(key=lambda a: (not a.is_current, not a.is_high_risk, a.substance.casefold()))
    return real
