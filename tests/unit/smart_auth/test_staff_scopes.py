"""Which scopes a staff role may hold: front desk and billing never get clinical types, whatever an app
asks for; clinicians and nurses keep what they asked; a staff account without a role gets no data."""

from __future__ import annotations

import httpx
import pytest
import respx

from fhir_gateway.upstream import Upstream, make_client
from smart_auth.errors import TemporarilyUnavailableError
from smart_auth.scope_policy import narrow_for_staff
from smart_auth.scopes import Interaction, ScopeSet
from smart_auth.staff_roles import staff_role_code

EHR = "http://ehr.test/fhir"
ASKED = ["openid", "fhirUser", "user/*.rs", "user/Communication.cu", "user/Observation.rs", "user/MedicationRequest.cu"]
STAFF_ROLE = "http://hospital.example.org/fhir/CodeSystem/staff-role"


def _may_read(scopes: list[str], rtype: str) -> bool:
    return ScopeSet.parse(" ".join(scopes)).decide("user", Interaction.READ, rtype).allowed


@pytest.mark.parametrize("role", ["clinician", "nurse"])
def test_clinical_roles_keep_what_they_asked(role: str) -> None:
    assert narrow_for_staff(ASKED, role) == ASKED


def test_billing_reads_no_results_nor_clinical_notes() -> None:
    granted = narrow_for_staff(ASKED, "billing")
    for rtype in ("Observation", "DiagnosticReport", "DocumentReference", "Condition", "MedicationRequest"):
        assert not _may_read(granted, rtype), rtype
    for rtype in ("Patient", "Invoice", "Account", "Coverage", "Communication"):
        assert _may_read(granted, rtype), rtype
    assert "user/Communication.cu" in granted and "openid" in granted
    assert "user/MedicationRequest.cu" not in granted


def test_front_desk_reads_no_clinical_notes() -> None:
    granted = narrow_for_staff(ASKED, "front-desk")
    for rtype in ("DocumentReference", "Observation", "Condition", "DiagnosticReport", "Procedure", "Invoice"):
        assert not _may_read(granted, rtype), rtype
    for rtype in ("Patient", "Appointment", "Coverage", "ServiceRequest", "CareTeam"):
        assert _may_read(granted, rtype), rtype


def test_no_role_no_data() -> None:
    assert narrow_for_staff(ASKED, None) == ["openid", "fhirUser"]
    assert narrow_for_staff(ASKED, "janitor") == ["openid", "fhirUser"]


def _role(practitioner: str, code: str, active: bool = True) -> dict:
    return {"resourceType": "PractitionerRole", "id": "r1", "active": active,
            "practitioner": {"reference": practitioner},
            "organization": {"reference": "Organization/org-team-billing", "display": "Billing office"},
            "code": [{"coding": [{"system": STAFF_ROLE, "code": code}]}]}


@respx.mock
async def test_the_role_is_read_from_the_practitioner_role() -> None:
    route = respx.get(f"{EHR}/PractitionerRole").mock(return_value=httpx.Response(200, json={
        "resourceType": "Bundle", "entry": [{"resource": _role("Practitioner/other", "clinician")},
                                            {"resource": _role("Practitioner/p1", "billing")}]}))
    async with make_client(EHR, connect_timeout=1, read_timeout=2, max_connections=2, transport="httpx") as client:
        ehr = Upstream(client, EHR, retries=0)
        assert await staff_role_code(ehr, "Practitioner/p1") == "billing"
        assert await staff_role_code(ehr, "Patient/pt-1") is None  # not a practitioner: nothing asked
    assert route.call_count == 1
    assert dict(route.calls[0].request.url.params)["practitioner"] == "Practitioner/p1"


@respx.mock
async def test_a_practitioner_without_a_staff_role_has_none_and_an_ehr_outage_says_so() -> None:
    respx.get(f"{EHR}/PractitionerRole").mock(side_effect=[
        httpx.Response(200, json={"resourceType": "Bundle", "entry": [
            {"resource": {**_role("Practitioner/p1", "clinician"), "code": [{"text": "visiting"}]}}]}),
        httpx.Response(503)])
    async with make_client(EHR, connect_timeout=1, read_timeout=2, max_connections=2, transport="httpx") as client:
        ehr = Upstream(client, EHR, retries=0)
        assert await staff_role_code(ehr, "Practitioner/p1") is None
        with pytest.raises(TemporarilyUnavailableError):
            await staff_role_code(ehr, "Practitioner/p1")
