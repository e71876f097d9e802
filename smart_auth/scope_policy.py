"""Which requested scopes a client and an account may have.

Patients and caregivers get only `patient/` resource scopes; staff get `user/` scopes (and `patient/`
scopes when a patient is in context); `system/` scopes exist only for client_credentials.
"""

from __future__ import annotations

from collections.abc import Mapping

from .clients import Client
from .errors import InvalidScopeError, describable
from .scopes import CONTEXTS, NON_RESOURCE_SCOPES, Interaction, Scope, ScopeError

# What a patient or caregiver may write, by resource type (`c` / `u`); handed in by the composition root
# from the gateway's write rules, so the two never disagree.
PatientWrites = Mapping[str, frozenset[Interaction]]
READS = frozenset({Interaction.READ, Interaction.SEARCH})

PERSON_KINDS = ("patient", "caregiver")


def parse_requested(scope: str | None) -> list[str]:
    """The requested scopes in order, without duplicates; malformed SMART resource scopes are an error."""
    seen: list[str] = []
    for item in (scope or "").split():
        if "/" in item and item.split("/", 1)[0] in CONTEXTS:
            try:
                Scope.parse(item)
            except ScopeError as exc:
                raise InvalidScopeError(description=f"malformed scope {describable(item)}") from exc
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


def _v2(resource_type: str, interactions: frozenset[Interaction], query: str) -> str:
    letters = "".join(c for c in "cruds" if Interaction(c) in interactions)
    return f"patient/{resource_type}.{letters}" + (f"?{query}" if query else "")


def narrow_for_person(requested: list[str], writes: PatientWrites) -> list[str]:
    """A patient's or caregiver's scopes cut down to what the role can ever use: read and search, and
    create/update only where the write rules allow it (never delete). `patient/*.cruds` becomes
    `patient/*.rs` plus one scope per writable type. Scopes already within reach are kept as written."""
    out: list[str] = []
    for item in requested:
        for narrowed in _narrow_one(item, writes):
            if narrowed not in out:
                out.append(narrowed)
    return out


def _narrow_one(item: str, writes: PatientWrites) -> list[str]:
    if context_of(item) != "patient":
        return [item]
    scope = Scope.parse(item)
    reads, query = scope.interactions & READS, item.partition("?")[2]
    if scope.resource_type != "*":
        keep = reads | (scope.interactions & writes.get(scope.resource_type, frozenset()))
        if keep == scope.interactions:
            return [item]
        return [_v2(scope.resource_type, keep, query)] if keep else []
    if scope.interactions <= READS:
        return [item]
    out = [_v2("*", reads, query)] if reads else []
    return out + [_v2(resource_type, scope.interactions & allowed, query)
                  for resource_type, allowed in sorted(writes.items()) if scope.interactions & allowed]


# What each staff role may read, by resource type (None: everything the gateway serves). Deny by default:
# a type not listed is never granted to the role, so the gateway refuses it for their tokens, not only the
# pages. Front desk and billing work with people, appointments, insurance, messages and money; they see no
# clinical notes, results, problems or medicines. The role is read from the Practitioner's PractitionerRole.
_PEOPLE_AND_WORK = frozenset({
    "Patient", "RelatedPerson", "CareTeam", "Communication", "Task", "Practitioner", "PractitionerRole",
    "Organization", "Coverage", "Appointment", "Slot", "Schedule",
})
STAFF_ROLE_TYPES: dict[str, frozenset[str] | None] = {
    "clinician": None,
    "nurse": None,
    # Referral requests are coordinated by the front desk (which specialist, when): not their clinical content.
    "front-desk": _PEOPLE_AND_WORK | {"ServiceRequest"},
    "billing": _PEOPLE_AND_WORK | {"Account", "Invoice", "ChargeItem", "Encounter"},
}


def narrow_for_staff(requested: list[str], role: str | None) -> list[str]:
    """A staff member's `user/` (and `patient/`) scopes cut down to the resource types their role may use.
    `user/*.rs` becomes one scope per allowed type; a staff account without a known role gets no resource
    scopes at all."""
    if role not in STAFF_ROLE_TYPES:
        return [s for s in requested if context_of(s) is None]
    allowed = STAFF_ROLE_TYPES[role]
    if allowed is None:
        return list(requested)
    out: list[str] = []
    for item in requested:
        if context_of(item) is None:
            narrowed = [item]
        else:
            scope = Scope.parse(item)
            query = item.partition("?")[2]
            letters = item.split(".", 1)[1].split("?", 1)[0]
            if scope.resource_type == "*":
                narrowed = [f"{scope.context}/{t}.{letters}" + (f"?{query}" if query else "") for t in sorted(allowed)]
            else:
                narrowed = [item] if scope.resource_type in allowed else []
        out.extend(n for n in narrowed if n not in out)
    return out
