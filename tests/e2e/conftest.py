"""Browser tests: one headless Chromium per session, a fresh context per test, the whole app running.

The app is the `gateway` session fixture of tests/conftest.py (uvicorn with the real app against the local
HAPI and a private Redis), started with an admin API key so tests can invite patients as the clinic does.

Fixtures:
- ``app``: the running app (`PortalApp`: url, state dir, `invite()`, the outbox of codes and links).
- ``browser``: the session's Chromium.
- ``new_context(javascript=True, **options)``: a fresh, isolated context (own cookies); any number per test.
- ``page`` / ``context``: a page in a fresh JavaScript-enabled context; ``nojs_page``: JavaScript disabled.
- ``patients``: hands out each demo patient once (`patients.take()`).
- ``enrolled()``: a new patient account, enrolled through the real pages in a context of its own;
  ``shared_patient``: one such account for the whole session (a demo patient with a full record), for
  tests that do not change it; ``portal_signed_in()``: a new page in a context already signed in to the
  portal as that patient (one sign-in per session, its cookies reused).

Every context is watched: at the end of the test, each response from the app must have carried the
security headers (strict CSP, frame-ancestors 'none', nosniff, no-referrer on HTML), and no page may have
tripped the CSP. A failing test leaves a full-page screenshot of each open page under
`<output>/failures/`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.conftest import GatewayServer

from .harness import (
    Account,
    PatientPool,
    PortalApp,
    ResponseWatch,
    context_options,
    demo_patients,
    enrol_patient,
    launch_chromium,
    output_dir,
    reading_summary,
    sign_in,
    spanish_speakers,
)

ADMIN_KEY = "e2e-" + secrets.token_urlsafe(24)
DEFAULT_TIMEOUT_MS = 30_000  # generous: the machine running the suite may be busy
# The shared patient has the fullest record of the demo set: lab panels with trends, imaging, visit notes,
# vaccinations and an allergy, so the portal's pages show every kind of item.
SHARED_PATIENT_ID = "pt-0004"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"e2e_{report.when}_failed", report.failed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The hardest patient pages `check_page` measured in this run, with the sentences that weigh most."""
    lines = reading_summary()
    if len(lines) > 1:
        terminalreporter.section("plain language")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def gateway_extra_env() -> dict[str, str]:
    return {"PORTAL_ADMIN_API_KEY": ADMIN_KEY}


@pytest.fixture(scope="session")
def app(gateway: GatewayServer) -> PortalApp:
    return PortalApp(gateway.url, gateway.state_dir, ADMIN_KEY)


@pytest.fixture(scope="session")
def e2e_output() -> Path:
    """This run's output folder; screenshots from earlier runs are removed so what is there is current."""
    path = output_dir()
    for old in (path / "screenshots").glob("*.png"):
        old.unlink()
    for old in (path / "failures").glob("*.png"):
        old.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
