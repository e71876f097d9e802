"""smart_auth's pages in a real browser: enrolment, second step, sign-in, lockout, password reset,
caregiver access and app consent. Every page is held to the bars of `check_page` (axe 0 serious/critical,
keyboard-only, layout at 375 and 1280 px, screenshots); the forms are filled with the keyboard only where
the test says so, and the JavaScript-off test walks the same pages with scripts disabled."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from .harness import (
    Account,
    PatientPool,
    PortalApp,
    check_page,
    enrol,
    enrol_patient,
    follow_link,
    new_password,
    path_of,
    press_by_keyboard,
    sign_in,
    sign_out,
    submit,
)

pytestmark = pytest.mark.e2e

Enrolled = Callable[..., Awaitable[Account]]
ContextFactory = Callable[..., Awaitable[BrowserContext]]
SignedIn = Callable[..., Awaitable[Page]]
BAD_LOGIN = "The username or password is not correct."
LOCKED = "Too many wrong tries"


async def checked(page: Page, name: str) -> None:
    await check_page(page, name)


def checking(*names: str) -> Callable[[Page, str], Awaitable[None]]:
    """An `on_page` hook that checks only the named pages (those a flow shows for the first time)."""
    async def hook(page: Page, name: str) -> None:
        if name in names:
            await check_page(page, name)

    return hook


async def signed_in_page(new_context: ContextFactory, account: Account, app: PortalApp) -> Page:
    """A new browser signed in to the account, on its caregiver page."""
    page = await (await new_context()).new_page()
    await sign_in(page, account, app=app, next_path="/auth/proxies")
    assert path_of(page) == "/auth/proxies"
    return page


async def test_enrol_with_authenticator_and_sign_in_by_keyboard_only(page: Page, context: BrowserContext,
                                                                    app: PortalApp, patients: PatientPool) -> None:
    account = await enrol_patient(page, app, patients.take(), by_keyboard=True, on_page=checked)
    assert len(account.recovery_codes) == 10
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account is ready")

    landed = await sign_in(page, account, by_keyboard=True, on_page=checked)

    # The code step answered with a redirect to the portal's home, and the browser got there.
    assert landed is not None and landed.ok and path_of(page) == "/portal/"
    first = landed.request
    while first.redirected_from is not None:
        first = first.redirected_from
    assert first.method == "POST" and urlsplit(first.url).path == "/auth/login/mfa"
    code_answer = await first.response()
    assert code_answer is not None and code_answer.status == 303
    assert code_answer.headers["location"] == "/portal/"
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies["portal_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/"
    assert "portal_presession" not in cookies, "the half-signed-in state must end with the sign-in"
    assert all(c["httpOnly"] and c["sameSite"] in ("Lax", "Strict") for c in cookies.values()), \
        "page scripts must not be able to read any cookie of ours"
    # The session is real: signed-in pages open, and the sign-in page sends the person on.
    await page.goto("/auth/proxies")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Caregiver access")
    await page.goto("/auth/login")
    assert path_of(page) == "/portal/"


async def test_enrol_with_codes_by_email_using_ssn(page: Page, app: PortalApp, patients: PatientPool) -> None:
    email = f"patient-{secrets.token_hex(3)}@example.org"
    account = await enrol_patient(page, app, patients.take(with_ssn=True), use="ssn", codes_by_email=email,
                                  on_page=checking("enrol-email-email-code"), name="enrol-email")
    landed = await sign_in(page, account, app=app, on_page=checking("sign-in-email-code"), name="sign-in-email")
    assert landed is not None and path_of(page) == "/portal/"


async def test_enrolment_refusals_say_what_to_do(page: Page, app: PortalApp, patients: PatientPool) -> None:
    # A link's code that no invitation has (links carry long codes).
    await page.goto(f"/auth/enroll?code={secrets.token_urlsafe(32)}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Enrolment link not valid")
    await expect(page.get_by_role("alert")).to_contain_text("ask the clinic")
    await checked(page, "enrol-link-not-valid")
    # A letter's code typed wrong: the same page again, to type it once more.
    await page.goto("/auth/enroll?code=not-a-real-code")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Enter your invitation code")
    await expect(page.get_by_role("alert")).to_contain_text("ask the clinic")
    await checked(page, "enrol-letter-code-wrong")

    patient = patients.take()
    invitation = await app.invite(patient.patient_id)
    await page.goto(invitation.url)
    await submit(page, {"Date of birth": "1901-01-01", "Medical record number (MRN)": patient.mrn}, "Continue")
    await expect(page.get_by_role("alert")).to_contain_text("do not match our records")
    await checked(page, "enrol-identity-mismatch")

    await submit(page, {"Date of birth": patient.birth_date, "Medical record number (MRN)": patient.mrn}, "Continue")
    await submit(page, {"Username": "x", "Password": "password", "Type the password again": "other"}, "Continue")
    assert path_of(page) == "/auth/enroll/account"
    await expect(page.locator("#username-error")).to_be_visible()
    await expect(page.locator("#password-error")).to_be_visible()
    await expect(page.get_by_label("Username", exact=True)).to_have_attribute("aria-invalid", "true")
    await checked(page, "enrol-account-errors")


async def test_wrong_password_then_lockout(page: Page, enrolled: Enrolled) -> None:
    account = await enrolled()
    await page.goto("/auth/login")
    for _ in range(4):
        await submit(page, {"Username": account.username, "Password": "Not-The-Password-42"}, "Continue")
        await expect(page.get_by_role("alert")).to_have_text(BAD_LOGIN)
        await expect(page.get_by_label("Username", exact=True)).to_have_value(account.username)
        await expect(page.get_by_label("Password", exact=True)).to_have_value("")
    await checked(page, "sign-in-wrong-password")

    await submit(page, {"Username": account.username, "Password": "Not-The-Password-42"}, "Continue")
    await expect(page.get_by_role("alert")).to_contain_text(LOCKED)
    await checked(page, "sign-in-locked")
    # Locked means locked: the right password does not get in either, and says the same.
    await submit(page, {"Username": account.username, "Password": account.password}, "Continue")
    await expect(page.get_by_role("alert")).to_contain_text(LOCKED)
    assert path_of(page) == "/auth/login"


async def test_wrong_code_is_refused_and_the_right_one_works(page: Page, shared_patient: Account) -> None:
    account = shared_patient
    await page.goto("/auth/login")
    await submit(page, {"Username": account.username, "Password": account.password}, "Continue")
    await submit(page, {"Code": "000000"}, "Sign in")
    await expect(page.locator("#code-error")).to_contain_text("not correct")
    await checked(page, "sign-in-code-wrong")
    assert account.authenticator is not None
    await submit(page, {"Code": await account.authenticator.code()}, "Sign in")
    if path_of(page) == "/portal/guide":  # the shared account's first portal sign-in when this test runs first
        await follow_link(page, "Skip the guide")
    assert path_of(page) == "/portal/"


async def test_password_reset_with_authenticator(page: Page, enrolled: Enrolled) -> None:
    account = await enrolled()
    assert account.authenticator is not None
    await page.goto("/auth/login")
    await follow_link(page, "Forgot your password?", by_keyboard=True)
    assert path_of(page) == "/auth/reset"
    await checked(page, "reset-start")
    await submit(page, {"Username": account.username}, "Continue", by_keyboard=True)
    assert path_of(page) == "/auth/reset/verify"
    await checked(page, "reset-verify")
    await submit(page, {"Code": await account.authenticator.code()}, "Continue", by_keyboard=True)
    assert path_of(page) == "/auth/reset/password"
    await checked(page, "reset-password")
    await submit(page, {"New password": "password123", "Type it again": "password123"}, "Change password")
    await expect(page.locator("#password-error")).to_be_visible()
    await checked(page, "reset-password-errors")

    new = new_password()
    await submit(page, {"New password": new, "Type it again": new}, "Change password", by_keyboard=True)
    assert path_of(page) == "/auth/login"
    await expect(page.get_by_role("status")).to_contain_text("Your password has been changed")
    await checked(page, "sign-in-after-reset")

    await submit(page, {"Username": account.username, "Password": account.password}, "Continue")
    await expect(page.get_by_role("alert")).to_have_text(BAD_LOGIN)
    account.password = new
    await sign_in(page, account)
    assert path_of(page) == "/portal/"


async def invite_caregiver(page: Page, name: str, email: str, relationship: str = "Parent") -> None:
    await page.goto("/auth/proxies")
    await submit(page, {"Their name": name, "Their e-mail address": email,
                        "How are they related to you?": relationship}, "Send invitation", by_keyboard=True)
    await expect(page.get_by_role("status")).to_have_text("Invitation sent.")


class _AppCallback(BaseHTTPRequestHandler):
    """A third-party SMART app's redirect endpoint: it only has to answer the browser."""

    def do_GET(self) -> None:
        body = b"<!doctype html><html lang=en><title>Back in the app</title><p>Back in the app."
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def app_callback() -> Iterator[str]:
    """The redirect URI of the apps the tests register: a small local web server standing in for the app."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AppCallback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/callback"
    finally:
        server.shutdown()
        server.server_close()


async def register_app(app: PortalApp, name: str, redirect_uri: str) -> str:
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
        response = await http.post("/auth/register", json={
            "client_name": name, "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"], "response_types": ["code"],
        })
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


async def start_app_authorization(page: Page, app: PortalApp, client_id: str, redirect_uri: str, scope: str
                                  ) -> dict[str, str]:
    """Open /auth/authorize as a SMART app sends a person there; returns the request's parameters."""
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
             "state": "st-" + secrets.token_hex(4), "aud": app.url + "/fhir",
             "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    await page.goto("/auth/authorize?" + urlencode(query))
    return query


