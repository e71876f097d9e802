"""The patient portal in a real browser, signed in as a demo patient with a full record: every page held to
the bars of `check_page` (axe 0 serious/critical, keyboard-only, layout at 375 and 1280 px, screenshots),
words instead of FHIR codes or JSON, the main tasks done with the keyboard, and the same pages with
JavaScript off. A caregiver switching records is part of test_accounts_pages' caregiver journey."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from functools import cache
from typing import Any

import pytest
from playwright.async_api import Page, expect

from .harness import Account, capture, check_page, path_of, press_by_keyboard, submit

pytestmark = pytest.mark.e2e

SignedIn = Callable[..., Awaitable[Page]]

# (screenshot name, path, the page's heading)
PAGES = [
    ("portal-home", "/portal/", re.compile(r"Welcome")),
    ("portal-record", "/portal/record", "Health record"),
    ("portal-results", "/portal/results", "Test results"),
    ("portal-download", "/portal/download", "Download your record"),
    ("portal-summary", "/portal/download/summary", re.compile(r"summary", re.I)),
    ("portal-access-log", "/portal/access-log", "Who has looked at your record"),
    ("portal-messages", "/portal/messages", "Messages"),
    ("portal-message-new", "/portal/messages/new", "Write a message"),
    ("portal-appointments", "/portal/appointments", "Appointments"),
    ("portal-appointment-book", "/portal/appointments/book", "Book a visit"),
    ("portal-billing", "/portal/billing", "Bills and payments"),
    ("portal-menu", "/portal/menu", "All pages"),
    ("portal-caregivers", "/portal/caregivers", "Caregivers"),
    ("portal-account", "/portal/account", re.compile(r"sign-ins", re.I)),
]

# What a person must never be shown where words belong: FHIR JSON, resource references, code-system URLs.
RAW = re.compile(r'\{\s*"|"resourceType"|\b(?:Patient|Observation|Practitioner|Encounter|Condition)/[\w-]+'
                 r"|https?://(?:loinc|snomed|hl7|www\.nlm\.nih\.gov/research/umls)|\burn:(?:oid|uuid):")
# Codes that only a machine reads: LOINC (1234-5), SNOMED CT and RxNorm (5+ digits), ICD-10 (E11.9).
MACHINE_CODE = re.compile(r"\d+-\d|\d{5,}|[A-Z]\d{2}(?:\.\d{1,4})?")


def _codes(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for coding in value.get("coding") or []:
            code = str(coding.get("code") or "")
            if MACHINE_CODE.fullmatch(code):
                yield code
        for item in value.values():
            yield from _codes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _codes(item)


@cache
def record_codes(patient_id: str) -> frozenset[str]:
    """Every machine code in the patient's record as the fixtures wrote it."""
    from fixtures.generate import generate

    dataset = generate(patients=25)
    number = next(i for i, p in enumerate(dataset.profiles, 1) if p.id == patient_id)
    return frozenset(_codes(dataset.patient_bundle(number)))


# Clinicians' own documents (visit notes, imaging reports) are shown as written, codes and all.
_WORDS_JS = """() => {
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('.report-text').forEach(el => el.remove());
  return main.textContent;
}"""


async def assert_words_not_codes(page: Page, patient_id: str, name: str) -> None:
    text: str = await page.evaluate(_WORDS_JS)
    problems = [m.group(0) for m in RAW.finditer(text)]
    problems += [code for code in record_codes(patient_id)
                 if re.search(rf"(?<![\w.-]){re.escape(code)}(?![\w-])", text)]
    assert not problems, f"{name} shows raw FHIR where words belong: {sorted(set(problems))[:10]}"


@pytest.mark.parametrize(("name", "path", "heading"), PAGES, ids=[p[0] for p in PAGES])
async def test_portal_page(portal_signed_in: SignedIn, shared_patient: Account, name: str, path: str,
                           heading: str | re.Pattern[str]) -> None:
    page = await portal_signed_in()
    response = await page.goto(path)
    assert response is not None and response.status == 200 and path_of(page) == path, page.url
    await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    assert shared_patient.patient is not None
    await expect(page.get_by_role("region", name="Whose record is open")).to_contain_text(shared_patient.patient.name)
    await check_page(page, name)
    await assert_words_not_codes(page, shared_patient.patient.patient_id, name)
    assert shared_patient.patient.name not in await page.title(), "no names in page titles"


async def test_keyboard_only_skip_link_and_main_task(portal_signed_in: SignedIn) -> None:
    """The first Tab reaches the skip link, Enter moves focus into the page's main part, and from the home
    page the results, one test's chart and its explanation open with Tab and Enter alone."""
    page = await portal_signed_in()
    await page.goto("/portal/")
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => document.activeElement && document.activeElement.id") == "main"

    await press_by_keyboard(page, page.get_by_role("link", name="See all your test results"))
    assert path_of(page) == "/portal/results"

    trend = page.locator("details.trend").first
    await press_by_keyboard(page, trend.locator(":scope > summary"), navigates=False)
    await expect(trend).to_have_attribute("open", "")
    chart = trend.locator("svg[role=img]")
    await expect(chart).to_be_visible()
    label = await chart.get_attribute("aria-label") or await chart.locator("title").first.text_content() or ""
    assert len(label) > 20, f"the chart needs a text summary, got {label!r}"
    await expect(trend.locator("table.trend__table tbody tr").first).to_be_visible()
    explain = trend.locator("details.explain")
    if await explain.count():
        await press_by_keyboard(page, explain.locator(":scope > summary"), navigates=False)
        await expect(explain.get_by_text("What this test measures")).to_be_visible()
        await expect(explain.get_by_role("link")).to_have_count(1)  # its source
    await trend.scroll_into_view_if_needed()
    for width in (1280, 375):
        await page.set_viewport_size({"width": width, "height": 900})
        await trend.screenshot(path=str((await capture(page, "portal-result-trend")).with_name(
            f"portal-result-trend-chart-{width}.png")))


