"""Identity proofing against the chart: date of birth plus MRN or the last four digits of the SSN.

Pure functions over the Patient resource; the caller fetches it and counts attempts.
"""

from __future__ import annotations

import hmac
import re
from datetime import date, datetime
from typing import Any

from mappers.names import human_name

MRN_SYSTEM = "http://hospital.example.org/mrn"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"

_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y")


def parse_birth_date(text: str | None) -> date | None:
    """Accept the browser's ISO date and the common US form; None when unreadable."""
    value = (text or "").strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def _norm(value: str | None) -> str:
    return re.sub(r"[\s\-]", "", value or "").casefold()


def _eq(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _identifiers(patient: dict[str, Any], system: str) -> list[str]:
    return [str(i.get("value", "")) for i in patient.get("identifier", []) or [] if i.get("system") == system]


def identity_matches(
    patient: dict[str, Any] | None, *, birth_date: str | None, mrn: str | None = None, ssn_last4: str | None = None
) -> bool:
    """True when the birth date matches AND (the MRN matches OR the SSN's last four digits match)."""
    if not patient or patient.get("resourceType") != "Patient" or patient.get("active") is False:
        return False
    given = parse_birth_date(birth_date)
    on_chart = parse_birth_date(patient.get("birthDate"))
    if given is None or on_chart is None or given != on_chart:
        return False
    mrn_given = _norm(mrn)
    if mrn_given and any(_eq(_norm(v), mrn_given) for v in _identifiers(patient, MRN_SYSTEM)):
        return True
    last4 = re.sub(r"\D", "", ssn_last4 or "")
    if len(last4) == 4:
        for value in _identifiers(patient, SSN_SYSTEM):
            digits = re.sub(r"\D", "", value)
            if len(digits) >= 4 and _eq(digits[-4:], last4):
                return True
    return False


def display_name(patient: dict[str, Any] | None) -> str | None:
    """A short name for the patient's own pages (never logged)."""
    return human_name(patient)
