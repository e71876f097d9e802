"""People and their accounts, made and used through the real pages: enrolment from an invitation link,
an authenticator app (TOTP) set up from the key shown on the page, and sign-in with password + code.

Every flow takes ``by_keyboard=True`` (fill and submit every form with the keyboard only) and ``on_page``,
an async callback run on each page the flow passes through, e.g. ``check_page`` to hold every page to
the accessibility and layout bars without writing the flow twice.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

import pyotp
from playwright.async_api import Page, Response

from .app import Invitation, PortalApp
from .keyboard import Label, by_label, fill_by_keyboard, press_by_keyboard

PageHook = Callable[[Page, str], Awaitable[object]]
TOTP_PERIOD = 30
DEMO_PATIENTS = 25


@dataclass(frozen=True)
class DemoPatient:
    """A synthetic patient from the fixture set, with the facts the identity check asks for."""

    patient_id: str
    name: str
    birth_date: str
    mrn: str
    ssn_last4: str | None
    language: str = "en-US"  # the preferred language in their record (the portal opens in it)


@cache
def demo_patients() -> tuple[DemoPatient, ...]:
    """The demo-patient table (`portal-fixtures demo`) of the default fixture set loaded into the EHR."""
    from fixtures.demo import demo_rows
    from fixtures.generate import generate

    dataset = generate(patients=DEMO_PATIENTS)
    languages = {p.id: p.language[0] for p in dataset.profiles}
    return tuple(DemoPatient(r.patient_id, r.name, r.birth_date, r.mrn, r.ssn_last4, languages[r.patient_id])
                 for r in demo_rows(dataset))


def spanish_speakers() -> tuple[str, ...]:
    """The demo patients whose record prefers Spanish (the portal opens in Spanish for them)."""
    return tuple(p.patient_id for p in demo_patients() if p.language.split("-")[0] == "es")


class PatientPool:
    """Hands out each demo patient once per test session, so no two tests enrol the same person. Patients
    named in ``reserved`` are handed out only when asked for by id (the one whose record the portal tests
    look at must be free whichever test asks first)."""

    def __init__(self, patients: tuple[DemoPatient, ...], reserved: tuple[str, ...] = ()) -> None:
        self._left = list(patients)
        self._reserved = set(reserved)
        self._lock = threading.Lock()

    def take(self, *, with_ssn: bool = False, patient_id: str | None = None) -> DemoPatient:
        with self._lock:
            for patient in self._left:
                if patient_id is not None and patient.patient_id != patient_id:
                    continue
                if patient_id is None and patient.patient_id in self._reserved:
                    continue
                if with_ssn and not patient.ssn_last4:
                    continue
                self._left.remove(patient)
                return patient
        raise RuntimeError("the demo patients are used up: load a larger fixture set or reuse accounts")


class Authenticator:
    """The authenticator app on the person's phone: codes from the key shown at set-up. The server accepts
    a code once, from the current 30-second step or one either side; `code()` never repeats a step."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.totp = pyotp.TOTP(secret)
        self.steps_used: list[int] = []

    async def code(self) -> str:
        while True:
            now = time.time()
            step = int(now // TOTP_PERIOD)
            left = TOTP_PERIOD - now % TOTP_PERIOD
            # The previous step stays valid until this one ends; leave a margin for the round trip.
            for candidate in (step, step + 1, *((step - 1,) if left > 5 else ())):
                if candidate not in self.steps_used:
                    self.steps_used.append(candidate)
                    return self.totp.at(candidate * TOTP_PERIOD)
            await asyncio.sleep(left + 0.1)


@dataclass
class Account:
    username: str
    password: str
    authenticator: Authenticator | None
    recovery_codes: list[str] = field(default_factory=list)
    patient: DemoPatient | None = None
    email: str | None = None


def new_username(prefix: str = "e2e") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_password() -> str:
    """A passphrase the password rules accept (long, not common, not the username)."""
    words = ["Harbor", "Lantern", "Meadow", "Copper", "Willow", "Granite", "Orchid", "Falcon", "Saffron"]
    return "-".join(secrets.choice(words) for _ in range(3)) + f"-{secrets.randbelow(900) + 100}"


def path_of(page: Page) -> str:
    return urlsplit(page.url).path


async def page_messages(page: Page) -> str:
    """The error and notice texts on the page (for assertion messages)."""
    texts = await page.locator(".alert, .error, .notice").all_inner_texts()
    return " | ".join(t.strip() for t in texts) or "(no message shown)"


async def expect_path(page: Page, path: str, step: str) -> None:
    if path_of(page) != path:
        raise AssertionError(f"{step}: expected {path}, got {page.url}: {await page_messages(page)}")


async def submit(page: Page, values: Mapping[Label, str], button: str, *, by_keyboard: bool = False
                 ) -> Response | None:
    """Fill fields (by their visible labels: exact text or a regular expression) and press the button, with
    the keyboard only or as a mouse user. Returns the response of the page the form leads to."""
    if by_keyboard:
        return await fill_by_keyboard(page, values, button)
    for label, value in values.items():
        field_ = by_label(page, label)
        kind = await field_.get_attribute("type")
        if kind in ("checkbox", "radio"):
            await field_.set_checked(value != "off")
        elif await field_.evaluate("el => el.tagName") == "SELECT":
            await field_.select_option(label=value)
        else:
            await field_.fill(value)
    async with page.expect_navigation() as navigation:
        await page.get_by_role("button", name=button, exact=True).click()
    return await navigation.value


async def follow_link(page: Page, name: str, *, by_keyboard: bool = False) -> Response | None:
    link = page.get_by_role("link", name=name, exact=True)
    if by_keyboard:
        return await press_by_keyboard(page, link)
    async with page.expect_navigation() as navigation:
        await link.click()
    return await navigation.value


async def _hook(on_page: PageHook | None, page: Page, name: str) -> None:
    if on_page is not None:
        await on_page(page, name)


async def enrol(page: Page, app: PortalApp, invitation_url: str, identity: Mapping[str, str], *,
                username: str | None = None, password: str | None = None, codes_by_email: str | None = None,
                by_keyboard: bool = False, on_page: PageHook | None = None, name: str = "enrol") -> Account:
    """From an invitation link to a finished account: identity check (``identity`` maps field labels to
    values), username and password, a second step (an authenticator app set up from the key on the page, or
    with ``codes_by_email`` one-time codes sent to that address), recovery codes.
    ``on_page`` runs on each page as ``<name>-identity``, ``-account``, ``-second-step``, ``-authenticator``
    (or ``-email-code``), ``-done``."""
    username = username or new_username()
    password = password or new_password()
    await page.goto(invitation_url)
    await expect_path(page, "/auth/enroll", "invitation link")
    await _hook(on_page, page, f"{name}-identity")
    await submit(page, identity, "Continue", by_keyboard=by_keyboard)
    await expect_path(page, "/auth/enroll/account", "identity check")
    await _hook(on_page, page, f"{name}-account")
    await submit(page, {"Username": username, "Password": password, "Type the password again": password},
                 "Continue", by_keyboard=by_keyboard)
    await expect_path(page, "/auth/enroll/mfa", "username and password")
    await _hook(on_page, page, f"{name}-second-step")
    authenticator = None
    if codes_by_email:
        await submit(page, {"E-mail": "on", "E-mail address or mobile number": codes_by_email}, "Send me a code",
                     by_keyboard=by_keyboard)
        await expect_path(page, "/auth/enroll/otp/send", "sending a code")
        await _hook(on_page, page, f"{name}-email-code")
        await submit(page, {"Code": app.last_code(codes_by_email)}, "Confirm", by_keyboard=by_keyboard)
    else:
        await follow_link(page, "Set up an authenticator app", by_keyboard=by_keyboard)
        await expect_path(page, "/auth/enroll/totp", "choosing an authenticator app")
        await _hook(on_page, page, f"{name}-authenticator")
        key = await page.locator("#totp-secret").inner_text()
        authenticator = Authenticator("".join(key.split()))  # shown in groups of four for typing
        await submit(page, {"Enter the 6-digit code the app shows": await authenticator.code()}, "Confirm",
                     by_keyboard=by_keyboard)
    codes = [c.strip() for c in await page.locator("ul.codes li").all_inner_texts()]
    if not codes:
        raise AssertionError(f"second-step set-up did not finish: {await page_messages(page)}")
    await _hook(on_page, page, f"{name}-done")
    return Account(username, password, authenticator, codes, email=codes_by_email)


def patient_identity(patient: DemoPatient, *, use: str = "mrn") -> dict[str, str]:
    """The identity-check answers for a demo patient: date of birth with the MRN, or with the SSN's last four."""
    if use == "ssn":
        assert patient.ssn_last4, f"{patient.patient_id} has no SSN on file"
        return {"Date of birth": patient.birth_date,
                "Last four digits of your Social Security number": patient.ssn_last4}
    return {"Date of birth": patient.birth_date, "Medical record number (MRN)": patient.mrn}


async def enrol_patient(page: Page, app: PortalApp, patient: DemoPatient, *, use: str = "mrn",
                        codes_by_email: str | None = None, by_keyboard: bool = False,
                        on_page: PageHook | None = None, name: str = "enrol") -> Account:
    """Invite a demo patient (admin API) and enrol them end to end through the pages (identity by date of
    birth with the MRN, or with ``use="ssn"`` the SSN's last four; see `enrol` for the rest)."""
    invitation: Invitation = await app.invite(patient.patient_id)
    account = await enrol(page, app, invitation.url, patient_identity(patient, use=use), by_keyboard=by_keyboard,
                          codes_by_email=codes_by_email, on_page=on_page, name=name)
    account.patient = patient
    return account


async def second_step_code(account: Account, app: PortalApp | None) -> str:
    """The code the person would type: from their authenticator app, or the newest one e-mailed to them."""
    if account.authenticator is not None:
        return await account.authenticator.code()
    assert app is not None and account.email, "an account with e-mailed codes needs the app's outbox"
    return app.last_code(account.email)


async def sign_in(page: Page, account: Account, *, app: PortalApp | None = None, next_path: str | None = None,
                  by_keyboard: bool = False, on_page: PageHook | None = None, name: str = "sign-in",
                  skip_guide: bool = True) -> Response | None:
    """Password, then the second-step code (``app`` is needed for codes sent by e-mail). Returns the response
    that finished the sign-in (its redirects lead back to the code page). The browser ends on ``next_path``
    (by default the portal home): after an account's first sign-in the portal shows its first-use guide,
    which is skipped unless ``skip_guide`` is false. ``on_page`` runs on the password page and on the code
    page."""
    await page.goto("/auth/login" + (f"?next={next_path}" if next_path else ""))
    await expect_path(page, "/auth/login", "sign-in page")
    await _hook(on_page, page, f"{name}-password")
    await submit(page, {"Username": account.username, "Password": account.password}, "Continue",
                 by_keyboard=by_keyboard)
    await expect_path(page, "/auth/login/mfa", "password")
    await _hook(on_page, page, f"{name}-code")
    response = await submit(page, {"Code": await second_step_code(account, app)}, "Sign in", by_keyboard=by_keyboard)
    if path_of(page).startswith("/auth/login"):
        raise AssertionError(f"sign-in did not finish: {await page_messages(page)}")
    if skip_guide and path_of(page) == "/portal/guide":
        async with page.expect_navigation():
            # The guide's skip link, in whichever language the person reads it.
            await page.locator("a[data-guide-skip]").click()
    return response


async def sign_out(page: Page, *, by_keyboard: bool = False) -> None:
    """The sign-out page's button (a CSRF-protected form post); works from wherever the person is."""
    await page.goto("/auth/logout")
    await expect_path(page, "/auth/logout", "sign-out page")
    await submit(page, {}, "Sign out now", by_keyboard=by_keyboard)
    await expect_path(page, "/auth/login", "sign-out")