def callback_query(page: Page, redirect_uri: str) -> dict[str, list[str]]:
    """What the app received at its redirect URI."""
    assert page.url.startswith(redirect_uri + "?"), f"the app was not called back: {page.url}"
    return parse_qs(urlsplit(page.url).query)


async def test_app_consent_page(portal_signed_in: SignedIn, app: PortalApp, app_callback: str) -> None:
    page = await portal_signed_in()  # the shared patient, signed in once per session
    client_id = await register_app(app, "Pillbox Reminder", app_callback)
    sent = await start_app_authorization(page, app, client_id, app_callback,
                                         "openid fhirUser patient/Observation.rs patient/MedicationRequest.rs")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Pillbox Reminder")
    await checked(page, "app-consent")
    boxes = page.get_by_role("checkbox")
    assert await boxes.count() >= 2
    # Untick the last item and allow, with the keyboard only.
    last = boxes.last
    shared = await last.get_attribute("value")
    await last.focus()
    await page.keyboard.press("Space")
    await expect(last).not_to_be_checked()
    await press_by_keyboard(page, page.get_by_role("button", name="Allow", exact=True))
    answer = callback_query(page, app_callback)
    assert answer["state"] == [sent["state"]] and answer.get("code")
    assert shared not in answer.get("scope", [""])[0]


