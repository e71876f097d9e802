"""Pure derivation of cache keys and invalidation tags (no I/O).

A key is a sha256 over everything that can change the answer: the caller's compartment, a
fingerprint of the scope constraints in force, the resource type, the interaction and the
canonicalised query. Hashing keeps PHI (e.g. a name search value, a patient id) out of Redis key
names; only the resource type stays readable, for operators.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

PREFIX = "cache:"
ENTRY_PREFIX = PREFIX + "e:"
TAG_PREFIX = PREFIX + "t:"
GEN_PREFIX = PREFIX + "g:"
KEY_VERSION = "v1"  # bump to orphan every entry when the key recipe changes

# Parameters that never change the bytes we cache (or are normalised below).
_FORMAT_ALIASES = {
    "json": "json",
    "application/json": "json",
    "application/fhir+json": "json",
    "application/json+fhir": "json",
    "xml": "xml",
    "text/xml": "xml",
    "application/xml": "xml",
    "application/fhir+xml": "xml",
    "application/xml+fhir": "xml",
}
_DEFAULT_FORMAT = "json"

Params = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    """A JSON-able form where equal meanings compare equal (sets and mappings sorted)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _canonical(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def scope_fingerprint(constraints: Any) -> str:
    """Fingerprint of the effective scope constraints for one request.

    Pass whatever decides what the caller may see of this resource type, e.g. the gateway's
    ``Grant`` (a dataclass: allowed, constraint_sets, unconstrained) or a set of scope strings.
    Narrower constraints give a different fingerprint, so they never share entries with broader ones.
    """
    return _sha256(json.dumps(_canonical(constraints), sort_keys=True, separators=(",", ":")))[:32]


def _normalise_format(value: str) -> str:
    base = value.split(";", 1)[0].strip().lower()
    return _FORMAT_ALIASES.get(base, base)


def canonical_params(params: Params | None) -> list[tuple[str, str]]:
    """Query parameters sorted by name; repeated parameters keep their relative order.

    ``_format`` is normalised (all JSON spellings are one, and JSON is the default so it is dropped);
    ``_pretty=false`` is the default and dropped too.
    """
    if params is None:
        return []
    pairs: list[tuple[str, str]] = []
    items: Iterable[tuple[str, Any]] = params.items() if isinstance(params, Mapping) else params
    for name, value in items:
        values = [value] if isinstance(value, str) or not isinstance(value, Sequence) else list(value)
        for v in values:
            pairs.append((str(name), "" if v is None else str(v)))
    out: list[tuple[str, str]] = []
    for name, value in pairs:
        if name == "_format":
            value = _normalise_format(value)
            if value == _DEFAULT_FORMAT:
                continue
        elif name == "_pretty" and value.strip().lower() in ("false", ""):
            continue
        out.append((name, value))
    # sorted() is stable: repeated names (e.g. date=ge..&date=le..) stay in request order.
    return sorted(out, key=lambda kv: kv[0])


def request_key(
    *,
    compartment: str,
    scope_fp: str,
    resource_type: str,
    interaction: str,
    resource_id: str | None = None,
    params: Params | None = None,
) -> str:
    """The Redis key of one cacheable request, e.g. ``cache:e:Observation:<sha256>``.

    ``compartment`` is whose data this is: "Patient/pt-0001", "user:<fhirUser>" or "system:<client>".
    """
    # orjson: once per cached request. Its output differs from json.dumps only for non-ASCII text (kept as
    # UTF-8, not escaped), which is still one key per request.
    material = orjson.dumps(
        [KEY_VERSION, compartment, scope_fp, resource_type, interaction, resource_id, canonical_params(params)]
    )
    return f"{ENTRY_PREFIX}{resource_type}:{hashlib.sha256(material).hexdigest()}"


def read_key(
    compartment: str, scope_fp: str, resource_type: str, resource_id: str, params: Params | None = None
) -> str:
    return request_key(
        compartment=compartment,
        scope_fp=scope_fp,
        resource_type=resource_type,
        interaction="read",
        resource_id=resource_id,
        params=params,
    )


def search_key(
    compartment: str, scope_fp: str, resource_type: str, params: Params | None, interaction: str = "search-type"
) -> str:
    return request_key(
        compartment=compartment, scope_fp=scope_fp, resource_type=resource_type, interaction=interaction, params=params
    )


# --- invalidation tags -------------------------------------------------------------------------
# Tags are plain strings; the store hashes them into Redis key names, so no id is readable there.


def resource_tag(resource_type: str, resource_id: str) -> str:
    """Tag every entry that contains this resource (its read, and searches whose results include it)."""
    return f"res:{resource_type}/{resource_id}"


def compartment_tag(compartment: str, resource_type: str) -> str:
    """Tag every search of ``resource_type`` within ``compartment`` (a new resource may join it)."""
    return f"cmp:{compartment}:{resource_type}"


def type_tag(resource_type: str) -> str:
    """Tag searches NOT confined to one patient compartment (user:/system: callers).

    Any change to a resource of this type invalidates them; the change feed always bumps it.
    """
    return compartment_tag("*", resource_type)


def tag_set_key(tag: str) -> str:
    return TAG_PREFIX + _sha256(tag)


def generation_key(tag: str) -> str:
    return GEN_PREFIX + _sha256(tag)
