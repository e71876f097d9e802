"""The health notebook in a real browser, as one newly enrolled demo patient: a note of how they feel written
after a field-level refusal, changed, shared, and printed; each step read back from HAPI; every notebook page
held to `check_page` (axe at 1280 px and again at 375 px, keyboard, layout)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, Page, expect

from mappers.notebook import CATEGORY_SEARCH
from tests.integration.gateway.helpers import ehr_search

from .harness import PHONE, Account, assert_no_serious_axe_violations, check_page, path_of, screenshots, sign_in, submit

pytestmark = pytest.mark.e2e


def ehr_entry(base: str, pid: str, words: str) -> list[dict]:
    found = ehr_search(base, "Observation", {"patient": pid, "category": CATEGORY_SEARCH})  # every page
    return [r for r in found if words in r.get("valueString", "")]


async def check_both_widths(page: Page, name: str, *, keyboard: bool = True) -> None:
    await check_page(page, name, keyboard=keyboard)
    original = page.viewport_size
    await page.set_viewport_size(PHONE)
    try:
        await assert_no_serious_axe_violations(page, f"{name}-375")
    finally:
        if original:
            await page.set_viewport_size(original)


async def test_a_patient_writes_changes_shares_and_prints_a_note(
        context: BrowserContext, enrolled: Callable[..., Awaitable[Account]], ehr_base_url: str) -> None:
    account = await enrolled()
    assert account.patient is not None
    pid = account.patient.patient_id
    page = await context.new_page()
    await sign_in(page, account, next_path="/portal/notebook")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your health notebook")
    await check_both_widths(page, "portal-notebook")

    await page.get_by_role("link", name="Write down how you feel").click()
    assert path_of(page) == "/portal/notebook/new"
    await check_both_widths(page, "portal-notebook-new")
    await submit(page, {"How do you feel?": ""}, "Save")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Say how you feel")
    await expect(alert).to_contain_text("Choose how bad it is")
    await expect(page.locator("#text")).to_have_attribute("aria-invalid", "true")
    words = f"Sore knee on the stairs {uuid.uuid4().hex[:4]}"
    await submit(page, {"How do you feel?": words, "Moderate: it gets in the way of my day": "on"}, "Save",
                 by_keyboard=True)
    await expect(page.get_by_role("status")).to_contain_text("Only you can see it until you share it")
    [stored] = ehr_entry(ehr_base_url, pid, words)
    assert stored["status"] == "preliminary" and stored["performer"][0]["reference"] == f"Patient/{pid}"

    mine = page.locator(f"#entry-{stored['id']}")  # the long-lived EHR may hold this patient's earlier notes
    await mine.get_by_role("link", name="Change this note").click()
    await submit(page, {"How do you feel?": words + ", better now"}, "Save")
    await expect(page.get_by_role("status")).to_contain_text("Your changes are saved")
    await mine.get_by_role("button", name="Share with my care team").click()
    await expect(page.get_by_role("status")).to_contain_text("Shared with your care team")
    await expect(mine).to_contain_text("Shared with your care team")
    await screenshots(page, "portal-notebook-entries")
    [shared] = ehr_entry(ehr_base_url, pid, words)
    assert shared["status"] == "final" and shared["valueString"] == words + ", better now"

    await page.get_by_role("link", name="Print your notebook for your visit").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Health notebook of")
    await expect(page.get_by_role("button", name="Print your notebook")).to_be_visible()
    await check_both_widths(page, "portal-notebook-print", keyboard=False)
    await page.emulate_media(media="print")
    await expect(page.get_by_text(words + ", better now")).to_be_visible()
    await expect(page.get_by_role("button", name="Print your notebook")).to_be_hidden()
    await expect(page.locator("nav").first).to_be_hidden()
    await page.emulate_media(media="screen")
