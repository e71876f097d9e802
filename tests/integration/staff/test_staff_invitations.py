"""Portal invitations and figures in the staff area against the running app (real HAPI and Redis): the front
desk invites by e-mail (the link opens enrolment) and by letter (the code, typed, does too); nurses and billing
staff are refused the page; an unknown or malformed patient id is "not found"; every role sees the figures."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests.conftest import GatewayServer, MailServer
from tests.integration.portal.helpers import csrf_of, portal_browser, text_of

from .helpers import care_team_member, staff_account, staff_sign_in

pytestmark = pytest.mark.integration
PATIENT = "pt-0014"
PAGE = "/portal/staff/invitations"


def test_front_desk_invites_by_email_and_by_letter(gateway: GatewayServer, ehr_base_url: str,
                                                   mail_server: MailServer) -> None:
    desk = staff_account(gateway, care_team_member(ehr_base_url, PATIENT, "front-desk"))
    address = f"it-{uuid.uuid4().hex[:8]}@example.org"
    with portal_browser(gateway) as b:
        page = staff_sign_in(b, desk, f"{PAGE}?patient={PATIENT}")
        assert page.status_code == 200, page.text[:500]
        assert "Invite to the portal" in text_of(page.text)
        sent = b.post(PAGE, data={"csrf_token": csrf_of(page.text), "patient": PATIENT, "delivery": "email",
                                  "email": address})
        assert sent.status_code == 303, sent.text[:500]
        after = b.get(sent.headers["location"])
        assert "The invitation e-mail is on its way" in text_of(after.text)
        assert "Invited, not enrolled yet" in text_of(after.text)

        letter = b.post(PAGE, data={"csrf_token": csrf_of(after.text), "patient": PATIENT, "delivery": "letter"})
        assert letter.status_code == 200
        code = re.search(r'class="letter-code">([a-z0-9-]+)<', letter.text).group(1)  # type: ignore[union-attr]
        assert "Your invitation to the patient portal" in text_of(letter.text)

        bad = b.post(PAGE, data={"csrf_token": csrf_of(after.text), "patient": PATIENT, "delivery": "email",
                                 "email": "nope"})
        assert bad.status_code == 400 and "Enter the patient's e-mail address" in text_of(bad.text)
        assert b.get(f"{PAGE}?patient=pt-does-not-exist").status_code == 404
        assert b.get(f"{PAGE}?patient=../Patient").status_code == 404
        no_csrf = b.post(PAGE, data={"patient": PATIENT, "delivery": "letter"})
        assert no_csrf.status_code == 400 and "letter-code" not in no_csrf.text

        figures = b.get("/portal/staff/metrics")
        assert figures.status_code == 200 and "Patients invited" in text_of(figures.text)

    with portal_browser(gateway) as patient:
        # The e-mail came through the notices outbox and the real SMTP catch-all.
        link = urlsplit(mail_server.link_to(address, "/auth/enroll?code="))
        opened = patient.get(f"{link.path}?{link.query}")
        assert opened.status_code == 200 and "Confirm your identity" in text_of(opened.text)
    with portal_browser(gateway) as patient:
        typed = patient.get("/auth/enroll", params={"code": code.upper().replace("-", " ")})
        assert typed.status_code == 200 and "Confirm your identity" in text_of(typed.text)


@pytest.mark.parametrize("role", ["nurse", "billing"])
def test_nurses_and_billing_staff_get_no_invitations_but_see_the_figures(gateway: GatewayServer, ehr_base_url: str,
                                                                         role: str) -> None:
    person = staff_account(gateway, care_team_member(ehr_base_url, PATIENT, role))
    with portal_browser(gateway) as b:
        home = staff_sign_in(b, person)
        assert "Portal invitations" not in text_of(home.text) and "Portal figures" in text_of(home.text)
        refused = b.get(f"{PAGE}?patient={PATIENT}")
        assert refused.status_code == 403
        posted = b.post(PAGE, data={"csrf_token": csrf_of(home.text), "patient": PATIENT, "delivery": "letter"})
        assert posted.status_code == 403 and "letter-code" not in posted.text
        assert b.get("/portal/staff/metrics").status_code == 200
