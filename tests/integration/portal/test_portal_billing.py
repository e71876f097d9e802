"""Bills and payments in the portal against the running app (real HAPI and Redis, the TEST payment provider):
what a patient reads about a statement, what paying writes to the EHR (once, however often the form is sent),
what pasting another patient's statement leaves behind, and the access log's words for it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, enrol_patient
from tests.integration.gateway.helpers import ehr_search
from tests.integration.statements import issuing

from .helpers import access_log_text, csrf_of, portal_browser, portal_sign_in, submission_of, text_of

pytestmark = pytest.mark.integration
PATIENT, OTHER = "pt-0016", "pt-0017"
CARD = "4242 4242 4242 4242"


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


@pytest.fixture
def issue(ehr_base_url: str) -> Iterator[Callable[..., dict]]:
    with issuing(ehr_base_url) as make:
        yield make



def _pay_form(b: httpx.Client, invoice_id: str) -> dict[str, str]:
    page = b.get(f"/portal/billing/{invoice_id}/pay")
    assert page.status_code == 200, text_of(page.text)[:300]
    assert "TEST payments" in text_of(page.text)
    return {"csrf_token": csrf_of(page.text),
            "submission": submission_of(page.text),
            "amount": re.search(r'name="amount" value="([^"]+)"', page.text).group(1),
            "card_name": "Test Person", "card_number": CARD, "card_expiry": "04/39", "card_cvc": "321"}


def test_a_patient_reads_a_statement_mistypes_a_card_then_pays_once_however_often_the_form_is_sent(
        gateway: GatewayServer, ehr_base_url: str, patient: Person, issue: Callable[..., dict]) -> None:
    invoice = issue(PATIENT, 61.40)
    number = invoice["identifier"][0]["value"]
    with portal_browser(gateway) as b:
        listing = portal_sign_in(b, patient, "/portal/billing")
        words = text_of(listing.text)
        assert listing.status_code == 200 and f"Statement {number}" in words and "You owe $" in words
        detail = text_of(b.get(f"/portal/billing/{invoice['id']}").text)
        assert "You owe $61.40" in detail and "Office visit" in detail
        pdf = b.get(f"/portal/billing/{invoice['id']}/statement.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        question = b.get(f"/portal/billing/{invoice['id']}")
        link = re.search(r'href="(/portal/messages/new\?topic=billing[^"]*)"', question.text).group(1)
        compose = b.get(link.replace("&amp;", "&"))
        assert f"Question about statement {number}" in compose.text
        assert 'value="billing" checked' in compose.text

        form = _pay_form(b, invoice["id"])
        # Mistakes first: each field is named, a declined card is said plainly, and nothing is written.
        bad = b.post(f"/portal/billing/{invoice['id']}/pay",
                     data={**form, "card_number": "1234 5678", "card_expiry": "13/20", "card_cvc": ""})
        assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
        problems = text_of(bad.text)
        assert "This is not a card number" in problems and "month/year" in problems and "security code" in problems
        declined = b.post(f"/portal/billing/{invoice['id']}/pay",
                          data={**form, "submission": form["submission"][:-1] + "x",
                                "card_number": "4000 0000 0000 0002"})
        assert declined.status_code == 422 and "declined" in text_of(declined.text)
        assert ehr_search(ehr_base_url, "PaymentNotice", {"request": f"Invoice/{invoice['id']}"}) == []
        first = b.post(f"/portal/billing/{invoice['id']}/pay", data=form)
        assert first.status_code == 303 and first.headers["location"].endswith("?paid=1"), text_of(first.text)[:400]
        again = b.post(f"/portal/billing/{invoice['id']}/pay", data=form)  # the same form sent twice
        assert again.status_code == 303
        paid = text_of(b.get(first.headers["location"]).text)
        assert "Your payment went through" in paid and "Visa ending 4242" in paid
        log = access_log_text(b, "paid a bill")
        assert "paid a bill" in log
    notices = ehr_search(ehr_base_url, "PaymentNotice", {"request": f"Invoice/{invoice['id']}"})
    assert len(notices) == 1 and notices[0]["amount"] == {"value": 61.4, "currency": "USD"}
    recon = httpx.get(f"{ehr_base_url}/{notices[0]['payment']['reference']}", timeout=30).json()
    stored = httpx.get(f"{ehr_base_url}/Invoice/{invoice['id']}", timeout=30).json()
    assert stored["status"] == "balanced"
    # Of the card, the EHR and the app's log hold the brand and last four at most.
    for text in (str(recon), str(notices[0]), str(stored), gateway.log.read_text(errors="replace")):
        assert "4242424242424242" not in text and CARD not in text and "04/39" not in text


def test_another_patients_statement_pasted_into_the_pay_form_is_refused_and_nothing_written(
        gateway: GatewayServer, ehr_base_url: str, patient: Person, issue: Callable[..., dict]) -> None:
    mine = issue(PATIENT, 12.00)
    theirs = issue(OTHER, 12.00)
    with portal_browser(gateway) as b:
        portal_sign_in(b, patient, "/portal/billing")
        form = _pay_form(b, mine["id"])
        assert b.get(f"/portal/billing/{theirs['id']}").status_code == 404
        assert b.get(f"/portal/billing/{theirs['id']}/pay").status_code == 404
        pasted = b.post(f"/portal/billing/{theirs['id']}/pay", data=form)
        assert pasted.status_code == 404 and theirs["identifier"][0]["value"] not in pasted.text
        log = access_log_text(b, "tried to pay a bill")  # the gateway refused it, and logged it for this patient
        assert "tried to pay a bill" in log
    assert ehr_search(ehr_base_url, "PaymentNotice", {"request": f"Invoice/{theirs['id']}"}) == []
    assert httpx.get(f"{ehr_base_url}/Invoice/{theirs['id']}", timeout=30).json()["status"] == "issued"
    assert ehr_search(ehr_base_url, "PaymentNotice", {"request": f"Invoice/{mine['id']}"}) == []
