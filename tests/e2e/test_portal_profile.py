"""The profile in a real browser, as one newly enrolled demo patient: every profile page held to the bars of
`check_page` (axe, keyboard, 375 and 1280 px), contact details changed with the keyboard alone and an
allergy reported after a field-level refusal, each checked in the EHR itself (read straight from HAPI)."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from playwright.async_api import BrowserContext, expect

from .harness import Account, check_page, path_of, press_by_keyboard, sign_in, submit

pytestmark = pytest.mark.e2e


def ehr_patient(base: str, pid: str) -> dict:
    return httpx.get(f"{base}/Patient/{pid}", timeout=30).json()


async def test_a_patient_changes_contact_details_by_keyboard_and_reports_an_allergy(
        context: BrowserContext, enrolled: Callable[..., Awaitable[Account]], ehr_base_url: str) -> None:
    account = await enrolled()
    assert account.patient is not None
    pid = account.patient.patient_id
    page = await context.new_page()
    await sign_in(page, account, next_path="/portal/profile")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    await expect(page.get_by_role("heading", name="Insurance")).to_be_visible()
    await check_page(page, "portal-profile")

    await press_by_keyboard(page, page.get_by_role("link", name="Change your contact details"))
    assert path_of(page) == "/portal/profile/contact"
    await check_page(page, "portal-profile-contact")
    before = ehr_patient(ehr_base_url, pid)
    phone = f"217-555-{random.randint(100, 199):04d}"
    await page.locator("#ec0_name").fill("Rosa Ortiz")
    await page.locator("#ec0_phone").fill("(217) 555 0142")
    await submit(page, {"Phone number": phone, "Language you would like us to use": "Tagalog",
                        "A text message": "on"}, "Save your details", by_keyboard=True)
    assert path_of(page) == "/portal/profile", await page.content()
    await expect(page.get_by_role("status")).to_contain_text("Your contact details are saved")
    await expect(page.get_by_text("Rosa Ortiz")).to_be_visible()
    after = ehr_patient(ehr_base_url, pid)
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert after["telecom"][0] == {"system": "sms", "value": phone, "use": "mobile", "rank": 1}
    assert after["communication"][0]["language"]["coding"][0]["code"] == "tl"
    assert after["contact"][-1]["telecom"][0]["value"] == "217-555-0142"
    assert after["name"] == before["name"] and after["birthDate"] == before["birthDate"]

    await page.goto("/portal/profile/allergies/new")
    await check_page(page, "portal-profile-allergy", keyboard=False)
    await submit(page, {"What are you allergic to?": ""}, "Send to your care team")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Enter what you are allergic to")
    await expect(alert).to_contain_text("Choose what kind of thing it is")
    await expect(page.locator("#substance")).to_have_attribute("aria-invalid", "true")
    substance = f"Shellfish {uuid.uuid4().hex[:4]}"
    await submit(page, {"What are you allergic to?": substance, "A food": "on", "What happens to you? (optional)":
                        "Swollen lips"}, "Send to your care team")
    await expect(page.get_by_role("status")).to_contain_text("Your care team will check the allergy")
    await expect(page.locator("#allergies ~ ul").first).to_contain_text(re.compile(rf"{substance}\s+You told us"))
    stored = [a for a in httpx.get(f"{ehr_base_url}/AllergyIntolerance", params={"patient": pid}, timeout=30)
              .json().get("entry", []) if a["resource"]["code"].get("text") == substance]
    assert len(stored) == 1
    assert stored[0]["resource"]["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    assert stored[0]["resource"]["recorder"]["reference"] == f"Patient/{pid}"

    await page.goto("/portal/profile/insurance")
    await check_page(page, "portal-profile-insurance", keyboard=False)