async def test_a_conversation_opens_by_keyboard_and_says_not_for_emergencies(portal_signed_in: SignedIn,
                                                                            shared_patient: Account) -> None:
    page = await portal_signed_in()
    await page.goto("/portal/messages")
    await expect(page.get_by_text("call 911").first).to_be_visible()
    first = page.locator("main a[href^='/portal/messages/']:not([href$='/new'])").first
    await press_by_keyboard(page, first)
    assert re.fullmatch(r"/portal/messages/[A-Za-z0-9.-]+", path_of(page)), page.url
    await expect(page.get_by_text("call 911").first).to_be_visible()
    await expect(page.get_by_label(re.compile("reply|message", re.I)).first).to_be_visible()
    await check_page(page, "portal-message-thread")
    assert shared_patient.patient is not None
    await assert_words_not_codes(page, shared_patient.patient.patient_id, "portal-message-thread")


async def test_results_flags_in_words_and_colour(portal_signed_in: SignedIn) -> None:
    page = await portal_signed_in()
    await page.goto("/portal/results")
    flags = page.locator("table.results .flag")
    assert await flags.count() > 0, "the fixture patient has results outside the normal range"
    first = flags.first
    words = (await first.inner_text()).strip()
    assert re.search(r"[A-Za-z]{3,}", words), f"a flag must say what it means in words: {words!r}"
    colour = await first.evaluate("el => getComputedStyle(el).color")
    body = await page.evaluate("() => getComputedStyle(document.body).color")
    assert colour != body, "flagged results also differ in colour"


async def test_downloads_and_print(portal_signed_in: SignedIn) -> None:
    """The PDF by keyboard, with the progress note the script shows while it is made; the print view.
    (The whole-record JSON is checked by the integration tests: for this patient it holds every access-log
    event of the shared EHR too, which makes it slow to fetch here.)"""
    page = await portal_signed_in()
    await page.goto("/portal/download")
    async with page.expect_download(timeout=60_000) as waiting:
        await press_by_keyboard(page, page.get_by_role("link", name="Download it as a PDF"), navigates=False)
        await expect(page.get_by_role("status")).to_contain_text("Making your PDF")
        await capture(page, "portal-download-making-pdf")
    pdf = await waiting.value
    assert pdf.suggested_filename.endswith(".pdf")
    assert (await pdf.path()).read_bytes().startswith(b"%PDF")  # type: ignore[union-attr]

    await press_by_keyboard(page, page.get_by_role("link", name="See it and print it"))
    assert path_of(page) == "/portal/download/summary"
    await page.emulate_media(media="print")
    await expect(page.locator(".site-header")).to_be_hidden()
    await capture(page, "portal-summary-print")
    await page.emulate_media(media="screen")


async def test_access_log_month_filter_by_keyboard(portal_signed_in: SignedIn) -> None:
    page = await portal_signed_in()
    await page.goto("/portal/access-log")
    await expect(page.locator("table caption")).to_contain_text(re.compile(r"\d+ times?"))
    await expect(page.get_by_role("table")).to_contain_text("patient portal")
    older = page.get_by_role("link", name=re.compile(r"^Show older times in "))
    if await older.count():  # a busy month comes a screen at a time
        await press_by_keyboard(page, older)
        await expect(page.locator("table caption")).to_contain_text("older ones")
    # The month picker by keyboard (the current month: an older one is reached by reading through the newer
    # ones, slow on an EHR that holds every test run's audit trail).
    months = await page.get_by_label("Show").locator("option").all_inner_texts()
    assert len(months) == 12
    await submit(page, {"Show": months[0]}, "Show this month", by_keyboard=True)
    assert "month=" in page.url
    await expect(page.locator("table caption")).to_contain_text(months[0])


async def test_portal_with_javascript_off(portal_signed_in: SignedIn) -> None:
    """Every page works with scripts disabled: the same headings and content, the filter form, the
    printable summary and the downloads (plain links)."""
    page = await portal_signed_in(javascript=False)
    for name, path, heading in PAGES:
        response = await page.goto(path)
        assert response is not None and response.status == 200 and path_of(page) == path, (name, page.url)
        await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    await capture(page, "portal-nojs-account")
    await page.goto("/portal/results")
    trend = page.locator("details.trend").first
    await trend.locator(":scope > summary").click()
    await expect(trend.locator("svg[role=img]")).to_be_visible()  # drawn on the server, no script needed
    await page.goto("/portal/access-log")
    await submit(page, {"Show": (await page.get_by_label("Show").locator("option").all_inner_texts())[0]},
                 "Show this month")
    assert "month=" in page.url
    # Without script the PDF link goes through a page that shows the progress and then asks for the file.
    await page.goto("/portal/download")
    async with page.expect_download(timeout=60_000) as waiting:
        await page.get_by_role("link", name="Download it as a PDF").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Making your PDF")
        await capture(page, "portal-nojs-making-pdf")
    pdf = await waiting.value
    assert pdf.suggested_filename.endswith(".pdf")
    assert (await pdf.path()).read_bytes().startswith(b"%PDF")  # type: ignore[union-attr]
