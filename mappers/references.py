"""FHIR references: `Type/id` from whatever form a server wrote, strict parsing, and the words to show.

`local_reference` is the one normalisation (`http://ehr/fhir/Patient/1/_history/2` -> `Patient/1`) used
by the gateway's compartment check, the access log and the sign-in code; `parse_reference` is the strict
form for values that must be a resource reference (ids as FHIR allows them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .names import display_name

# FHIR R4: resource types are capitalised words; ids are 1-64 of [A-Za-z0-9-.].
_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class Ref(NamedTuple):
    type: str
    id: str

    @property
    def text(self) -> str:
        return f"{self.type}/{self.id}"


def local_reference(reference: str) -> str:
    """`Type/id` of a relative, absolute or versioned reference; anything else (`#contained`,
    `urn:uuid:...`) comes back unchanged."""
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    while parts and not parts[-1]:
        parts.pop()  # a trailing slash
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def parse_reference(value: Any, resource_type: str | None = None) -> Ref | None:
    """A valid `Ref` from a reference string or a Reference object, optionally of one type; else None."""
    if isinstance(value, Mapping):
        value = value.get("reference")
    if not isinstance(value, str) or not value or value.startswith("#"):
        return None
    local = local_reference(value.strip())
    rtype, sep, rid = local.partition("/")
    if not sep or not _TYPE.match(rtype) or not _ID.match(rid):
        return None
    if resource_type is not None and rtype != resource_type:
        return None
    return Ref(rtype, rid)


def reference_to(resource: Any) -> str | None:
    """`Type/id` of a resource, or None when it has no type or id."""
    if not isinstance(resource, Mapping):
        return None
    rtype, rid = resource.get("resourceType"), resource.get("id")
    ref = parse_reference(f"{rtype}/{rid}") if isinstance(rtype, str) and isinstance(rid, str) else None
    return ref.text if ref else None


def index_by_reference(resources: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """`{"Practitioner/prac-01": {...}, ...}` for the lookup dicts the shaping functions take."""
    found: dict[str, dict[str, Any]] = {}
    for resource in resources:
        ref = reference_to(resource)
        if ref:
            found[ref] = resource
    return found


def resolve(reference: Any, resources: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The resource a reference points at, from a lookup dict keyed by `Type/id` (None when not there)."""
    if not resources:
        return None
    ref = parse_reference(reference)
    found = resources.get(ref.text) if ref else None
    return found if isinstance(found, dict) else None


def reference_display(reference: Any, resources: Mapping[str, Any] | None = None) -> str | None:
    """What to show for a Reference: its `display`, else the name of the resource it points at (from
    `resources`), else None. Never the raw `Type/id`."""
    if isinstance(reference, Mapping):
        display = reference.get("display")
        if isinstance(display, str) and display.strip():
            return display.strip()
    return display_name(resolve(reference, resources))
