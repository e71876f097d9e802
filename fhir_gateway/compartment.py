"""Patient-compartment membership of a resource (after FHIR R4 CompartmentDefinition/patient).

Pure functions: the gateway checks every resource it returns with these, whatever the EHR answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mappers.references import local_reference

from .policy import content_policy_for


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            yield ref
        for key, inner in value.items():
            if key != "reference":
                yield from _references(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def patients_of(resource: dict[str, Any]) -> set[str]:
    """Every patient (`Patient/<id>`) in whose compartment this resource lies."""
    rtype = resource.get("resourceType", "")
    if rtype == "Patient":
        return {f"Patient/{resource.get('id')}"}
    policy = content_policy_for(rtype)
    if policy is None or not policy.compartment_fields:
        return set()
    found: set[str] = set()
    for fieldname in policy.compartment_fields:
        for ref in _references(resource.get(fieldname)):
            local = local_reference(ref)
            if local.startswith("Patient/"):
                found.add(local)
    return found


def in_compartment(resource: dict[str, Any], patient_id: str) -> bool:
    return f"Patient/{patient_id}" in patients_of(resource)
