"""Validation of inbound FHIR JSON: parsing with a depth limit, FHIR ids and plain references, and the
resource's shape with fhir.resources (R4B models, R4-compatible for these types)."""

from __future__ import annotations

import importlib
import re
from typing import Any

import orjson
from pydantic import ValidationError

# FHIR R4 id grammar. "." and ".." match it but are path segments, never ids: refused as well.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
# Far deeper than any resource a patient sends (a Questionnaire answer nested ten levels is ~25 deep),
# far shallower than anything that could exhaust a stack on the way through.
MAX_JSON_DEPTH = 64


class InboundError(ValueError):
    """A patient's request that cannot be accepted; the message is safe to show to the caller."""


def is_fhir_id(value: str) -> bool:
    return FHIR_ID.fullmatch(value) is not None and value.strip(".") != ""


def plain_reference(value: Any, expected_type: str) -> str | None:
    """The id in a reference of exactly the form `<expected_type>/<id>`, else None (absolute URLs, other
    types, extra path segments, versions and anything not a string are all refused)."""
    if not isinstance(value, str):
        return None
    rtype, _, rid = value.partition("/")
    return rid if rtype == expected_type and is_fhir_id(rid) else None


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from a request body, refused (InboundError) when malformed or nested deeper than ``max_depth``.

    orjson bounds its own recursion (1024 levels); the tighter limit is checked without recursion."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise InboundError(f"The request body is nested more than {max_depth} levels deep") from exc
        raise InboundError("The request body is not valid JSON") from exc
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth >= max_depth:
                    raise InboundError(f"The request body is nested more than {max_depth} levels deep")
                pending.append((child, depth + 1))
    return value


def _model(resource_type: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def _null_member(resource: dict[str, Any]) -> str | None:
    """The path of the first member whose value is JSON null (FHIR JSON leaves absent elements out)."""
    pending: list[tuple[Any, str]] = [(resource, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if child is None:
                    return f"{path}{key}"
                pending.append((child, f"{path}{key}."))
        elif isinstance(item, list):
            pending.extend((child, path) for child in item if isinstance(child, dict | list))
    return None


def validate(resource: Any, expected_type: str) -> dict[str, Any]:
    """Return the resource if it is a valid `expected_type`, else raise InboundError saying what is wrong."""
    if not isinstance(resource, dict):
        raise InboundError("The request body must be a JSON object")
    if resource.get("resourceType") != expected_type:
        raise InboundError(f"Expected a {expected_type} resource, got {resource.get('resourceType')!r}")
    if (null := _null_member(resource)) is not None:
        raise InboundError(f"Invalid {expected_type}: {null} is null; leave out elements that have no value")
    try:
        _model(expected_type).model_validate(resource)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or expected_type}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise InboundError(f"Invalid {expected_type}: {problems}") from exc
    return resource
