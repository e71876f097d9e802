"""Who a patient may send things to outside the clinic: pharmacies (for a refill) and the specialist
practices in the referral catalogue (pure).

Both are Organizations the clinic keeps in the EHR. A pharmacy says so in its `type` (the NUCC
community pharmacy code, or the type's text "Pharmacy"); a specialist practice names its specialty in
its `type` (a SNOMED CT specialty code from SPECIALTIES, or that specialty's name as text).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from locales import N_

SNOMED = "http://snomed.info/sct"
NUCC = "http://nucc.org/provider-taxonomy"
PHARMACY_CODE = "3336C0003X"  # Community/Retail Pharmacy
PHARMACY_TEXT = "pharmacy"


@dataclass(frozen=True, slots=True)
class Specialty:
    code: str  # SNOMED CT
    display: str  # the name the clinic's records use
    words: str  # what a patient calls it (English; `gettext_in` gives it in another language)

    @property
    def concept(self) -> dict[str, Any]:
        return {"coding": [{"system": SNOMED, "code": self.code, "display": self.display}], "text": self.words}


SPECIALTIES: dict[str, Specialty] = {s.code: s for s in (
    Specialty("394579002", "Cardiology", N_("Heart (cardiology)")),
    Specialty("394582007", "Dermatology", N_("Skin (dermatology)")),
    Specialty("394583002", "Endocrinology", N_("Hormones and diabetes (endocrinology)")),
    Specialty("394584008", "Gastroenterology", N_("Stomach and bowel (gastroenterology)")),
    Specialty("394589003", "Nephrology", N_("Kidneys (nephrology)")),
    Specialty("394591006", "Neurology", N_("Brain and nerves (neurology)")),
    Specialty("394801008", "Surgery-Trauma and orthopedics", N_("Bones and joints (orthopedics)")),
    Specialty("394587001", "Psychiatry", N_("Mental health (psychiatry)")),
    Specialty("394585009", "Obstetrics and gynecology", N_("Women's health (obstetrics and gynecology)")),
)}
_BY_DISPLAY = {s.display.casefold(): s for s in SPECIALTIES.values()}


@dataclass(frozen=True, slots=True)
class Place:
    """A pharmacy or a specialist practice, as a person picks it from a list."""

    reference: str  # Organization/<id>
    name: str
    address: str | None
    phone: str | None
    specialty: Specialty | None = None


def _types(org: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in org.get("type") or [] if isinstance(t, Mapping)]


def _codings(concept: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]


def _usable(org: Any) -> bool:
    return isinstance(org, Mapping) and org.get("resourceType") == "Organization" and org.get("active") is not False


def is_pharmacy(org: Any) -> bool:
    if not _usable(org):
        return False
    for concept in _types(org):
        if any(c.get("system") == NUCC and c.get("code") == PHARMACY_CODE for c in _codings(concept)):
            return True
        if str(concept.get("text") or "").strip().casefold() == PHARMACY_TEXT:
            return True
    return False


def specialty_of(org: Any) -> Specialty | None:
    """The specialty a practice in the referral catalogue offers; None for anyone else."""
    if not _usable(org):
        return None
    for concept in _types(org):
        for c in _codings(concept):
            if c.get("system") == SNOMED and c.get("code") in SPECIALTIES:
                return SPECIALTIES[c["code"]]
        found = _BY_DISPLAY.get(str(concept.get("text") or "").strip().casefold())
        if found:
            return found
    return None


def specialty_in(concept: Any) -> Specialty | None:
    """The catalogue specialty a CodeableConcept names by its SNOMED CT code."""
    if not isinstance(concept, Mapping):
        return None
    return next((SPECIALTIES[c["code"]] for c in _codings(concept)
                 if c.get("system") == SNOMED and c.get("code") in SPECIALTIES), None)


def _place(org: Mapping[str, Any], specialty: Specialty | None = None) -> Place:
    address = next((a for a in org.get("address") or [] if isinstance(a, Mapping)), None)
    line = None
    if address:
        parts = [" ".join(str(x) for x in address.get("line") or []), address.get("city")]
        line = ", ".join(str(p) for p in parts if p) or None
    phone = next((t.get("value") for t in org.get("telecom") or []
                  if isinstance(t, Mapping) and t.get("system") == "phone"), None)
    return Place(f"Organization/{org.get('id')}", str(org.get("name") or "A pharmacy"), line, phone, specialty)


def pharmacies(orgs: Iterable[Any]) -> list[Place]:
    """The pharmacies among these Organizations, by name."""
    return sorted((_place(o) for o in orgs if is_pharmacy(o)), key=lambda p: p.name.casefold())


def specialists(orgs: Iterable[Any]) -> list[Place]:
    """The specialist practices among these Organizations, by what a patient calls the specialty."""
    found = [_place(o, s) for o in orgs if (s := specialty_of(o)) is not None]
    return sorted(found, key=lambda p: (p.specialty.words if p.specialty else "", p.name))
