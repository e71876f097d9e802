"""Bills and payments in a real browser: a patient reads a statement and pays it with the keyboard only
(TEST provider), the bill shows as paid, and the EHR holds one payment for it (read from HAPI directly); a
statement id pasted from another record is refused and nothing is written. Each new page is held to
`check_page` (axe, keyboard, 375 and 1280 px) and shows words, not codes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.integration.statements import issuing

from .harness import Account, check_page, path_of, press_by_keyboard, sign_in, submit
from .test_portal_pages import assert_words_not_codes

pytestmark = pytest.mark.e2e


def _ehr_json(ehr_base_url: str, path: str, **params: str) -> dict:
    return httpx.get(f"{ehr_base_url}/{path}", params=params, timeout=30).json()


async def test_a_patient_pays_a_statement_by_keyboard_and_a_pasted_statement_is_refused(
        page: Page, enrolled: Callable[..., Awaitable[Account]], ehr_base_url: str) -> None:
    account = await enrolled()
    assert account.patient is not None
    patient_id = account.patient.patient_id
    other = next(e["resource"] for e in _ehr_json(ehr_base_url, "Invoice", _count="20")["entry"]
                 if e["resource"]["subject"]["reference"] != f"Patient/{patient_id}")
    with issuing(ehr_base_url) as issue:
        invoice = issue(patient_id, 48.75)
        await sign_in(page, account, next_path="/portal/billing")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Bills and payments")
        await expect(page.get_by_text("You owe $")).to_be_visible()  # the page itself is checked in test_portal_pages
        await press_by_keyboard(page, page.get_by_role("link", name=f"Statement {invoice['identifier'][0]['value']}"))
        assert path_of(page) == f"/portal/billing/{invoice['id']}"
        await expect(page.get_by_text("You owe $48.75")).to_be_visible()
        await check_page(page, "portal-billing-statement")
        await assert_words_not_codes(page, patient_id, "portal-billing-statement")
        await press_by_keyboard(page, page.get_by_role("link", name="Pay $48.75 now"))
        await expect(page.get_by_text("TEST payments")).to_be_visible()
        await check_page(page, "portal-billing-pay")
        # A mistake first: each field says what is wrong, and nothing is paid.
        await submit(page, {"Name on the card": "Test Person", "Card number": "1234", "Expiry date": "04/39",
                            "Security code": "123"}, "Pay $48.75")
        await expect(page.locator("#card_number-error")).to_contain_text("not a card number")
        await expect(page.locator("#card_number")).to_have_attribute("aria-invalid", "true")
        submission = await page.locator("input[name=submission]").get_attribute("value")
        csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
        await submit(page, {"Name on the card": "Test Person", "Card number": "4242 4242 4242 4242",
                            "Expiry date": "04/39", "Security code": "123"}, "Pay $48.75", by_keyboard=True)
        await expect(page.get_by_text("Your payment went through")).to_be_visible()
        assert path_of(page) == f"/portal/billing/{invoice['id']}"
        # The same form sent again (a double click, or Back and send again) pays nothing more.
        again = await page.request.post(f"/portal/billing/{invoice['id']}/pay", max_redirects=0, form={
            "csrf_token": csrf or "", "submission": submission or "", "amount": "48.75", "card_name": "Test Person",
            "card_number": "4242424242424242", "card_expiry": "04/39", "card_cvc": "123"})
        assert again.status == 303
        # Another record's statement pasted into the pay address: refused, nothing written there.
        await page.goto(f"/portal/billing/{other['id']}/pay")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
        pasted = await page.request.post(f"/portal/billing/{other['id']}/pay", max_redirects=0, form={
            "csrf_token": csrf or "", "submission": "pasted-" + (submission or "")[:20], "amount": "1.00",
            "card_name": "Test Person", "card_number": "4242424242424242", "card_expiry": "04/39",
            "card_cvc": "123"})
        assert pasted.status == 404
    # What the EHR holds, read straight from HAPI: one payment, the statement settled, no card number.
    notices = _ehr_json(ehr_base_url, "PaymentNotice", request=f"Invoice/{invoice['id']}").get("entry", [])
    assert len(notices) == 1
    payment = _ehr_json(ehr_base_url, notices[0]["resource"]["payment"]["reference"])
    assert payment["paymentAmount"]["value"] == 48.75 and "Visa ending 4242" in payment["disposition"]
    stored = _ehr_json(ehr_base_url, f"Invoice/{invoice['id']}")
    assert stored["status"] == "balanced"
    assert not re.search(r"4242424242424242|4242 4242", str([payment, notices, stored]))
    assert _ehr_json(ehr_base_url, f"Invoice/{other['id']}")["meta"] == other["meta"]
    assert not _ehr_json(ehr_base_url, "PaymentNotice", request=f"Invoice/{other['id']}",
                         _lastUpdated=f"ge{stored['meta']['lastUpdated'][:19]}").get("entry")
