"""The reading grade of each patient page the browser tests open (`check_page` measures it), collected over
the session so the hardest pages can be printed at its end. The rule is tests/plain_language.py, the same
one the unit tests hold the rendered templates to."""

from __future__ import annotations

from functools import cache

from playwright.async_api import Page

from tests.plain_language import DataMask, Grade, grade_page, record_strings, report

READING: dict[str, Grade] = {}  # page name -> its hardest state measured in this session
STAFF_PAGES = "staff-"  # the care team's pages: written for clinicians, not held to the patients' bar


def patient_facing(name: str) -> bool:
    return not name.startswith(STAFF_PAGES)


@cache
def record_data() -> DataMask:
    """The demo records' names, medicines, tests and the clinic's texts (what the EHR was loaded with), as
    data rather than our wording."""
    from fixtures.generate import generate

    dataset = generate(patients=25)
    resources = [e["resource"] for bundle in (dataset.practice, *dataset.patient_bundles())
                 for e in bundle["entry"]]
    return DataMask(record_strings(resources))


async def measure_reading(page: Page, name: str) -> Grade:
    """The grade of the page's <main> as it is now (a disclosure's text counts whether open or not), in the
    language it is written in (a Spanish page's by the Spanish formula; a page not translated yet is English)."""
    main = page.locator("main")
    html = await main.first.evaluate("m => m.outerHTML") if await main.count() else await page.content()
    lang = await page.evaluate("() => (document.querySelector('main') || document.documentElement)"
                               ".closest('[lang]')?.lang || 'en'")
    grade = grade_page(name, html, record_data(), "es" if lang.split("-")[0] == "es" else "en")
    if name not in READING or READING[name].grade < grade.grade:
        READING[name] = grade
    return grade


def reading_summary() -> list[str]:
    return list(report(READING.values(), f"Hardest patient pages to read in this run ({len(READING)} pages)"))
