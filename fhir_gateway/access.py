"""The access decision point: every /fhir request and every resource we return passes through here.

In the spirit of Google's FHIR Gateway (`AccessChecker -> AccessDecision{canAccess, requestMutation,
postProcess}`): `authorize*` decide whether a request may go ahead (or raise), and the decision carries
the request mutation (the search parameters to forward, the gateway's own constraints added); the
post-processing is `checked_read` (a resource read) and `filter_bundle` (every entry of a Bundle).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smart_auth.scopes import Grant, Interaction

from .caller import Caller
from .care_teams import CareTeams, break_glass_of, outside_care_team
from .compartment import in_compartment, patients_of
from .errors import FHIRError, PolicyRefusal, not_found
from .policy import (
    CREATE,
    HISTORY_INSTANCE,
    READ,
    READS,
    SEARCH,
    UPDATE,
    VREAD,
    TypePolicy,
    content_policy_for,
    policy_for,
)
from .search import SearchLimits, constraint_params, vet_search

log = logging.getLogger("fhir_gateway.access")

SCOPE_INTERACTION = {
    READ: Interaction.READ,
    VREAD: Interaction.READ,
    HISTORY_INSTANCE: Interaction.READ,
    SEARCH: Interaction.SEARCH,
    CREATE: Interaction.CREATE,
    UPDATE: Interaction.UPDATE,
}


@dataclass(frozen=True)
class AccessDecision:
    """May go ahead, under this type policy and scope grant; `params` is the request mutation of a search
    (the vetted parameters to forward plus the ones the gateway adds itself)."""

    policy: TypePolicy
    grant: Grant
    params: tuple[tuple[str, str], ...] = ()


class GranularSearch(Protocol):
    """How a read under a v2 granular scope is checked: the EHR's own search (Upstream satisfies it)."""

    def search(self, resource_type: str, params: Any, request_id: str | None = None) -> Awaitable[dict]: ...


@dataclass
class CheckedBundle:
    bundle: dict[str, Any]
    refs: list[str]  # every resource that reaches the caller
    patients: set[str]  # whose compartments they lie in


