"""The first-use guide, display settings, help and the self-check against the running app (uvicorn, real
HAPI and Redis): the guide once per account, settings kept with the account across sign-ins, and the
self-check's answers leading to the pages that help."""

from __future__ import annotations

import re

import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient

from .helpers import csrf_of, portal_browser, portal_sign_in, text_of

pytestmark = pytest.mark.integration
PATIENT = "pt-0009"


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


def test_guide_once_then_settings_and_self_check_follow_the_account(gateway: GatewayServer, patient: Person) -> None:
    hops: list[str] = []
    with portal_browser(gateway) as b:
        guide = portal_sign_in(b, patient, "/portal/results", hops=hops, skip_guide=False)
        assert guide.status_code == 200 and "/portal/guide?next=%2Fportal%2Fresults" in hops
        words = text_of(guide.text)
        assert "Welcome to your patient portal" in words and "ask your care team a question" in words
        assert re.search(r'href="/portal/results" data-guide-skip>Skip the guide', guide.text)
        assert b.get("/portal/results").status_code == 200

        page = b.get("/portal/settings")
        assert page.status_code == 200 and '<html lang="en">' in page.text
        refused = b.post("/portal/settings", data={"csrf_token": csrf_of(page.text), "text_size": "enormous",
                                                   "contrast": "high"})
        assert refused.status_code == 400 and 'id="text_size-error"' in refused.text
        assert "Please pick a text size." in text_of(refused.text)
        saved = b.post("/portal/settings", data={"csrf_token": csrf_of(page.text), "text_size": "large",
                                                 "contrast": "high"})
        assert saved.status_code == 303 and saved.headers["location"] == "/portal/settings?saved=1"
        page = b.get(saved.headers["location"])
        assert '<html lang="en" class="text-large contrast-high">' in page.text and "Saved." in text_of(page.text)

    # Another browser, another sign-in: no guide this time, and the same display settings on every page.
    with portal_browser(gateway) as b:
        hops = []
        home = portal_sign_in(b, patient, "/portal/", hops=hops, skip_guide=False)
        assert home.status_code == 200 and not any("/portal/guide" in h for h in hops)
        assert "data-guide-skip" not in home.text
        for path in ("/portal/", "/portal/help", "/portal/messages"):
            assert '<html lang="en" class="text-large contrast-high">' in b.get(path).text, path

        check = b.get("/portal/self-check")
        assert "Do I review my visit notes soon after they are posted?" in text_of(check.text)
        answered = b.post("/portal/self-check", data={"csrf_token": csrf_of(check.text), "notes": "no",
                                                      "bills": "yes", "questions": "sometimes"})
        assert answered.status_code == 200
        assert 'href="/portal/record">Go to Health record' in answered.text
        assert 'href="/portal/messages">Go to Messages' in answered.text
        assert 'href="/portal/billing"' not in answered.text.split("<main", 1)[1].split("</main>")[0]
        topic = b.get("/portal/help/record")
        assert topic.status_code == 200 and "Where are my visit notes?" in text_of(topic.text)
        assert b.get("/portal/help/no-such-page").status_code == 404
        assert b.get("/portal/guide").status_code == 200  # open again from Help at any time
