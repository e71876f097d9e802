"""The bars every page of the product must clear, run together on the page as it is now."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Page, Response

from tests.plain_language import MAX_GRADE, Grade

from .axe import Violation, assert_no_serious_axe_violations
from .browser import DESKTOP, PHONE
from .headers import is_html, security_header_problems
from .keyboard import TabWalk, assert_keyboard_usable
from .reading import measure_reading, patient_facing
from .screens import capture, layout_problems_now, viewport_for


@dataclass
class PageReport:
    name: str
    url: str
    minor_violations: list[Violation] = field(default_factory=list)
    tab_stops: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    reading: Grade | None = None


async def assert_security_headers(response: Response | None) -> None:
    """The response (e.g. of `page.goto`) carries nosniff and, for HTML, the strict CSP, frame-ancestors
    'none' and Referrer-Policy: no-referrer. The `page` fixture checks every response anyway; this says it
    at the point a test cares about."""
    assert response is not None, "no response to check"
    headers = await response.all_headers()
    problems = security_header_problems(headers, html=is_html(headers))
    assert not problems, f"{response.url}: " + "; ".join(problems)


async def check_page(page: Page, name: str, *, keyboard: bool = True, layout: bool = True) -> PageReport:
    """The bars for one page as it is now: screenshots at 375 and 1280 px, no sideways scrolling or small
    targets at either width, then at 1280 px axe (0 serious/critical WCAG 2.1 A/AA violations) and every
    interactive element reachable by Tab with a visible focus indicator; and a patient's page (any not named
    `staff-...`) reads at Flesch-Kincaid grade 7 or below (tests/plain_language.py; the session's hardest
    pages are printed at its end). Screenshots come first, so a failing page can still be looked at; the
    viewport is put back afterwards."""
    original = page.viewport_size
    report = PageReport(name, page.url)
    problems: list[str] = []
    try:
        for width in (PHONE["width"], DESKTOP["width"]):
            await page.set_viewport_size(viewport_for(width))
            report.screenshots.append(await capture(page, name))
            if layout:
                problems += [f"{width}px: {p}" for p in await layout_problems_now(page)]
        report.minor_violations = await assert_no_serious_axe_violations(page, name)
        if keyboard:
            walk: TabWalk = await assert_keyboard_usable(page, name)
            report.tab_stops = walk.stops
    finally:
        if original and original != page.viewport_size:
            await page.set_viewport_size(original)
    assert not problems, f"layout problems on {name}:\n" + "\n".join(problems)
    if patient_facing(name):
        report.reading = grade = await measure_reading(page, name)
        hardest = "; ".join(f"{g:.1f}: {u}" for g, u in grade.hardest())
        assert grade.grade <= MAX_GRADE, f"{name} reads at grade {grade.grade} (bar {MAX_GRADE}); hardest: {hardest}"
    return report
