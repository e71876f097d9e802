"""The request queue pages against the running app (real HAPI and Redis): a clinician on the patient's care
team sees a refill request and approves it, a nurse declines one (a reason is required and the patient reads
it), and a billing clerk can neither open the refill queue nor post a decision to it."""

from __future__ import annotations

import pytest

from mappers.decisions import REFILL_ORDER_SYSTEM
from tests.conftest import GatewayServer
from tests.integration.gateway.helpers import ehr_search
from tests.integration.gateway.test_decision_writes_hapi import PT, asked_refill, made  # noqa: F401 - a fixture
from tests.integration.portal.helpers import csrf_of, portal_browser, text_of

from .helpers import care_team_member, staff_account, staff_sign_in

pytestmark = pytest.mark.integration
QUEUE = "/portal/staff/queues/refills"


def read(base: str, ref: str) -> dict:
    return ehr_search(base, ref.split("/")[0], {"_id": ref.split("/")[1]})[0]


async def test_refill_queue_approve_decline_and_roles(gateway: GatewayServer, ehr_base_url: str,
                                                      made: list[str]) -> None:  # noqa: F811
    approve_rx, to_approve = await asked_refill(gateway, ehr_base_url, made)
    _, to_deny = await asked_refill(gateway, ehr_base_url, made)
    clinician = staff_account(gateway, care_team_member(ehr_base_url, PT, "clinician"))
    nurse = staff_account(gateway, care_team_member(ehr_base_url, PT, "nurse"))
    clerk = staff_account(gateway, care_team_member(ehr_base_url, PT, "billing"))

    with portal_browser(gateway) as b:
        page = staff_sign_in(b, clinician, QUEUE)
        assert page.status_code == 200, page.text[:500]
        words = text_of(page.text)
        assert "Atorvastatin 20 MG Oral Tablet" in words and "MRN" in words
        assert f'action="{QUEUE}/{to_approve["id"]}/approve"' in page.text
        done = b.post(f"{QUEUE}/{to_approve['id']}/approve", data={"csrf_token": csrf_of(page.text), "note": ""})
        assert done.status_code == 303 and done.headers["location"] == f"{QUEUE}?done=approved"
        after = b.get(done.headers["location"])
        assert "Refill approved" in text_of(after.text)
        assert f"{to_approve['id']}/approve" not in after.text  # answered: it left the queue
    assert read(ehr_base_url, f"MedicationRequest/{to_approve['id']}")["status"] == "completed"
    orders = ehr_search(ehr_base_url, "MedicationRequest",
                        {"identifier": f"{REFILL_ORDER_SYSTEM}|{to_approve['id']}"})
    made.extend(f"MedicationRequest/{o['id']}" for o in orders)
    assert [o["intent"] for o in orders] == ["order"]
    assert read(ehr_base_url, f"MedicationRequest/{approve_rx['id']}")["status"] == "completed"

    with portal_browser(gateway) as b:
        page = staff_sign_in(b, nurse, QUEUE)
        assert page.status_code == 200 and f"{to_deny['id']}/approve" not in page.text  # nurses do not prescribe
        token = csrf_of(page.text)
        empty = b.post(f"{QUEUE}/{to_deny['id']}/deny", data={"csrf_token": token, "reason": "  "})
        assert empty.status_code == 422 and "The patient reads this" in text_of(empty.text)
        assert read(ehr_base_url, f"MedicationRequest/{to_deny['id']}")["status"] == "draft"
        denied = b.post(f"{QUEUE}/{to_deny['id']}/deny", data={"csrf_token": token,
                                                                "reason": "Please book a check-up first."})
        assert denied.status_code == 303, denied.text[:500]
        forged = b.post(f"{QUEUE}/no-such-request/deny", data={"csrf_token": token, "reason": "x"})
        assert forged.status_code == 404
    stored = read(ehr_base_url, f"MedicationRequest/{to_deny['id']}")
    assert stored["status"] == "cancelled" and stored["statusReason"]["text"] == "Please book a check-up first."

    with portal_browser(gateway) as b:
        home = staff_sign_in(b, clerk)
        assert home.status_code == 200
        refused = b.get(QUEUE)
        assert refused.status_code == 403 and "Not part of your work" in text_of(refused.text)
        post = b.post(f"{QUEUE}/{to_deny['id']}/deny", data={"csrf_token": csrf_of(home.text), "reason": "x"})
        assert post.status_code == 403
        assert b.get("/portal/staff/queues/billing").status_code == 200
