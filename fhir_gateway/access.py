"""The access decision point: every /fhir request and every resource we return passes through here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smart_auth.scopes import Grant, Interaction

from .caller import Caller
from .compartment import in_compartment
from .errors import FHIRError, forbidden, not_found
from .policy import CREATE, HISTORY_INSTANCE, READ, SEARCH, UPDATE, VREAD, TypePolicy, policy_for
from .search import constraint_params, vet_search

SCOPE_INTERACTION = {
    READ: Interaction.READ,
    VREAD: Interaction.READ,
    HISTORY_INSTANCE: Interaction.READ,
    SEARCH: Interaction.SEARCH,
    CREATE: Interaction.CREATE,
    UPDATE: Interaction.UPDATE,
}


@dataclass(frozen=True)
class Decision:
    policy: TypePolicy
    grant: Grant
    # Search parameters to forward (vetted) plus the ones the gateway adds itself.
    params: tuple[tuple[str, str], ...] = ()


class AccessChecker:
    def __init__(self, *, strict_search: bool = True) -> None:
        self.strict_search = strict_search

    def type_policy(self, resource_type: str) -> TypePolicy:
        policy = policy_for(resource_type)
        if policy is None:
            raise FHIRError(404, "not-supported", f"Resource type '{resource_type}' is not served here")
        return policy

    def authorize(self, caller: Caller, interaction: str, resource_type: str) -> Decision:
        policy = self.type_policy(resource_type)
        if interaction not in policy.interactions:
            raise FHIRError(405, "not-supported", f"{interaction} is not supported on {resource_type}")
        context = caller.context
        if context == "patient" and caller.bound_patient is None:
            raise forbidden("This token has patient scopes but no patient in context")
        grant = caller.scopes.decide(context, SCOPE_INTERACTION[interaction], resource_type)
        if not grant.allowed:
            raise forbidden(f"The token's scopes do not permit {interaction} on {resource_type}")
        if caller.bound_patient and interaction in (CREATE, UPDATE) and interaction not in policy.patient_writes:
            raise forbidden(f"Patients may not {interaction} {resource_type} resources")
        return Decision(policy, grant)

    def authorize_search(self, caller: Caller, resource_type: str, params: list[tuple[str, str]]) -> Decision:
        decision = self.authorize(caller, SEARCH, resource_type)
        policy = decision.policy
        bound = caller.bound_patient
        forwarded = vet_search(policy, params, bound=bound is not None, strict=self.strict_search)
        added = constraint_params(decision.grant.constraint_sets, forwarded) if decision.grant.constrained else []
        if bound:
            if policy.patient_param:
                added.append((policy.patient_param, bound if policy.patient_param == "_id" else f"Patient/{bound}"))
        return Decision(policy, decision.grant, tuple(forwarded + [p for p in added if p not in forwarded]))

    def may_see(self, caller: Caller, resource: dict[str, Any]) -> bool:
        """Whether a resource the EHR handed back may reach this caller (reads, search matches, includes)."""
        rtype = resource.get("resourceType", "")
        policy = policy_for(rtype)
        if policy is None:
            return rtype == "OperationOutcome"
        readable = any(
            caller.scopes.decide(caller.context, i, rtype).allowed for i in (Interaction.READ, Interaction.SEARCH)
        )
        if not readable:
            return False
        bound = caller.bound_patient
        if bound is None or policy.shared:
            return True
        return in_compartment(resource, bound)

    def check_read(self, caller: Caller, resource: dict[str, Any] | None, resource_type: str, resource_id: str) -> dict:
        # A resource outside the compartment answers exactly like a missing one: no existence leak.
        if resource is None or not self.may_see(caller, resource):
            raise not_found(resource_type, resource_id)
        return resource
