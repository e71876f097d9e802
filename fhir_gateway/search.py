"""Search-parameter vetting: what may reach the EHR, and what could escape a compartment (pure)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import FHIRError, forbidden, invalid
from .policy import (
    COMMON_SEARCH_PARAMS,
    COMPARTMENT_TYPES,
    PATIENT_SAFE_INCLUDE_PARAMS,
    POLICIES,
    RESULT_PARAMS,
    SAFE_MODIFIERS,
    TypePolicy,
)

# Never forwarded for anyone: they can join across types or compartments in ways we cannot check.
FORBIDDEN_PARAMS = {
    "_has": "reverse chaining (_has) is not supported",
    "_filter": "_filter is not supported",
    "_query": "named queries are not supported",
    "_contained": "searching contained resources is not supported",
    "_list": "_list is not supported",
    "_type": "system-level search is not supported",
    "_text": "full-text search is not supported",
    "_content": "full-text search is not supported",
}
# Dropped silently: we only speak FHIR JSON.
DROPPED_PARAMS = frozenset({"_format", "_pretty"})
MAX_COUNT = 500
REVINCLUDE_PATIENT_PARAMS = frozenset({"patient", "subject", "beneficiary", "actor"})
_VALUE_SEPARATOR = re.compile(r"(?<!\\),")  # FHIR escapes a literal comma in a value as "\,"


@dataclass(frozen=True)
class SearchLimits:
    """How big a search may be before it is refused up front (400), instead of keeping the EHR busy:
    the number of parameters, and the number of values one parameter name may list (comma-separated
    values and repeats of the name together)."""

    max_params: int = 50
    max_values: int = 20

    def check(self, params: Sequence[tuple[str, str]]) -> None:
        if len(params) > self.max_params:
            raise invalid(f"A search may have at most {self.max_params} parameters")
        values: Counter[str] = Counter()
        for name, value in params:
            values[name.partition(":")[0]] += len(_VALUE_SEPARATOR.split(value))
        for name, count in values.items():
            if count > self.max_values:
                raise invalid(f"A search may list at most {self.max_values} values for '{name[:64]}'")


def _check_include(value: str, policy: TypePolicy, bound: bool, *, reverse: bool) -> None:
    parts = value.split(":")
    if len(parts) not in (2, 3) or "*" in parts:
        raise forbidden(f"_{'rev' if reverse else ''}include={value} is not allowed; name a type and parameter")
    source, param = parts[0], parts[1]
    if not bound:
        return
    if reverse:
        if policy.name != "Patient" or source not in COMPARTMENT_TYPES or param not in REVINCLUDE_PATIENT_PARAMS:
            raise forbidden(f"_revinclude={value} could reach other patients' records and is not allowed")
    elif source != policy.name or param not in PATIENT_SAFE_INCLUDE_PARAMS:
        raise forbidden(f"_include={value} could reach other patients' records and is not allowed")


def vet_search(
    policy: TypePolicy, params: Iterable[tuple[str, str]], *, bound: bool, strict: bool
) -> list[tuple[str, str]]:
    """Return the parameters to forward, or raise a FHIRError naming the first offending one."""
    kept: list[tuple[str, str]] = []
    allowed = policy.search_params | COMMON_SEARCH_PARAMS | RESULT_PARAMS
    for raw_name, value in params:
        name, _, modifier = raw_name.partition(":")
        if name in DROPPED_PARAMS:
            continue
        if name in FORBIDDEN_PARAMS:
            raise forbidden(FORBIDDEN_PARAMS[name])
        if "." in raw_name:
            raise forbidden(f"chained search parameter '{raw_name}' is not supported")
        if name in ("_include", "_revinclude"):
            if modifier:  # :iterate / :recurse could walk into other compartments
                raise forbidden(f"{raw_name} is not supported")
            _check_include(value, policy, bound, reverse=name == "_revinclude")
            if value.split(":", 1)[0] not in POLICIES:
                raise invalid(f"{name}={value} names an unknown resource type")
        elif modifier and modifier not in SAFE_MODIFIERS:
            raise forbidden(f"search modifier ':{modifier}' on '{name}' is not supported")
        elif name not in allowed:
            if strict:
                raise forbidden(f"unknown search parameter '{name}' for {policy.name}")
            continue
        if name == "_count":
            try:
                count = int(value)
            except ValueError as exc:
                raise invalid(f"_count must be a whole number, not {value!r}") from exc
            value = str(min(max(count, 0), MAX_COUNT))
        kept.append((raw_name, value))
    return kept


def constraint_params(constraint_sets: tuple[tuple[tuple[str, str], ...], ...],
                      requested: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Turn v2 granular-scope constraints into search parameters to add.

    One set: add it. Several single-parameter sets on the same parameter: OR their values.
    Otherwise the caller must pick one set themselves by searching with it.
    """
    if not constraint_sets:
        return []
    if len(constraint_sets) == 1:
        return list(constraint_sets[0])
    names = {pair[0] for cs in constraint_sets for pair in cs}
    if all(len(cs) == 1 for cs in constraint_sets) and len(names) == 1:
        (name,) = names
        return [(name, ",".join(cs[0][1] for cs in constraint_sets))]
    req = set(requested)
    for cs in constraint_sets:
        if set(cs) <= req:
            return list(cs)
    raise FHIRError(403, "forbidden", "This token's scopes only allow searches restricted to: "
                    + " or ".join("&".join(f"{k}={v}" for k, v in cs) for cs in constraint_sets))