async def test_caregiver_journey(new_context: ContextFactory, portal_signed_in: SignedIn, app: PortalApp,
                                 enrolled: Enrolled, shared_patient: Account, app_callback: str) -> None:
    """A patient invites a caregiver, who enrols from the e-mailed link; a second patient invites the same
    person, who accepts while signed in and then picks whose record an app may open; the first patient
    withdraws the access."""
    patient = await enrolled()
    patient_page = await signed_in_page(new_context, patient, app)
    await patient_page.goto("/auth/proxies")
    await expect(patient_page.get_by_text("Nobody else can see your record.")).to_be_visible()
    await checked(patient_page, "caregivers-none")
    await submit(patient_page, {}, "Send invitation")
    await expect(patient_page.locator("#name-error")).to_be_visible()
    await checked(patient_page, "caregivers-invite-errors")

    email = f"carer-{secrets.token_hex(3)}@example.org"
    await invite_caregiver(patient_page, "Robin Carer", email)
    row = patient_page.get_by_role("row", name="Robin Carer")
    await expect(row).to_contain_text("Invited, not joined yet")
    await checked(patient_page, "caregivers-invited")

    carer_page = await (await new_context()).new_page()
    carer = await enrol(carer_page, app, app.last_link(email), {"Your e-mail address": email}, by_keyboard=True,
                        on_page=checking("caregiver-enrol-identity"), name="caregiver-enrol")
    # The caregiver's first sign-in shows their own guide: whose record is open and how their access works.
    await sign_in(carer_page, carer, skip_guide=False)
    assert path_of(carer_page) == "/portal/guide"
    await expect(carer_page.get_by_role("heading", name="Whose record is open")).to_be_visible()
    await expect(carer_page.get_by_text("You use your own account, never theirs")).to_be_visible()
    await checked(carer_page, "portal-guide-caregiver")
    await press_by_keyboard(carer_page, carer_page.get_by_role("link", name="Skip the guide"))
    assert path_of(carer_page) == "/portal/"
    await patient_page.reload()
    await expect(row).to_contain_text("Can see your record")

    # A second person shares their record with the same caregiver, who is signed in already.
    second_page = await portal_signed_in()
    await invite_caregiver(second_page, "Robin Carer", email, "Child")
    await carer_page.goto(app.last_link(email))
    await submit(carer_page, {"Your e-mail address": email}, "Continue")
    assert path_of(carer_page) == "/auth/enroll/accept"
    await checked(carer_page, "caregiver-accept")
    await submit(carer_page, {}, "Accept access", by_keyboard=True)
    await expect(carer_page.get_by_role("heading", level=1)).to_have_text("Access added")
    await checked(carer_page, "caregiver-access-added")

    client_id = await register_app(app, "Family Health Notes", app_callback)
    await start_app_authorization(carer_page, app, client_id, app_callback,
                                  "openid fhirUser launch/patient patient/*.rs")
    await expect(carer_page.get_by_role("heading", level=1)).to_contain_text("Whose record")
    await checked(carer_page, "app-choose-patient")
    assert shared_patient.patient is not None
    # The whole name: the other patient this carer helps may share the family name.
    name = shared_patient.patient.name
    await submit(carer_page, {re.compile(rf"\b{re.escape(name)} \(as their caregiver\)"): "on"}, "Continue",
                 by_keyboard=True)
    await expect(carer_page.get_by_text("You are acting for someone you care for.")).to_be_visible()
    await checked(carer_page, "app-consent-caregiver")
    await submit(carer_page, {}, "Don't allow")
    assert callback_query(carer_page, app_callback)["error"] == ["access_denied"]

    # In the portal the caregiver sees both records and, with the keyboard, opens the second person's;
    # the banner says whose record it is.
    await carer_page.goto("/portal/caregivers")
    await expect(carer_page.get_by_role("heading", name="Records you can open")).to_be_visible()
    await checked(carer_page, "portal-caregivers-switch")
    await press_by_keyboard(carer_page, carer_page.get_by_role("button", name="Open a different record"))
    await expect(carer_page.get_by_role("heading", level=1)).to_contain_text("Whose record")
    await submit(carer_page, {re.compile(rf"\b{re.escape(name)} \(as their caregiver\)"): "on"}, "Continue",
                 by_keyboard=True)
    assert path_of(carer_page) == "/portal/", carer_page.url
    banner = carer_page.get_by_role("region", name="Whose record is open")
    await expect(banner).to_contain_text(shared_patient.patient.name)
    await expect(banner).to_contain_text("as their caregiver")
    await checked(carer_page, "portal-home-caregiver")

    # The patient sees the caregiver on the portal's page and stops their access there (their first portal
    # page: the first-use guide comes first, and skipping it leads on to the page asked for).
    await patient_page.goto("/portal/caregivers")
    assert path_of(patient_page) == "/portal/guide"
    await follow_link(patient_page, "Skip the guide")
    assert path_of(patient_page) == "/portal/caregivers"
    await expect(patient_page.get_by_role("row", name="Robin Carer")).to_contain_text("Can see your record")
    await checked(patient_page, "portal-caregivers-patient")
    async with patient_page.expect_navigation():
        await patient_page.get_by_role("button", name="Stop access for Robin Carer").click()
    await expect(patient_page.get_by_role("status")).to_contain_text("Access withdrawn")
    await expect(patient_page.get_by_role("row", name="Robin Carer")).to_have_count(0)
    await checked(patient_page, "caregivers-withdrawn")


