"""Staff roles as the EHR records them (pure functions).

A staff member's role is a code on their PractitionerRole (`STAFF_ROLE_SYSTEM`): clinician, nurse, front
desk or billing. The authorization server reads it to decide which scopes the person may hold; the staff
area reads it to decide which queues the person works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .messages import STAFF_ROLE_SYSTEM
from .names import human_name
from .references import local_reference, reference_display

ROLES: dict[str, str] = {"clinician": "Clinician", "nurse": "Nurse", "front-desk": "Front desk", "billing": "Billing"}


@dataclass(frozen=True)
class StaffRole:
    code: str  # clinician | nurse | front-desk | billing
    role_id: str  # the PractitionerRole's id
    team: str | None  # Organization/... the role works for (a message team, or the clinic)
    team_name: str

    @property
    def label(self) -> str:
        return ROLES[self.code]


def role_codes(practitioner_role: Mapping[str, Any]) -> list[str]:
    return [c.get("code") for concept in practitioner_role.get("code") or [] if isinstance(concept, Mapping)
            for c in concept.get("coding") or []
            if isinstance(c, Mapping) and c.get("system") == STAFF_ROLE_SYSTEM and c.get("code") in ROLES]


def staff_role(practitioner_roles: Iterable[Mapping[str, Any]], practitioner: str) -> StaffRole | None:
    """The staff role of ``practitioner`` (`Practitioner/<id>`) from their PractitionerRoles: the first
    active role with a staff-role code, or None (no staff role: not a member of staff here)."""
    for role in practitioner_roles:
        if role.get("resourceType") != "PractitionerRole" or role.get("active") is False:
            continue
        ref = (role.get("practitioner") or {}).get("reference")
        if not isinstance(ref, str) or local_reference(ref) != practitioner:
            continue
        codes = role_codes(role)
        if codes:
            org = role.get("organization")
            team = local_reference(org["reference"]) if isinstance(org, Mapping) and isinstance(
                org.get("reference"), str) else None
            return StaffRole(codes[0], str(role.get("id") or ""), team, reference_display(org) or "")
    return None


@dataclass(frozen=True)
class PatientBanner:
    """What identifies a patient on every staff page about them: name, date of birth, MRN."""

    id: str
    name: str
    birth_date: str  # FHIR date as recorded (the page writes it in words)
    mrn: str


MRN_TYPE = "MR"  # v2-0203 identifier type: medical record number


def patient_banner(patient: Mapping[str, Any]) -> PatientBanner:
    mrn = ""
    for ident in patient.get("identifier") or []:
        codes = {c.get("code") for c in ((ident or {}).get("type") or {}).get("coding") or [] if isinstance(c, Mapping)}
        if MRN_TYPE in codes and ident.get("value"):
            mrn = str(ident["value"])
            break
    return PatientBanner(str(patient.get("id") or ""), human_name(patient) or "Name not recorded",
                         str(patient.get("birthDate") or ""), mrn or "not recorded")
