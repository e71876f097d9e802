"""SMART App Launch scope grammar (v1 and v2) parsed into one `Scope` type.

The gateway asks a `ScopeSet` one question: may this token do interaction X on resource type T,
and if so under which extra search constraints (v2 granular scopes such as
`patient/Observation.rs?category=laboratory`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl


class Interaction(StrEnum):
    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


V1_ACTIONS: dict[str, frozenset[Interaction]] = {
    "read": frozenset({Interaction.READ, Interaction.SEARCH}),
    "write": frozenset({Interaction.CREATE, Interaction.UPDATE, Interaction.DELETE}),
    "*": frozenset(Interaction),
}

CONTEXTS = ("patient", "user", "system")

# Scopes that carry no resource access but are meaningful to the authorization server.
NON_RESOURCE_SCOPES = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
)

_RESOURCE_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<action>[^?]+)(?:\?(?P<query>.+))?$"
)
_V2_ACTION = re.compile(r"^c?r?u?d?s?$")


class ScopeError(ValueError):
    """A scope string that is not valid SMART grammar."""


@dataclass(frozen=True)
class Scope:
    """One resource scope: context, resource type (or `*`), allowed interactions, optional constraints."""

    context: str
    resource_type: str
    interactions: frozenset[Interaction]
    constraints: tuple[tuple[str, str], ...] = ()
    version: int = 2
    raw: str = ""

    @classmethod
    def parse(cls, text: str) -> Scope:
        m = _RESOURCE_SCOPE.match(text)
        if not m:
            raise ScopeError(f"not a SMART resource scope: {text!r}")
        action = m["action"]
        query = m["query"]
        if action in V1_ACTIONS:
            if query:
                raise ScopeError(f"v1 scopes take no search constraints: {text!r}")
            return cls(m["context"], m["type"], V1_ACTIONS[action], (), 1, text)
        if not action or not _V2_ACTION.match(action):
            raise ScopeError(f"permissions must be a non-empty subsequence of 'cruds': {text!r}")
        constraints: tuple[tuple[str, str], ...] = ()
        if query:
            pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=False)
            if not pairs:
                raise ScopeError(f"empty search constraint in {text!r}")
            constraints = tuple(sorted(pairs))
        return cls(m["context"], m["type"], frozenset(Interaction(c) for c in action), constraints, 2, text)

    def covers(self, context: str, interaction: Interaction, resource_type: str) -> bool:
        return (
            self.context == context
            and interaction in self.interactions
            and self.resource_type in ("*", resource_type)
        )


@dataclass(frozen=True)
class Grant:
    """The answer to 'may I?': allowed, and the alternatives of search constraints (empty = none)."""

    allowed: bool
    # Each inner tuple is one scope's constraint set; a resource must satisfy at least one set.
    # `unconstrained` is True when some matching scope had no constraint at all.
    constraint_sets: tuple[tuple[tuple[str, str], ...], ...] = ()
    unconstrained: bool = False

    @property
    def constrained(self) -> bool:
        return self.allowed and not self.unconstrained


DENY = Grant(False)


@dataclass(frozen=True)
class ScopeSet:
    resource_scopes: tuple[Scope, ...] = ()
    other: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, scope_string: str | Iterable[str], *, strict: bool = False) -> ScopeSet:
        """Parse a space-separated scope string. Unknown scopes are ignored unless `strict`."""
        items = scope_string.split() if isinstance(scope_string, str) else list(scope_string)
        resource: list[Scope] = []
        other: set[str] = set()
        for item in items:
            if "/" in item and item.split("/", 1)[0] in CONTEXTS:
                try:
                    resource.append(Scope.parse(item))
                except ScopeError:
                    if strict:
                        raise
            elif item in NON_RESOURCE_SCOPES or not strict:
                other.add(item)
            else:
                raise ScopeError(f"unknown scope {item!r}")
        return cls(tuple(resource), frozenset(other))

    def contexts(self) -> set[str]:
        return {s.context for s in self.resource_scopes}

    def decide(self, context: str, interaction: Interaction, resource_type: str) -> Grant:
        matching = [s for s in self.resource_scopes if s.covers(context, interaction, resource_type)]
        if not matching:
            return DENY
        if any(not s.constraints for s in matching):
            return Grant(True, (), True)
        return Grant(True, tuple(sorted({s.constraints for s in matching})), False)

    def __str__(self) -> str:
        return " ".join([s.raw for s in self.resource_scopes] + sorted(self.other))

    def has(self, scope: str) -> bool:
        return scope in self.other
