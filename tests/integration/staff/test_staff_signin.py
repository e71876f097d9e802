"""Signing in to the staff area against the running app (real HAPI and Redis): password + TOTP through
/auth/authorize, the role read from the Practitioner's PractitionerRole, a session apart from a patient's."""

from __future__ import annotations

import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import enrol_patient
from tests.integration.portal.helpers import csrf_of, portal_browser, portal_sign_in, text_of

from .helpers import care_team_member, staff_account, staff_sign_in

pytestmark = pytest.mark.integration
PATIENT = "pt-0013"


def test_a_nurse_signs_in_and_sees_the_queues_of_the_role(gateway: GatewayServer, ehr_base_url: str) -> None:
    nurse = staff_account(gateway, care_team_member(ehr_base_url, PATIENT, "nurse"))
    with portal_browser(gateway) as b:
        home = staff_sign_in(b, nurse)
        assert home.status_code == 200, home.text[:500]
        words = text_of(home.text)
        assert "Signed in as" in words and "Nurse" in words
        assert "Inbox" in words and "Refill requests" in words
        assert "Billing questions" not in words and "Referral requests" not in words
        # The staff session is not a patient session: the patient portal still asks who is there.
        patient_page = b.get("/portal/")
        assert patient_page.status_code == 303 and patient_page.headers["location"].startswith("/portal/login")
        # Signing out ends it.
        out = b.post("/portal/staff/signout", data={"csrf_token": csrf_of(home.text)})
        assert out.status_code == 303
        again = b.get("/portal/staff/")
        assert again.status_code == 303 and again.headers["location"].startswith("/portal/staff/login")


def test_a_billing_clerk_gets_billing_work(gateway: GatewayServer, ehr_base_url: str) -> None:
    clerk = staff_account(gateway, care_team_member(ehr_base_url, PATIENT, "billing"))
    with portal_browser(gateway) as b:
        words = text_of(staff_sign_in(b, clerk).text)
        assert "Billing questions" in words and "Refill requests" not in words


def test_a_patient_account_gets_no_staff_session(gateway: GatewayServer, ehr_base_url: str) -> None:
    patient = enrol_patient(gateway, ehr_base_url, PATIENT)
    with portal_browser(gateway) as b:
        assert portal_sign_in(b, patient).status_code == 200
        page = staff_sign_in(b, patient)
        assert page.status_code == 403
        assert "This is not a staff account" in text_of(page.text)
        assert b.get("/portal/staff/").status_code == 303

