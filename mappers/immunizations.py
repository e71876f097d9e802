"""Vaccines given (Immunization) in words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .concepts import CVX, code_in, concept_text
from .dates import date_words, unknown_date
from .instants import FhirTime, first_time
from .quantities import number_text
from .references import reference_display, reference_to

STATUS_WORDS = {"completed": N_("Given"), "not-done": N_("Not given")}
STATUS_NOT_KNOWN = N_("Status not known")
A_VACCINE = N_("A vaccine")


@dataclass(frozen=True, slots=True)
class Vaccine:
    reference: str | None
    name: str
    cvx: str | None
    given: FhirTime | None
    date_text: str
    status_text: str
    was_given: bool
    dose_text: str | None  # "Dose 2 of 2"
    where: str | None  # "Injection in the left deltoid"
    given_by: str | None
    source_text: str | None  # "Reported by the state registry" when not recorded by the clinic
    reason_not_given: str | None


def _dose(applied: Any, locale: str = ENGLISH) -> str | None:
    for item in applied if isinstance(applied, list) else []:
        if not isinstance(item, Mapping):
            continue
        number = number_text(item.get("doseNumberPositiveInt"), locale) or item.get("doseNumberString")
        total = number_text(item.get("seriesDosesPositiveInt"), locale) or item.get("seriesDosesString")
        if number and total:
            return gettext_in(locale, "Dose %(number)s of %(total)s") % {"number": number, "total": total}
        if number:
            return gettext_in(locale, "Dose %(number)s") % {"number": number}
    return None


def vaccine(resource: Any, tz: tzinfo | None = None, locale: str = ENGLISH) -> Vaccine:
    """One Immunization in words, in `locale`."""
    item: Mapping[str, Any] = resource if isinstance(resource, Mapping) else {}
    given = first_time(item, "occurrenceDateTime", "recorded")
    status = str(item.get("status") or "")
    route, site = concept_text(item.get("route")), concept_text(item.get("site"))
    where = gettext_in(locale, "%(route)s in the %(site)s") % {"route": route, "site": site} if route and site \
        else route or (gettext_in(locale, "In the %(site)s") % {"site": site} if site else None)
    source = None
    if item.get("primarySource") is False:
        origin = concept_text(item.get("reportOrigin"))
        source = gettext_in(locale, "Reported from %(origin)s") % {"origin": origin[0].lower() + origin[1:]} \
            if origin else gettext_in(locale, "Reported from another record")
    performers = [reference_display(p.get("actor")) for p in item.get("performer") or [] if isinstance(p, Mapping)]
    return Vaccine(
        reference=reference_to(item),
        name=concept_text(item.get("vaccineCode")) or gettext_in(locale, A_VACCINE),
        cvx=code_in(item.get("vaccineCode"), CVX),
        given=given,
        date_text=date_words(given, tz, locale) if given else unknown_date(locale),
        status_text=gettext_in(locale, STATUS_WORDS.get(status, STATUS_NOT_KNOWN)),
        was_given=status == "completed",
        dose_text=_dose(item.get("protocolApplied"), locale),
        where=where,
        given_by=next((p for p in performers if p), None),
        source_text=source,
        reason_not_given=concept_text(item.get("statusReason")) if status == "not-done" else None,
    )


def vaccine_list(resources: Iterable[Any], tz: tzinfo | None = None, locale: str = ENGLISH) -> list[Vaccine]:
    """Vaccines newest first; entries in error are left out."""
    shown = [vaccine(r, tz, locale) for r in resources
             if isinstance(r, Mapping) and r.get("status") != "entered-in-error"]
    shown.sort(key=lambda v: v.given.sort_key().timestamp() if v.given else 0.0, reverse=True)
    return shown
