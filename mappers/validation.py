"""Validation of inbound FHIR JSON with fhir.resources (R4B models, R4-compatible for these types)."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError


class InboundError(ValueError):
    """A patient's request that cannot be accepted; the message is safe to show to the caller."""


def _model(resource_type: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def validate(resource: Any, expected_type: str) -> dict[str, Any]:
    """Return the resource if it is a valid `expected_type`, else raise InboundError saying what is wrong."""
    if not isinstance(resource, dict):
        raise InboundError("The request body must be a JSON object")
    if resource.get("resourceType") != expected_type:
        raise InboundError(f"Expected a {expected_type} resource, got {resource.get('resourceType')!r}")
    try:
        _model(expected_type).model_validate(resource)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or expected_type}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise InboundError(f"Invalid {expected_type}: {problems}") from exc
    return resource