async def browser(e2e_output: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        try:
            yield chromium
        finally:
            await chromium.close()


ContextFactory = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture
async def new_context(browser: Browser, app: PortalApp, request: pytest.FixtureRequest
                      ) -> AsyncIterator[ContextFactory]:
    opened: list[tuple[BrowserContext, ResponseWatch]] = []

    async def make(*, javascript: bool = True, **options: Any) -> BrowserContext:
        context = await browser.new_context(**context_options(app.url, javascript=javascript, **options))
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        opened.append((context, ResponseWatch(app.url).attach(context)))
        return context

    yield make
    problems: list[str] = []
    failed = getattr(request.node, "e2e_call_failed", False)
    for number, (context, watch) in enumerate(opened):
        if failed:
            await _capture_failure(request.node.name, number, context)
        problems += await watch.problems()
        await context.close()
    assert not problems, "security header / CSP problems:\n" + "\n".join(dict.fromkeys(problems))


async def _capture_failure(test_name: str, number: int, context: BrowserContext) -> None:
    folder = output_dir() / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", test_name).strip("-")
    for index, page in enumerate(context.pages):
        try:
            await page.screenshot(path=str(folder / f"{slug}-{number}-{index}.png"), full_page=True, timeout=5_000)
        except Exception as exc:  # a crashed page cannot be captured; the failure itself is what matters
            print(f"could not capture {page.url}: {exc}")


@pytest.fixture
async def context(new_context: ContextFactory) -> BrowserContext:
    return await new_context()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
async def nojs_page(new_context: ContextFactory) -> Page:
    """A page in a context with JavaScript disabled: what a person with scripts off (or a failed script) gets."""
    return await (await new_context(javascript=False)).new_page()


@pytest.fixture(scope="session")
def patients() -> PatientPool:
    # Patients whose record prefers Spanish see the portal in Spanish: kept for the tests of the Spanish pages
    # (asked for by id), so every other test reads the English words.
    return PatientPool(demo_patients(), reserved=(SHARED_PATIENT_ID, *spanish_speakers()))


async def _enrol_once(browser: Browser, app: PortalApp, patients: PatientPool, patient_id: str) -> Account:
    context = await browser.new_context(**context_options(app.url))
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    watch = ResponseWatch(app.url).attach(context)
    try:
        account = await enrol_patient(await context.new_page(), app, patients.take(patient_id=patient_id))
        problems = await watch.problems()
    finally:
        await context.close()
    assert not problems, "security header / CSP problems:\n" + "\n".join(problems)
    return account


async def _signed_in_state(browser: Browser, app: PortalApp, account: Account) -> dict[str, Any]:
    context = await browser.new_context(**context_options(app.url))
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        page = await context.new_page()
        await sign_in(page, account)
        state: dict[str, Any] = dict(await context.storage_state())
    finally:
        await context.close()
    return state


@pytest.fixture(scope="session")
async def shared_patient(browser: Browser, app: PortalApp, patients: PatientPool) -> Account:
    """One patient account enrolled once per session, for tests that sign in and look around. A test that
    changes the account's password, locks it or withdraws its caregivers enrols its own with `enrolled()`."""
    return await _enrol_once(browser, app, patients, SHARED_PATIENT_ID)


@pytest.fixture(scope="session")
async def spanish_state(browser: Browser, app: PortalApp, patients: PatientPool) -> dict[str, Any]:
    """The cookies of one portal sign-in as a patient whose record prefers Spanish (the last of them; the
    first two are the language-switch and the enrolment tests' own), made once per session, for tests that
    read the Spanish pages without changing the account."""
    account = await _enrol_once(browser, app, patients, spanish_speakers()[-1])
    return await _signed_in_state(browser, app, account)


@pytest.fixture
async def enrolled(new_context: ContextFactory, app: PortalApp, patients: PatientPool
                   ) -> Callable[..., Awaitable[Account]]:
    """``await enrolled()``: a fresh patient account (authenticator app set up), made through the real
    enrolment pages in a context of its own, signed out."""

    async def make(*, use: str = "mrn") -> Account:
        context = await new_context()
        page = await context.new_page()
        account = await enrol_patient(page, app, patients.take(with_ssn=use == "ssn"), use=use)
        await page.close()
        return account

    return make


@pytest.fixture(scope="session")
async def portal_state(browser: Browser, app: PortalApp, shared_patient: Account) -> dict[str, Any]:
    """The cookies of one portal sign-in as the shared patient, made once per session."""
    return await _signed_in_state(browser, app, shared_patient)


@pytest.fixture
async def portal_signed_in(new_context: ContextFactory, portal_state: dict[str, Any]
                           ) -> Callable[..., Awaitable[Page]]:
    """``await portal_signed_in(javascript=True)``: a page in a fresh context holding the shared patient's
    portal session (watched like every other context)."""

    async def make(*, javascript: bool = True) -> Page:
        return await (await new_context(javascript=javascript, storage_state=portal_state)).new_page()

    return make


@pytest.fixture
async def spanish_signed_in(new_context: ContextFactory, spanish_state: dict[str, Any]
                            ) -> Callable[[], Awaitable[Page]]:
    """``await spanish_signed_in()``: a page in a fresh context holding the Spanish-speaking patient's session."""

    async def make() -> Page:
        return await (await new_context(storage_state=spanish_state)).new_page()

    return make