class AccessChecker:
    def __init__(self, *, strict_search: bool = True, limits: SearchLimits | None = None,
                 ehr: GranularSearch | None = None, care_teams: CareTeams | None = None) -> None:
        self.strict_search = strict_search
        self.limits = limits or SearchLimits()
        self.ehr = ehr
        self.care_teams = care_teams

    # -- the care-team rule ------------------------------------------------------------------------
    async def with_care_team(self, caller: Caller, headers: Mapping[str, str], request_id: str | None) -> Caller:
        """A practitioner's caller with the patients they may see filled in (their care teams, plus one
        patient opened by break-the-glass); any other caller as it is. Without a care-team source (the
        rule switched off) a practitioner keeps no patients at all: deny by default."""
        if not caller.is_practitioner:
            return caller
        glass = break_glass_of(headers)
        team = (await self.care_teams.patients_of(caller.fhir_user or "", request_id)
                if self.care_teams is not None else frozenset())
        if glass is not None and glass.patient in team:
            glass = None  # nothing to break: they are on the care team
        return dataclasses.replace(caller, care_team=team, break_glass=glass)

    @staticmethod
    def within_care_team(caller: Caller, resource: dict[str, Any]) -> bool:
        if caller.care_team is None:
            return True
        return patients_of(resource) <= caller.reach

    # -- decisions -------------------------------------------------------------------------------
    def type_policy(self, resource_type: str) -> TypePolicy:
        policy = policy_for(resource_type)
        if policy is None:
            raise PolicyRefusal(404, "not-supported", f"Resource type '{resource_type}' is not served here")
        return policy

    def authorize(self, caller: Caller, interaction: str, resource_type: str) -> AccessDecision:
        policy = self.type_policy(resource_type)
        if interaction not in policy.interactions:
            raise PolicyRefusal(405, "not-supported", f"{interaction} is not supported on {resource_type}")
        context = caller.context
        if context == "patient" and caller.bound_patient is None:
            raise PolicyRefusal(403, "forbidden", "This token has patient scopes but no patient in context")
        grant = caller.scopes.decide(context, SCOPE_INTERACTION[interaction], resource_type)
        if not grant.allowed:
            raise PolicyRefusal(403, "forbidden", f"The token's scopes do not permit {interaction} on {resource_type}")
        if caller.bound_patient and interaction in (CREATE, UPDATE) and interaction not in policy.patient_writes:
            raise PolicyRefusal(403, "forbidden", f"Patients may not {interaction} {resource_type} resources")
        return AccessDecision(policy, grant)

    def authorize_search(self, caller: Caller, resource_type: str,
                         params: Sequence[tuple[str, str]]) -> AccessDecision:
        decision = self.authorize(caller, SEARCH, resource_type)
        self.limits.check(params)
        policy = decision.policy
        bound = caller.bound_patient
        forwarded = vet_search(policy, params, bound=bound is not None, strict=self.strict_search)
        added = constraint_params(decision.grant.constraint_sets, forwarded) if decision.grant.constrained else []
        if bound:
            if policy.patient_param:
                added.append((policy.patient_param, bound if policy.patient_param == "_id" else f"Patient/{bound}"))
        return AccessDecision(policy, decision.grant, tuple(forwarded + [p for p in added if p not in forwarded]))

    def authorize_patient_operation(self, caller: Caller, patient_id: str) -> AccessDecision:
        """A whole-record operation on one patient ($everything, $summary): as a read of that Patient, and
        a patient-bound caller only on their own (another patient's answers exactly like a missing one)."""
        decision = self.authorize(caller, READ, "Patient")
        if caller.bound_patient and caller.bound_patient != patient_id:
            raise not_found("Patient", patient_id)
        if caller.care_team is not None and f"Patient/{patient_id}" not in caller.reach:
            raise outside_care_team()
        return decision

    # -- post-processing -------------------------------------------------------------------------
    def may_see(self, caller: Caller, resource: dict[str, Any]) -> bool:
        """Whether a resource the EHR handed back may reach this caller (reads, search matches, includes)."""
        return self._may_see_by_scope(caller, resource) and self.within_care_team(caller, resource)

    def _may_see_by_scope(self, caller: Caller, resource: dict[str, Any]) -> bool:
        rtype = resource.get("resourceType", "")
        policy = content_policy_for(rtype)
        if policy is None:
            return rtype == "OperationOutcome"
        if policy.interactions and not policy.interactions & READS:
            return False  # a type served for writing only (payments) is never handed back
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
        if resource is None or resource.get("resourceType") != resource_type \
                or not self._may_see_by_scope(caller, resource):
            raise not_found(resource_type, resource_id)
        # A practitioner outside the patient's care team is told so (staff may know the patient exists):
        # they may break the glass.
        if not self.within_care_team(caller, resource):
            raise outside_care_team()
        return resource

    def check_written(self, caller: Caller, resource: dict[str, Any] | None, resource_type: str,
                      resource_id: str) -> dict:
        """A resource this caller wrote, read again to answer a repeat of the write: it must still be in
        the caller's compartment (read scopes are not asked: the first answer carried it too)."""
        if (resource is None or resource.get("resourceType") != resource_type
                or (caller.bound_patient and not in_compartment(resource, caller.bound_patient))
                or not self.within_care_team(caller, resource)):
            raise not_found(resource_type, resource_id)
        return resource

    async def checked_read(self, caller: Caller, decision: AccessDecision, resource: dict[str, Any] | None,
                           resource_type: str, resource_id: str, request_id: str | None) -> dict:
        """A read's answer after every check: compartment and scopes, then v2 granular scopes (e.g.
        `category=laboratory`), which the EHR's own search decides."""
        resource = self.check_read(caller, resource, resource_type, resource_id)
        if not decision.grant.constrained:
            return resource
        if self.ehr is None:
            raise FHIRError(503, "transient", "Granular scopes cannot be checked right now")
        for constraints in decision.grant.constraint_sets:
            found = await self.ehr.search(resource_type, [("_id", resource_id), ("_summary", "count"), *constraints],
                                          request_id)
            if found.get("total", 0) > 0:
                return resource
        raise not_found(resource_type, resource_id)

    def filter_bundle(self, caller: Caller, bundle: dict[str, Any]) -> CheckedBundle:
        """Only the entries this caller may see; the references and patients of what is left."""
        kept, refs, patients, dropped = [], [], set(), 0
        for entry in bundle.get("entry", []) or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(entry, dict) or (isinstance(resource, dict) and not self.may_see(caller, resource)):
                dropped += 1
                continue
            if isinstance(resource, dict) and resource.get("id"):
                refs.append(f"{resource['resourceType']}/{resource['id']}")
                patients |= patients_of(resource)
            kept.append(entry)
        if dropped:
            log.warning("dropped %d result entries outside the caller's access", dropped)
        bundle["entry"] = kept
        return CheckedBundle(bundle, refs, patients)
