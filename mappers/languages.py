"""The language a person prefers, from their record (`Patient.communication`, `RelatedPerson.communication`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BCP47 = "urn:ietf:bcp:47"


def _entries(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = resource.get("communication")
    return [e for e in value if isinstance(e, Mapping)] if isinstance(value, list) else []


def preferred_language(resource: Any) -> str | None:
    """The BCP-47 code (lower case: `es`, `es-mx`, `en-us`) of the language marked preferred, else of the
    first one listed; None when the record names none. A coding in BCP-47's system wins over others."""
    if not isinstance(resource, Mapping):
        return None
    entries = _entries(resource)
    ordered = sorted(entries, key=lambda e: e.get("preferred") is not True)  # stable: listed order otherwise
    for entry in ordered:
        language = entry.get("language")
        codings = language.get("coding") if isinstance(language, Mapping) else None
        codes = [c for c in (codings if isinstance(codings, list) else [])
                 if isinstance(c, Mapping) and isinstance(c.get("code"), str) and c["code"].strip()]
        codes.sort(key=lambda c: c.get("system") != BCP47)
        if codes:
            return str(codes[0]["code"]).strip().lower()
    return None