async def test_pages_work_with_javascript_off(nojs_page: Page, app: PortalApp, patients: PatientPool,
                                             app_callback: str) -> None:
    """The same pages with scripts disabled: every form still works (the pages look the same, so the
    screenshots of the JavaScript-enabled runs stand for these)."""
    page = nojs_page
    account = await enrol_patient(page, app, patients.take())
    await sign_in(page, account)
    assert path_of(page) == "/portal/"
    email = f"carer-{secrets.token_hex(3)}@example.org"
    await invite_caregiver(page, "Alex Nojs", email)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Withdraw access for Alex Nojs").click()
    await expect(page.get_by_role("status")).to_contain_text("Access withdrawn")
    client_id = await register_app(app, "Step Counter", app_callback)
    sent = await start_app_authorization(page, app, client_id, app_callback, "openid fhirUser patient/Observation.rs")
    await submit(page, {}, "Allow")
    assert callback_query(page, app_callback)["state"] == [sent["state"]]
    await sign_out(page)
    await expect(page.get_by_role("status")).to_have_text("You have signed out.")

    assert account.authenticator is not None
    await page.goto("/auth/reset")
    await submit(page, {"Username": account.username}, "Continue")
    await submit(page, {"Code": await account.authenticator.code()}, "Continue")
    new = new_password()
    await submit(page, {"New password": new, "Type it again": new}, "Change password")
    await expect(page.get_by_role("status")).to_contain_text("Your password has been changed")
