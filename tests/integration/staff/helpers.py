"""Staff members against the running app: a staff account tied to a Practitioner of a given role (made
with the real `portal-auth staff add`), and their browser signed in to the staff area."""

from __future__ import annotations

import secrets

import httpx

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, person_from_cli, portal_auth
from tests.integration.gateway.helpers import ehr_search
from tests.integration.portal.helpers import follow

STAFF_ROLE = "http://hospital.example.org/fhir/CodeSystem/staff-role"


def care_team_member(ehr_base_url: str, patient_id: str, role: str) -> str:
    """The Practitioner id holding ``role`` on the patient's care team."""
    team = ehr_search(ehr_base_url, "CareTeam", {"subject": f"Patient/{patient_id}"})[0]
    return next(p["member"]["reference"].split("/", 1)[1] for p in team["participant"]
                if p["member"]["reference"].startswith("Practitioner/")
                and any(c.get("code") == role for r in p.get("role", []) for c in r.get("coding", [])))


def outsider(ehr_base_url: str, patient_id: str, role: str) -> str:
    """A Practitioner holding ``role`` who is NOT on the patient's care team."""
    team = ehr_search(ehr_base_url, "CareTeam", {"subject": f"Patient/{patient_id}"})[0]
    members = {p["member"]["reference"] for p in team["participant"]}
    for pr in ehr_search(ehr_base_url, "PractitionerRole", {"role": f"{STAFF_ROLE}|{role}"}):
        ref = pr["practitioner"]["reference"]
        if ref not in members:
            return ref.split("/", 1)[1]
    raise AssertionError(f"every {role} is on {patient_id}'s care team")


def staff_account(gw: GatewayServer, practitioner_id: str) -> Person:
    return person_from_cli(portal_auth(gw, "staff", "add", "--username", f"staff-{secrets.token_hex(4)}",
                                       "--practitioner", practitioner_id))


def staff_sign_in(b: httpx.Client, person: Person, page: str = "/portal/staff/") -> httpx.Response:
    return follow(b, b.get(page), person)
