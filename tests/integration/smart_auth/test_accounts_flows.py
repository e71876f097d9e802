"""Accounts over real HTTP: a uvicorn server on a free loopback port running the accounts router, the
private test Redis and the real HAPI EHR (patients pt-0001…, their MRN/SSN read from the EHR).

Covers: invitation → identity check → password rules → TOTP → sign-in with both factors; identity
refusals and invitation lock; lockout without revealing existence; MFA required; idle expiry; logout;
password reset via a second factor; caregiver invite → enrol → patients_for → withdrawal.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from devstack.procs import free_port
from fhir_gateway.upstream import Upstream, make_client
from smart_auth.accounts import Accounts, AccountSettings, build_accounts
from smart_auth.accounts.identity import MRN_SYSTEM, SSN_SYSTEM
from smart_auth.deps import AuthDeps
from smart_auth.keys import KeyStore
from tests.conftest import FHIR_BASE
from tests.recording_audit import RecordingAudit

pytestmark = pytest.mark.integration

ACCOUNTS_REDIS_DB = 5
ADMIN_KEY = "test-admin-key-" + secrets.token_hex(8)
STRONG = "Tr4vel-Lantern-Oak"
GENERIC_MISMATCH = "The details you entered do not match our records."
BAD_LOGIN = "The username or password is not correct."
LOCKED = "Too many wrong tries"


@dataclass
class RecordingGrants:
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    kept: list[str | None] = field(default_factory=list)  # the sign-in session each call spared

    async def revoke_for(self, account_id: str, patient_id: str | None = None, *,
                         keep_session: str | None = None) -> int:
        self.calls.append((account_id, patient_id))
        self.kept.append(keep_session)
        return 1


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


@dataclass
class Enrolled:
    username: str
    password: str
    totp: pyotp.TOTP | None
    recovery: list[str]
    account_id: str


@dataclass
class Env:
    url: str
    accounts: Accounts
    settings: AccountSettings
    audit: RecordingAudit
    grants: RecordingGrants
    ehr: Upstream
    state: Path
    keys: KeyStore

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=20)

    def outbox(self, to: str) -> list[dict[str, Any]]:
        path = self.state / "outbox.jsonl"
        if not path.exists():
            return []
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        return [m for m in lines if m["to"] == to]

    def last_code(self, to: str) -> str:
        match = re.search(r"code is (\d{6})", self.outbox(to)[-1]["body"])
        assert match
        return match.group(1)

    async def identity(self, patient_id: str) -> dict[str, str]:
        patient = await self.ehr.read("Patient", patient_id)
        assert patient, f"Patient/{patient_id} missing from the EHR fixtures"
        ids = {i.get("system"): i.get("value", "") for i in patient.get("identifier", [])}
        return {"birth_date": patient["birthDate"], "mrn": ids.get(MRN_SYSTEM, ""),
                "ssn_last4": re.sub(r"\D", "", ids.get(SSN_SYSTEM, ""))[-4:]}

    async def invite(self, patient_id: str, email: str | None = None) -> str:
        async with self.browser() as http:
            response = await http.post("/auth/admin/invitations", json={"patient": patient_id, "email": email},
                                       headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert response.status_code == 201, response.text
        return response.json()["code"]

    async def enrol_patient(self, patient_id: str, *, method: str = "totp", email: str | None = None) -> Enrolled:
        code = await self.invite(patient_id)
        username = f"pat-{secrets.token_hex(4)}"
        async with self.browser() as b:
            page = await b.get("/auth/enroll", params={"code": code})
            assert page.status_code == 200, page.text
            ident = await self.identity(patient_id)
            r = await b.post("/auth/enroll/verify", data={"csrf_token": csrf(page.text), "birth_date":
                                                          ident["birth_date"], "mrn": ident["mrn"]})
            assert r.headers.get("location") == "/auth/enroll/account", r.text
            return await self.finish_enrolment(b, username, method=method, email=email)

    async def finish_enrolment(self, b: httpx.AsyncClient, username: str, *, method: str = "totp",
                               email: str | None = None) -> Enrolled:
        page = await b.get("/auth/enroll/account")
        r = await b.post("/auth/enroll/account", data={"csrf_token": csrf(page.text), "username": username,
                                                       "password": STRONG, "password_confirm": STRONG})
        assert r.headers.get("location") == "/auth/enroll/mfa", r.text
        totp = None
        if method == "totp":
            page = await b.get("/auth/enroll/totp")
            secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
            assert 'src="data:image/svg+xml;base64,' in page.text and "otpauth://totp/" in page.text
            totp = pyotp.TOTP(secret)
            done = await b.post("/auth/enroll/totp", data={"csrf_token": csrf(page.text), "code": totp.now()})
        else:
            page = await b.get("/auth/enroll/mfa")
            sent = await b.post("/auth/enroll/otp/send", data={"csrf_token": csrf(page.text), "channel": "email",
                                                               "address": email})
            assert sent.status_code == 200, sent.text
            done = await b.post("/auth/enroll/otp/confirm",
                                data={"csrf_token": csrf(sent.text), "code": self.last_code(email or "")})
        assert done.status_code == 200, done.text
        codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", done.text)
        assert len(codes) == 10
        account = await self.accounts.store.by_username(username)
        assert account is not None
        return Enrolled(username, STRONG, totp, codes, account.id)

    async def sign_in(self, b: httpx.AsyncClient, who: Enrolled, *, next_url: str = "/portal/",
                      code: str | None = None) -> httpx.Response:
        page = await b.get("/auth/login", params={"next": next_url})
        r = await b.post("/auth/login", data={"csrf_token": csrf(page.text), "username": who.username,
                                              "password": who.password, "next": next_url})
        assert r.status_code == 303 and r.headers["location"] == "/auth/login/mfa", r.text
        page = await b.get("/auth/login/mfa")
        if code is None:
            code = who.totp.now() if who.totp else self.last_code(self.email_of(who))
        return await b.post("/auth/login/mfa", data={"csrf_token": csrf(page.text), "code": code})

    @staticmethod
    def email_of(who: Enrolled) -> str:
        return f"{who.username}@example.org"


@pytest.fixture(scope="module")
async def env(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    try:
        ok = httpx.get(FHIR_BASE.rstrip("/") + "/Patient/pt-0001", timeout=5).status_code == 200
    except httpx.HTTPError:
        ok = False
    if not ok:
        pytest.skip(f"the HAPI EHR at {FHIR_BASE} is not up with the default patients (pt-0001)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    redis = aioredis.from_url(f"redis://127.0.0.1:{redis_server.port}/{ACCOUNTS_REDIS_DB}")
    await redis.flushdb()
    state: Path = tmp_path_factory.mktemp("accounts-state")
    keys = KeyStore.load_or_create(state / "signing-key.pem")
    http = make_client(FHIR_BASE, connect_timeout=5, read_timeout=30, max_connections=10)
    ehr = Upstream(http, FHIR_BASE)
    audit = RecordingAudit()
    grants = RecordingGrants()
    deps = AuthDeps(redis=redis, keys=keys, ehr=ehr, audit=audit, public_url=url, state_dir=state)
    settings = AccountSettings(public_url=url, state_dir=state, admin_api_key=ADMIN_KEY)
    accounts = build_accounts(deps, settings)
    app = FastAPI()
    app.include_router(accounts.router(grants))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield Env(url, accounts, settings, audit, grants, ehr, state, keys)
    finally:
        server.should_exit = True
        await task
        await http.aclose()
        await redis.flushdb()
        await redis.aclose()


# ---------------------------------------------------------------------------------------------------
async def test_invitation_enrolment_totp_and_sign_in_with_both_factors(env: Env) -> None:
    code = await env.invite("pt-0001")
    ident = await env.identity("pt-0001")
    username = f"Jane-{secrets.token_hex(3)}"
    async with env.browser() as b:
        page = await b.get("/auth/enroll", params={"code": code})
        assert page.status_code == 200 and "Date of birth" in page.text
        r = await b.post("/auth/enroll/verify", data={"csrf_token": csrf(page.text), **ident})
        assert r.status_code == 303 and r.headers["location"] == "/auth/enroll/account"
        page = await b.get("/auth/enroll/account")
        # weak password: refused with the reason next to the field
        weak = await b.post("/auth/enroll/account", data={"csrf_token": csrf(page.text), "username": username,
                                                          "password": "Password123!",
                                                          "password_confirm": "Password123!"})
        assert weak.status_code == 400
        assert 'id="password-error"' in weak.text and "too common" in weak.text
        with_name = await b.post("/auth/enroll/account", data={"csrf_token": csrf(page.text), "username": username,
                                                               "password": f"x9!{username}Q",
                                                               "password_confirm": f"x9!{username}Q"})
        assert "Do not include your username" in with_name.text
        who = await env.finish_enrolment(b, username)

    # the invitation is single use
    async with env.browser() as b:
        again = await b.get("/auth/enroll", params={"code": code})
        assert again.status_code == 400 and "cannot be used" in again.text

    # usernames are unique regardless of case
    assert not await env.accounts.store.username_available(username.upper())

    account = await env.accounts.store.get(who.account_id)
    assert account.kind == "patient" and account.fhir_user == "Patient/pt-0001" and account.patient_id == "pt-0001"
    links = await env.accounts.store.patients_for(who.account_id)
    assert [lk.patient_id for lk in links] == ["pt-0001"] and links[0].related_person_id is None
    assert env.audit.has("enrolment", "success", fhir_user="Patient/pt-0001")
    assert env.audit.has("mfa.setup", "success", fhir_user="Patient/pt-0001")

    async with env.browser() as b:
        # password alone gives no session
        page = await b.get("/auth/login", params={"next": "//evil.example/steal"})
        r = await b.post("/auth/login", data={"csrf_token": csrf(page.text), "username": username.lower(),
                                              "password": STRONG, "next": "//evil.example/steal"})
        assert r.status_code == 303 and r.headers["location"] == "/auth/login/mfa"
        assert "portal_session" not in b.cookies
        assert (await b.get("/auth/proxies")).headers["location"].startswith("/auth/login")
        # wrong second factor: refused, still no session
        page = await b.get("/auth/login/mfa")
        bad = await b.post("/auth/login/mfa", data={"csrf_token": csrf(page.text), "code": "000000"})
        assert bad.status_code == 401 and "portal_session" not in b.cookies
        # right code: session cookie, redirect only to a local path (no open redirect)
        ok = await b.post("/auth/login/mfa", data={"csrf_token": csrf(page.text), "code": who.totp.now()})
        assert ok.status_code == 303 and ok.headers["location"] == "/portal/"
        cookie = ok.headers["set-cookie"].lower()
        assert "portal_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert "secure" not in cookie  # http public URL
        home = await b.get("/auth/proxies")
        assert home.status_code == 200 and "Caregiver access" in home.text
    assert env.audit.has("login", "success", account_id=who.account_id)

    # a recovery code works once instead of TOTP
    async with env.browser() as b:
        ok = await env.sign_in(b, who, next_url="/portal/records?x=1", code=who.recovery[0].upper())
        assert ok.status_code == 303 and ok.headers["location"] == "/portal/records?x=1"
    async with env.browser() as b:
        reused = await env.sign_in(b, who, code=who.recovery[0])
        assert reused.status_code == 401 and "portal_session" not in b.cookies


async def test_wrong_identity_is_refused_generically_and_locks_the_invitation(env: Env) -> None:
    ident = await env.identity("pt-0002")
    code = await env.invite("pt-0002")
    wrong_dob = {**ident, "birth_date": "1901-01-01"}
    wrong_mrn = {"birth_date": ident["birth_date"], "mrn": "NOT-" + ident["mrn"]}
    wrong_ssn = {"birth_date": ident["birth_date"], "ssn_last4": "0000" if ident["ssn_last4"] != "0000" else "1111"}
    async with env.browser() as b:
        page = await b.get("/auth/enroll", params={"code": code})
        token = csrf(page.text)
        texts = []
        for data in (wrong_dob, wrong_mrn, wrong_ssn, {"birth_date": ident["birth_date"]}):
            r = await b.post("/auth/enroll/verify", data={"csrf_token": token, **data})
            assert r.status_code == 400
            assert GENERIC_MISMATCH in r.text
            texts.append(re.search(r'role="alert" id="identity-error">([^<]+)<', r.text).group(1))
        assert len(set(texts)) == 1  # one message whatever was wrong
        fifth = await b.post("/auth/enroll/verify", data={"csrf_token": token, **wrong_dob})
        assert fifth.status_code == 403 and "locked" in fifth.text
        # now even the right answers are refused
        right = await b.post("/auth/enroll/verify", data={"csrf_token": token, **ident})
        assert right.status_code == 400 and "cannot be used" in right.text
    async with env.browser() as b:
        assert (await b.get("/auth/enroll", params={"code": code})).status_code == 400
    assert env.audit.has("enrolment.locked", "failure", patient_id="pt-0002")

    # a fresh invitation accepts date of birth + the SSN's last four digits
    code = await env.invite("pt-0002")
    async with env.browser() as b:
        page = await b.get("/auth/enroll", params={"code": code})
        r = await b.post("/auth/enroll/verify", data={"csrf_token": csrf(page.text), "birth_date":
                                                      ident["birth_date"], "ssn_last4": ident["ssn_last4"]})
        assert r.status_code == 303 and r.headers["location"] == "/auth/enroll/account"
        # a form without the CSRF token is refused
        page = await b.get("/auth/enroll/account")
        no_csrf = await b.post("/auth/enroll/account", data={"username": "x-" + secrets.token_hex(3),
                                                             "password": STRONG, "password_confirm": STRONG})
        assert no_csrf.status_code == 400 and "expired" in no_csrf.text


def _normalise(html: str) -> str:
    return re.sub(r'(name="csrf_token" value=")[^"]+|(name="username" type="text" value=")[^"]*', r"\1\2", html)


async def test_lockout_after_five_failures_does_not_reveal_whether_the_user_exists(env: Env) -> None:
    who = await env.enrol_patient("pt-0003")
    unknown = f"nobody-{secrets.token_hex(4)}"
    results: dict[str, list[tuple[int, str, float]]] = {}
    for name in (who.username, unknown):
        async with env.browser() as b:
            page = await b.get("/auth/login")
            token = csrf(page.text)
            out = []
            for _ in range(6):
                t0 = time.perf_counter()
                r = await b.post("/auth/login", data={"csrf_token": token, "username": name,
                                                      "password": "Wrong-Password-42", "next": "/portal/"})
                out.append((r.status_code, _normalise(r.text), time.perf_counter() - t0))
            results[name] = out
    known, missing = results[who.username], results[unknown]
    assert [s for s, _, _ in known] == [401, 401, 401, 401, 429, 429]
    assert [s for s, _, _ in known] == [s for s, _, _ in missing]
    assert BAD_LOGIN in known[0][1] and LOCKED in known[4][1]
    assert [t for _, t, _ in known] == [t for _, t, _ in missing]  # byte-identical pages
    # similar timing: an unknown user costs a password hash too (generous bound for a shared machine)
    ratio = statistics.median(d for _, _, d in missing[:4]) / statistics.median(d for _, _, d in known[:4])
    assert 0.33 < ratio < 3.0, ratio
    assert env.audit.has("lockout", "failure", account_id=who.account_id)

    # the right password does not help while locked
    async with env.browser() as b:
        page = await b.get("/auth/login")
        r = await b.post("/auth/login", data={"csrf_token": csrf(page.text), "username": who.username,
                                              "password": who.password, "next": "/portal/"})
        assert r.status_code == 429 and "portal_session" not in b.cookies


async def test_audit_failure_stops_sign_in_with_a_clear_page(env: Env) -> None:
    async with env.browser() as b:
        page = await b.get("/auth/login")
        env.audit.failing = True
        try:
            r = await b.post("/auth/login", data={"csrf_token": csrf(page.text), "username": "someone",
                                                  "password": "Wrong-Password-42", "next": "/portal/"})
        finally:
            env.audit.failing = False
        assert r.status_code == 503 and "Security logging is unavailable" in r.text
        assert "Traceback" not in r.text


async def test_session_idle_timeout_slides_then_expires_and_logout_ends_it(env: Env) -> None:
    who = await env.enrol_patient("pt-0004")
    old_idle = env.settings.session_idle_seconds
    async with env.browser() as b:
        assert (await env.sign_in(b, who)).status_code == 303
        env.settings.session_idle_seconds = 2
        try:
            for _ in range(3):  # activity every second keeps it alive beyond the idle limit
                await asyncio.sleep(1.0)
                assert (await b.get("/auth/proxies")).status_code == 200
            await asyncio.sleep(2.5)
            expired = await b.get("/auth/proxies")
            assert expired.status_code == 303 and expired.headers["location"].startswith("/auth/login")
        finally:
            env.settings.session_idle_seconds = old_idle

    async with env.browser() as b:
        assert (await env.sign_in(b, who, code=who.recovery[1])).status_code == 303
        page = await b.get("/auth/proxies")
        forged = await b.post("/auth/logout", data={"csrf_token": "forged"})
        assert forged.status_code == 400
        assert (await b.get("/auth/proxies")).status_code == 200  # still signed in
        out = await b.post("/auth/logout", data={"csrf_token": csrf(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/auth/login?notice=signed-out"
        after = await b.get("/auth/proxies")
        assert after.status_code == 303
    assert env.audit.has("logout", "success", account_id=who.account_id)


async def test_password_reset_via_emailed_code_revokes_sessions_and_grants(env: Env) -> None:
    email = f"reset-{secrets.token_hex(3)}@example.org"
    who = await env.enrol_patient("pt-0005", method="email", email=email)
    who_mail = Enrolled(who.username, who.password, None, who.recovery, who.account_id)
    signed_in = env.browser()
    async with signed_in:
        page = await signed_in.get("/auth/login")
        r = await signed_in.post("/auth/login", data={"csrf_token": csrf(page.text), "username": who.username,
                                                      "password": who.password, "next": "/portal/"})
        assert r.headers["location"] == "/auth/login/mfa"
        page = await signed_in.get("/auth/login/mfa")
        ok = await signed_in.post("/auth/login/mfa", data={"csrf_token": csrf(page.text),
                                                           "code": env.last_code(email)})
        assert ok.status_code == 303
        assert (await signed_in.get("/auth/proxies")).status_code == 200

        new_password = "Quiet-Harbor-Lamp-77"
        async with env.browser() as b:
            page = await b.get("/auth/reset")
            r = await b.post("/auth/reset", data={"csrf_token": csrf(page.text), "username": who.username})
            assert r.headers["location"] == "/auth/reset/verify"
            page = await b.get("/auth/reset/verify")
            bad = await b.post("/auth/reset/verify", data={"csrf_token": csrf(page.text), "code": "123456"})
            assert bad.status_code == 401
            r = await b.post("/auth/reset/verify", data={"csrf_token": csrf(page.text),
                                                         "code": env.last_code(email)})
            assert r.headers["location"] == "/auth/reset/password"
            page = await b.get("/auth/reset/password")
            weak = await b.post("/auth/reset/password", data={"csrf_token": csrf(page.text),
                                                              "password": "Summer2024!!",
                                                              "password_confirm": "Summer2024!!"})
            assert weak.status_code == 400 and "too common" in weak.text
            done = await b.post("/auth/reset/password", data={"csrf_token": csrf(page.text),
                                                              "password": new_password,
                                                              "password_confirm": new_password})
            assert done.status_code == 303 and "password-changed" in done.headers["location"]
        # the earlier session is gone and the grants were revoked
        assert (await signed_in.get("/auth/proxies")).status_code == 303
    assert (who.account_id, None) in env.grants.calls
    assert env.audit.has("password_reset", "success", account_id=who.account_id)

    async with env.browser() as b:
        page = await b.get("/auth/login")
        old = await b.post("/auth/login", data={"csrf_token": csrf(page.text), "username": who.username,
                                                "password": who.password, "next": "/portal/"})
        assert old.status_code == 401
    who_mail.password = new_password
    async with env.browser() as b:
        page = await b.get("/auth/login")
        await b.post("/auth/login", data={"csrf_token": csrf(page.text), "username": who.username,
                                          "password": new_password, "next": "/portal/"})
        page = await b.get("/auth/login/mfa")
        ok = await b.post("/auth/login/mfa", data={"csrf_token": csrf(page.text), "code": env.last_code(email)})
        assert ok.status_code == 303 and "portal_session" in b.cookies


async def test_unknown_user_reset_goes_nowhere(env: Env) -> None:
    async with env.browser() as b:
        page = await b.get("/auth/reset")
        r = await b.post("/auth/reset", data={"csrf_token": csrf(page.text), "username": "ghost-" +
                                              secrets.token_hex(3)})
        assert r.headers["location"] == "/auth/reset/verify"
        page = await b.get("/auth/reset/verify")
        r = await b.post("/auth/reset/verify", data={"csrf_token": csrf(page.text), "code": "123456"})
        assert r.status_code == 401


async def test_caregiver_proxy_grant_enrol_and_withdrawal(env: Env) -> None:
    patient = await env.enrol_patient("pt-0006")
    carer_email = f"carer-{secrets.token_hex(3)}@example.org"
    async with env.browser() as p:
        assert (await env.sign_in(p, patient)).status_code == 303
        page = await p.get("/auth/proxies")
        bad = await p.post("/auth/proxies", data={"csrf_token": csrf(page.text), "name": "Sam Carer",
                                                  "email": "not-an-email", "relationship": "CHILD"})
        assert bad.status_code == 400 and 'id="email-error"' in bad.text
        r = await p.post("/auth/proxies", data={"csrf_token": csrf(page.text), "name": "Sam Carer",
                                                "email": carer_email, "relationship": "CHILD"})
        assert r.status_code == 303 and r.headers["location"] == "/auth/proxies?notice=invited"
        listing = (await p.get("/auth/api/proxies")).json()
        [link] = listing["proxies"]
        assert link["status"] == "invited" and link["patient"] == "Patient/pt-0006"
    rp_id = link["relatedPerson"].split("/")[1]
    rp = await env.ehr.read("RelatedPerson", rp_id)
    assert rp["active"] is True and rp["patient"]["reference"] == "Patient/pt-0006"

    [mail] = env.outbox(carer_email)
    enrol_url = re.search(r"(http\S+/auth/enroll\?code=\S+)", mail["body"]).group(1)
    code = parse_qs(urlsplit(enrol_url).query)["code"][0]
    carer_name = f"carer-{secrets.token_hex(3)}"
    async with env.browser() as c:
        page = await c.get("/auth/enroll", params={"code": code})
        wrong = await c.post("/auth/enroll/verify", data={"csrf_token": csrf(page.text), "email": "x@example.org"})
        assert wrong.status_code == 400 and GENERIC_MISMATCH in wrong.text
        r = await c.post("/auth/enroll/verify", data={"csrf_token": csrf(page.text), "email": carer_email.upper()})
        assert r.headers["location"] == "/auth/enroll/account"
        carer = await env.finish_enrolment(c, carer_name)
    account = await env.accounts.store.get(carer.account_id)
    assert account.kind == "caregiver" and account.fhir_user == f"RelatedPerson/{rp_id}"
    links = await env.accounts.store.patients_for(carer.account_id)
    assert [(lk.patient_id, lk.related_person_id) for lk in links] == [("pt-0006", rp_id)]
    assert [lk.patient_id for lk in await env.accounts.store.patients_for(patient.account_id)] == ["pt-0006"]
    assert env.audit.has("proxy.grant", "success", patient_id="pt-0006")

    # the patient withdraws through the JSON API (CSRF in a header)
    async with env.browser() as p:
        assert (await env.sign_in(p, patient, code=patient.recovery[1])).status_code == 303
        listing = (await p.get("/auth/api/proxies")).json()
        [link] = listing["proxies"]
        assert link["status"] == "active"
        no_csrf = await p.delete(f"/auth/api/proxies/{link['id']}")
        assert no_csrf.status_code == 403
        r = await p.delete(f"/auth/api/proxies/{link['id']}", headers={"X-CSRF-Token": listing["csrf_token"]})
        assert r.status_code == 200 and r.json()["status"] == "withdrawn"
        assert (await p.get("/auth/api/proxies")).json()["proxies"] == []
    assert await env.accounts.store.patients_for(carer.account_id) == []
    assert (carer.account_id, "pt-0006") in env.grants.calls
    rp = await env.ehr.read("RelatedPerson", rp_id)
    assert rp["active"] is False
    assert env.audit.has("proxy.withdraw", "success", patient_id="pt-0006")


async def test_admin_invitation_api_requires_staff(env: Env) -> None:
    now = int(time.time())
    staff = env.keys.sign({"iss": env.url, "sub": "staff-1", "aud": env.url + "/fhir", "exp": now + 300,
                           "iat": now, "jti": secrets.token_hex(8), "scope": "openid fhirUser user/*.rs",
                           "fhirUser": "Practitioner/prac-01", "client_id": "staff-app"})
    patient_tok = env.keys.sign({"iss": env.url, "sub": "p", "aud": env.url + "/fhir", "exp": now + 300,
                                 "iat": now, "jti": secrets.token_hex(8), "scope": "patient/*.rs",
                                 "fhirUser": "Patient/pt-0001", "client_id": "app"})
    async with env.browser() as b:
        none = await b.post("/auth/admin/invitations", json={"patient": "pt-0007"})
        assert none.status_code == 401 and none.json()["error"] == "invalid_token"
        pat = await b.post("/auth/admin/invitations", json={"patient": "pt-0007"},
                           headers={"Authorization": f"Bearer {patient_tok}"})
        assert pat.status_code == 401
        ok = await b.post("/auth/admin/invitations", json={"patient": "pt-0007"},
                          headers={"Authorization": f"Bearer {staff}"})
        assert ok.status_code == 201, ok.text
        body = ok.json()
        assert body["enroll_url"] == f"{env.url}/auth/enroll?code={body['code']}"
        assert body["expires_at"] - now == pytest.approx(7 * 86400, abs=60)
        missing = await b.post("/auth/admin/invitations", json={"patient": "pt-9999"},
                               headers={"Authorization": f"Bearer {staff}"})
        assert missing.status_code == 404
    # only a hash of the code is stored
    redis = env.accounts.store.redis
    keys = [k async for k in redis.scan_iter("auth:*")]
    for key in keys:
        if (await redis.type(key)) == b"string":
            assert body["code"].encode() not in (await redis.get(key) or b"")


def _cli(env: Env, *args: str) -> str:
    import os
    import subprocess
    import sys

    redis_url = env.accounts.store.redis.connection_pool.connection_kwargs
    url = f"redis://{redis_url['host']}:{redis_url['port']}/{redis_url.get('db', 0)}"
    environ = {**os.environ, "PORTAL_REDIS_URL": url, "PORTAL_STATE_DIR": str(env.state),
               "PORTAL_PUBLIC_URL": env.url, "PORTAL_FHIR_BASE_URL": FHIR_BASE}
    done = subprocess.run([sys.executable, "-m", "smart_auth.accounts.cli", *args], env=environ,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_cli_invite_and_staff_account(env: Env) -> None:
    out = await asyncio.to_thread(_cli, env, "invite", "--patient", "pt-0008")
    link = re.search(r"link:\s+(\S+)", out).group(1)
    assert link.startswith(f"{env.url}/auth/enroll?code=")
    async with env.browser() as b:
        page = await b.get(link.removeprefix(env.url))
        assert page.status_code == 200 and "Date of birth" in page.text

    username = f"staff-{secrets.token_hex(3)}"
    out = await asyncio.to_thread(_cli, env, "staff", "add", "--username", username, "--practitioner", "prac-01")
    password = re.search(r"password:\s+(\S+)", out).group(1)
    secret = re.search(r"totp secret:\s+(\S+)", out).group(1)
    account = await env.accounts.store.by_username(username)
    assert account.kind == "staff" and account.fhir_user == "Practitioner/prac-01"
    who = Enrolled(username, password, pyotp.TOTP(secret), [], account.id)
    async with env.browser() as b:
        ok = await env.sign_in(b, who)
        assert ok.status_code == 303 and "portal_session" in b.cookies


async def test_patient_who_is_also_a_caregiver_keeps_their_own_record(env: Env) -> None:
    granter = await env.enrol_patient("pt-0009")
    helper = await env.enrol_patient("pt-0010")
    helper_email = f"helper-{secrets.token_hex(3)}@example.org"
    async with env.browser() as p:
        assert (await env.sign_in(p, granter)).status_code == 303
        page = await p.get("/auth/proxies")
        r = await p.post("/auth/proxies", data={"csrf_token": csrf(page.text), "name": "Helper Person",
                                                "email": helper_email, "relationship": "SPS"})
        assert r.status_code == 303
    code = parse_qs(urlsplit(re.search(r"(http\S+)", env.outbox(helper_email)[-1]["body"]).group(1)).query)["code"][0]
    async with env.browser() as h:
        assert (await env.sign_in(h, helper)).status_code == 303
        page = await h.get("/auth/enroll", params={"code": code})
        r = await h.post("/auth/enroll/verify", data={"csrf_token": csrf(page.text), "email": helper_email})
        assert r.headers["location"] == "/auth/enroll/accept"
        page = await h.get("/auth/enroll/accept")
        assert helper.username in page.text
        done = await h.post("/auth/enroll/accept", data={"csrf_token": csrf(page.text)})
        assert done.status_code == 200 and "Access added" in done.text
    links = await env.accounts.store.patients_for(helper.account_id)
    assert [(lk.patient_id, lk.related_person_id is None) for lk in links] == [("pt-0010", True), ("pt-0009", False)]
    account = await env.accounts.store.get(helper.account_id)
    assert account.kind == "patient" and account.fhir_user == "Patient/pt-0010"


async def test_cli_links_an_existing_related_person(env: Env) -> None:
    marker = secrets.token_hex(6)
    created = await env.ehr.request("POST", "RelatedPerson", json={
        "resourceType": "RelatedPerson", "active": True, "patient": {"reference": "Patient/pt-0011"},
        "identifier": [{"system": "urn:test:accounts", "value": marker}], "name": [{"text": "Demo Carer"}],
    }, headers={"Prefer": "return=representation"})
    assert created.status_code in (200, 201), created.text
    rp_id = created.json()["id"]
    username = f"demo-carer-{secrets.token_hex(3)}"
    out = await asyncio.to_thread(_cli, env, "proxy", "link", "--patient", "pt-0011", "--related-person", rp_id,
                                  "--caregiver-username", username)
    assert "totp secret:" in out
    account = await env.accounts.store.by_username(username)
    assert account.kind == "caregiver" and account.fhir_user == f"RelatedPerson/{rp_id}"
    links = await env.accounts.store.patients_for(account.id)
    assert [(lk.patient_id, lk.related_person_id) for lk in links] == [("pt-0011", rp_id)]
