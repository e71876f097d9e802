"""Names of people and organisations as a patient reads them.

`human_name` is the one reading of FHIR HumanName used everywhere (sign-in pages, the access log, the
portal); `display_name` names any resource a reference can point at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PERSON_TYPES = ("Patient", "Practitioner", "RelatedPerson", "Person")
# Degrees that repeat a "Dr." prefix; other suffixes (RN, NP, PA-C) say what the person does.
_DOCTOR_SUFFIXES = frozenset({"MD", "DO", "M.D.", "D.O.", "MBBS", "PHD", "PH.D."})


def _words(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [str(v).strip() for v in value if isinstance(v, (str, int)) and str(v).strip()]
    return []


def name_text(name: Any, *, with_prefix: bool = False, with_suffix: bool = False) -> str | None:
    """One HumanName as text: its `text`, else given names and family name (and prefix/suffix if asked)."""
    if not isinstance(name, Mapping):
        return None
    if isinstance(name.get("text"), str) and name["text"].strip():
        return name["text"].strip()
    parts = [*(_words(name.get("prefix")) if with_prefix else []), *_words(name.get("given")),
             *_words(name.get("family"))]
    text = " ".join(parts)
    suffixes = _words(name.get("suffix")) if with_suffix else []
    if text and suffixes:
        text = f"{text}, {', '.join(suffixes)}"
    return text or None


def _names(resource: Any, prefer_official: bool) -> list[Mapping[str, Any]]:
    if not isinstance(resource, Mapping):
        return []
    names = [n for n in resource.get("name") or [] if isinstance(n, Mapping)] if isinstance(
        resource.get("name"), list) else []
    names = [n for n in names if n.get("use") != "old"] or names
    if prefer_official:
        names.sort(key=lambda n: n.get("use") != "official")  # stable: otherwise in recorded order
    return names


def human_name(resource: Any, *, prefer_official: bool = False, with_prefix: bool = False,
               with_suffix: bool = False) -> str | None:
    """The first usable name of a Patient, Practitioner, RelatedPerson or Person (None when it has none).

    `prefer_official` looks at the `official` name first; names marked `old` are used only when there is
    nothing else.
    """
    for name in _names(resource, prefer_official):
        text = name_text(name, with_prefix=with_prefix, with_suffix=with_suffix)
        if text:
            return text
    return None


def first_name(resource: Any) -> str | None:
    """The first given name, for a greeting ("Hello, Michelle"); the whole name when none is recorded."""
    for name in _names(resource, prefer_official=True):
        given = _words(name.get("given"))
        if given:
            return given[0]
    return human_name(resource)


def _practitioner_name(resource: Mapping[str, Any]) -> str | None:
    for name in _names(resource, prefer_official=True):
        if isinstance(name.get("text"), str) and name["text"].strip():
            return name["text"].strip()
        prefixes = _words(name.get("prefix"))
        suffixes = _words(name.get("suffix"))
        if any(p.rstrip(".").casefold() == "dr" for p in prefixes):
            suffixes = [s for s in suffixes if s.upper() not in _DOCTOR_SUFFIXES]
        text = name_text({**name, "prefix": prefixes, "suffix": suffixes}, with_prefix=True, with_suffix=True)
        if text:
            return text
    return None


def display_name(resource: Any) -> str | None:
    """What to call a resource a reference points at: `Dr. Margaret Ellison`, `Rebecca Stone, RN`,
    `Prairie Family Health`. None when the resource has no name."""
    if not isinstance(resource, Mapping):
        return None
    rtype = resource.get("resourceType")
    if rtype == "Practitioner":
        return _practitioner_name(resource)
    if rtype in PERSON_TYPES:
        return human_name(resource, prefer_official=True)
    if rtype == "PractitionerRole":
        for key in ("practitioner", "organization"):
            display = (resource.get(key) or {}).get("display") if isinstance(resource.get(key), Mapping) else None
            if isinstance(display, str) and display.strip():
                return display.strip()
        return None
    if rtype == "Device":
        for item in resource.get("deviceName") or []:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str) and item["name"].strip():
                return item["name"].strip()
        return None
    name = resource.get("name") or resource.get("title")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return None
