"""First-use guide, help, the self-check and display settings in a real browser: the guide shown after the
first sign-in only and skipped by keyboard; large text and high contrast chosen by keyboard and still on
after signing in again; every main page with those settings readable at 320 px wide and at 200 % zoom
(a 1280 px window zoomed to 200 % is 640 CSS px wide) with no sideways scrolling; the self-check leading
to the page that helps with each answer."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, Page, expect

from .harness import (
    Account,
    capture,
    check_page,
    layout_problems,
    path_of,
    press_by_keyboard,
    sign_in,
    sign_out,
    submit,
)
from .harness.screens import viewport_for

pytestmark = pytest.mark.e2e

MAIN_PAGES = ("/portal/", "/portal/results", "/portal/record", "/portal/medications", "/portal/appointments",
              "/portal/messages", "/portal/billing", "/portal/todo", "/portal/profile", "/portal/menu",
              "/portal/help", "/portal/help/results", "/portal/self-check", "/portal/settings",
              "/portal/access-log", "/portal/appointments/book", "/portal/messages/new", "/portal/download",
              "/portal/forms", "/portal/referrals", "/portal/caregivers", "/portal/account", "/portal/guide")
NARROW, ZOOMED = 320, 640


async def test_guide_once_then_large_text_and_high_contrast_kept_and_pages_fit_320px(
        context: BrowserContext, enrolled: Callable[..., Awaitable[Account]]) -> None:
    account = await enrolled()
    page = await context.new_page()
    await sign_in(page, account, next_path="/portal/results", skip_guide=False)
    assert path_of(page) == "/portal/guide"
    await expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to your patient portal")
    await expect(page.get_by_text("ask your care team a question")).to_be_visible()
    await check_page(page, "portal-guide")
    await press_by_keyboard(page, page.get_by_role("link", name="Skip the guide"))
    assert path_of(page) == "/portal/results"

    await page.goto("/portal/settings")
    await check_page(page, "portal-settings")
    await submit(page, {"Large text": "on", re.compile(r"^High contrast"): "on"}, "Save settings", by_keyboard=True)
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    await expect(page.locator("html")).to_have_class("text-large contrast-high")
    await check_page(page, "portal-settings-large-high-contrast")

    await sign_out(page)
    await sign_in(page, account, skip_guide=False)
    assert path_of(page) == "/portal/", "the guide is shown once per account"
    await expect(page.locator("html")).to_have_class("text-large contrast-high")

    problems = []
    await page.set_viewport_size(viewport_for(NARROW))
    for path in MAIN_PAGES:
        await page.goto(path)
        await capture(page, "large-text" + path.replace("/", "-").rstrip("-"))
        for width in (NARROW, ZOOMED):
            problems += [f"{path} at {width}px: {p}" for p in await layout_problems(page, width)]
    assert not problems, "\n".join(problems)


async def test_self_check_leads_to_the_page_that_helps(portal_signed_in: Callable[..., Awaitable[Page]]) -> None:
    page = await portal_signed_in()
    await page.goto("/portal/")
    await press_by_keyboard(page, page.get_by_role("link", name="Help with this page"))
    assert path_of(page) == "/portal/help/home"
    await check_page(page, "portal-help-home")
    await page.goto("/portal/help")
    await check_page(page, "portal-help")
    await press_by_keyboard(page, page.get_by_role("link", name="Self-check"))
    assert path_of(page) == "/portal/self-check"
    await check_page(page, "portal-self-check")

    await submit(page, {}, "Show me where to go", by_keyboard=True)
    await expect(page.get_by_role("alert")).to_contain_text("Please answer at least one question.")
    await page.locator("#notes-no").check()
    await page.locator("#medicines-sometimes").check()
    await page.locator("#bills-yes").check()
    await submit(page, {}, "Show me where to go", by_keyboard=True)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your self-check")
    await expect(page.get_by_role("link", name="Go to Medicines")).to_be_visible()
    await expect(page.get_by_role("link", name="Go to Bills")).to_have_count(0)
    await check_page(page, "portal-self-check-result")
    await press_by_keyboard(page, page.get_by_role("link", name="Go to Health record"))
    assert path_of(page) == "/portal/record"
