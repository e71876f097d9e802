"""Sign-in settings in a real browser, as one newly enrolled demo patient: from the profile to a new
authenticator app (set up by keyboard, then used to sign in), new recovery codes (the old ones stop working),
and a wrong current password refused next to its field with nothing changed. Every page held to `check_page`
(axe, keyboard, 375 and 1280 px)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, Page, expect

from .harness import Account, Authenticator, check_page, path_of, press_by_keyboard, sign_in, sign_out, submit

pytestmark = pytest.mark.e2e

CURRENT_CODE = re.compile("^A code from your")


async def sign_in_with_recovery_code(page: Page, account: Account, code: str) -> None:
    await page.goto("/auth/login?next=/auth/account/security")
    await submit(page, {"Username": account.username, "Password": account.password}, "Continue")
    await submit(page, {"Code": code}, "Sign in")


async def test_a_patient_sets_up_a_new_authenticator_and_new_recovery_codes(
        context: BrowserContext, enrolled: Callable[..., Awaitable[Account]]) -> None:
    account = await enrolled()
    assert account.authenticator is not None
    old_codes = account.recovery_codes
    page = await context.new_page()
    await sign_in(page, account, next_path="/portal/profile")
    await press_by_keyboard(page, page.get_by_role("link", name="See your sign-in settings"))
    assert path_of(page) == "/auth/account/security"
    await expect(page.get_by_text("You have 10 recovery codes left.")).to_be_visible()
    await check_page(page, "account-security")

    # A wrong current password: said next to the field, and the password stays as it was (signed in below).
    await page.goto("/auth/account/password")
    await check_page(page, "account-password", keyboard=False)
    await submit(page, {"Your current password": "Not-my-password-42", CURRENT_CODE:
                        await account.authenticator.code(), "New password": "Copper-Willow-Orchid-7",
                        "Type it again": "Copper-Willow-Orchid-7"}, "Change password")
    await expect(page.locator("#current_password-error")).to_have_text("That is not your current password.")
    await expect(page.locator("#current_password")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("alert")).to_contain_text("That is not your current password.")

    await page.goto("/auth/account/authenticator")
    await check_page(page, "account-authenticator")
    new_app = Authenticator("".join((await page.locator("#totp-secret").inner_text()).split()))
    await submit(page, {"Your current password": account.password, CURRENT_CODE: await account.authenticator.code(),
                        "The 6-digit code the new app shows": await new_app.code()}, "Use the new app",
                 by_keyboard=True)
    assert path_of(page) == "/auth/account/security"
    await expect(page.get_by_role("status")).to_contain_text("Your new authenticator app is set up")

    await page.goto("/auth/account/recovery-codes")
    await check_page(page, "account-recovery-codes", keyboard=False)
    await submit(page, {"Your current password": account.password, CURRENT_CODE: old_codes[0]}, "Get new codes")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your new recovery codes")
    new_codes = [c.strip() for c in await page.locator("ul.codes li").all_inner_texts()]
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    await check_page(page, "account-new-recovery-codes")
    await sign_out(page)

    account.authenticator = new_app
    await sign_in(page, account, next_path="/auth/account/security")
    await expect(page.get_by_text("You have 10 recovery codes left.")).to_be_visible()
    await sign_out(page)

    await sign_in_with_recovery_code(page, account, old_codes[1])
    assert path_of(page) == "/auth/login/mfa"
    await expect(page.get_by_text("That code is not correct or has expired.")).to_be_visible()
    await sign_in_with_recovery_code(page, account, new_codes[0])
    assert path_of(page) == "/auth/account/security"
    await expect(page.get_by_text("You have 9 recovery codes left.")).to_be_visible()
