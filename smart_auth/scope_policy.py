"""Which requested scopes a client and an account may have.

Patients and caregivers get only `patient/` resource scopes; staff get `user/` scopes (and `patient/`
scopes when a patient is in context); `system/` scopes exist only for client_credentials.
"""

from __future__ import annotations

from .clients import Client
from .errors import InvalidScopeError
from .scopes import CONTEXTS, NON_RESOURCE_SCOPES, Scope, ScopeError

PERSON_KINDS = ("patient", "caregiver")


def parse_requested(scope: str | None) -> list[str]:
    """The requested scopes in order, without duplicates; malformed SMART resource scopes are an error."""
    seen: list[str] = []
    for item in (scope or "").split():
        if "/" in item and item.split("/", 1)[0] in CONTEXTS:
            try:
                Scope.parse(item)
            except ScopeError as exc:
                raise InvalidScopeError(description=f"malformed scope {item}") from exc
        if item not in seen:
            seen.append(item)
    return seen


def context_of(item: str) -> str | None:
    if "/" in item and item.split("/", 1)[0] in CONTEXTS and item not in NON_RESOURCE_SCOPES:
        return item.split("/", 1)[0]
    return None


def _covered(requested: str, allowed: list[str]) -> bool:
    if requested in allowed:
        return True
    if context_of(requested) is None:
        return False
    want = Scope.parse(requested)
    for item in allowed:
        if context_of(item) is None:
            continue
        have = Scope.parse(item)
        if (
            have.context == want.context
            and have.resource_type in ("*", want.resource_type)
            and want.interactions <= have.interactions
            and (not have.constraints or have.constraints == want.constraints)
        ):
            return True
    return False


def allowed_for_client(client: Client, requested: list[str]) -> list[str]:
    if client.scope is None:
        return list(requested)
    allowed = client.scope.split()
    return [s for s in requested if _covered(s, allowed)]


def allowed_for_account(kind: str, requested: list[str], *, has_patient: bool) -> list[str]:
    """Drop what this kind of account can never hold (OAuth lets a server grant less than asked)."""
    out: list[str] = []
    for item in requested:
        ctx = context_of(item)
        if ctx is None:
            if item in NON_RESOURCE_SCOPES:
                out.append(item)
        elif ctx == "patient" and (kind in PERSON_KINDS or has_patient):
            out.append(item)
        elif ctx == "user" and kind == "staff":
            out.append(item)
    return out


def system_only(requested: list[str]) -> bool:
    return bool(requested) and all(context_of(s) == "system" for s in requested)
