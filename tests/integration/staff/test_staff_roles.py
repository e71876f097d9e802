"""Staff roles decide what the gateway answers, not only what pages show (real HAPI and Redis): a billing
clerk's token reads statements but no lab results, a front-desk token appointments but no clinical notes,
whatever scopes the app asked for; and each only for patients whose care team they are on."""

from __future__ import annotations

import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import browser, code_flow, fhir_get, register_public_client

from .helpers import care_team_member, outsider, staff_account

pytestmark = pytest.mark.integration
PATIENT = "pt-0015"
ASKED = "openid fhirUser user/*.rs"


def _token(gateway: GatewayServer, practitioner_id: str) -> dict:
    app = register_public_client(gateway, "Staff role check")
    with browser(gateway) as b:
        return code_flow(gateway, b, app, ASKED, person=staff_account(gateway, practitioner_id))


@pytest.mark.parametrize(("role", "refused", "allowed"), [
    ("billing", ("Observation", "DiagnosticReport"), ("Invoice", "Coverage")),
    ("front-desk", ("DocumentReference", "Condition", "Observation"), ("Appointment", "Coverage")),
])
def test_a_role_reads_only_its_kinds_of_data(gateway: GatewayServer, ehr_base_url: str, role: str,
                                             refused: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    token = _token(gateway, care_team_member(ehr_base_url, PATIENT, role))
    granted = token["scope"].split()
    assert "user/*.rs" not in granted
    for rtype in refused:
        r = fhir_get(gateway, rtype, token["access_token"], patient=PATIENT)
        assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome", (rtype, r.text[:200])
    for rtype in allowed:
        param = "beneficiary" if rtype == "Coverage" else "patient"
        r = fhir_get(gateway, rtype, token["access_token"], **{param: PATIENT})
        assert r.status_code == 200, (rtype, r.text[:200])
    patient = fhir_get(gateway, f"Patient/{PATIENT}", token["access_token"])
    assert patient.status_code == 200 and patient.json()["id"] == PATIENT


def test_a_clerk_off_the_care_team_is_refused_the_patient(gateway: GatewayServer, ehr_base_url: str) -> None:
    token = _token(gateway, outsider(ehr_base_url, PATIENT, "billing"))
    r = fhir_get(gateway, f"Patient/{PATIENT}", token["access_token"])
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "security"
    invoices = fhir_get(gateway, "Invoice", token["access_token"], patient=PATIENT)
    assert invoices.status_code == 200 and not invoices.json().get("entry")
