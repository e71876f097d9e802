"""A signed-in person changes their own sign-in over real HTTP (the accounts server of test_accounts_flows, its
private Redis and the real EHR): password, a new authenticator app, new recovery codes. Each change asks for the
current password and a current code; a refusal changes nothing."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pyotp
import pytest

from tests.integration.smart_auth import test_accounts_flows as flows
from tests.integration.smart_auth.test_accounts_flows import Enrolled, Env, csrf

env = flows.env  # the same accounts server fixture (module-scoped: one server for this file)

pytestmark = pytest.mark.integration

NEW_PASSWORD = "Quiet-Harbor-Lamp-77"


@asynccontextmanager
async def signed_in(env: Env, who: Enrolled, code: str) -> AsyncIterator[httpx.AsyncClient]:
    async with env.browser() as b:
        done = await env.sign_in(b, who, code=code)
        assert done.status_code == 303, done.text
        yield b


async def test_password_change_asks_again_keeps_this_browser_and_ends_the_others(env: Env) -> None:
    email = "change-pw@example.org"
    who = await env.enrol_patient("pt-0006", method="email", email=email)
    async with signed_in(env, who, who.recovery[0]) as here, signed_in(env, who, who.recovery[1]) as elsewhere:
        page = await here.get("/auth/account/password")
        assert page.status_code == 200 and "Send me a code" in page.text
        # People who get codes by e-mail ask for one; none is sent unasked.
        before = len(env.outbox(email))
        sent = await here.post("/auth/account/send-code", data={"csrf_token": csrf(page.text),
                                                                "back": "/auth/account/password"})
        assert sent.headers["location"] == "/auth/account/password?sent=1"
        assert len(env.outbox(email)) == before + 1
        form = {"csrf_token": csrf(page.text), "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}

        wrong = await here.post("/auth/account/password", data={**form, "current_password": "Not-My-Password-1",
                                                                 "current_code": env.last_code(email)})
        assert wrong.status_code == 401 and "That is not your current password." in wrong.text
        weak = await here.post("/auth/account/password", data={**form, "password": "Summer2024!!",
                                                                "password_confirm": "Summer2024!!",
                                                                "current_password": who.password,
                                                                "current_code": env.last_code(email)})
        assert weak.status_code == 400 and "too common" in weak.text
        assert not env.audit.has("password_change", "success", account_id=who.account_id)

        done = await here.post("/auth/account/password", data={**form, "current_password": who.password,
                                                                "current_code": env.last_code(email)})
        assert done.status_code == 303 and done.headers["location"] == "/auth/account/security?done=password"
        overview = await here.get(done.headers["location"])
        assert overview.status_code == 200 and "Your password is changed" in overview.text
        assert (await elsewhere.get("/auth/account/security")).status_code == 303  # signed out there
    assert env.grants.calls[-1] == (who.account_id, None) and env.grants.kept[-1] is not None
    assert env.audit.has("password_change", "success", account_id=who.account_id)
    assert env.audit.has("password_change", "failure", account_id=who.account_id, detail="password")
    assert env.outbox(email)[-1]["subject"] == "Your sign-in settings changed"

    async with env.browser() as b:
        page = await b.get("/auth/login")
        old = await b.post("/auth/login", data={"csrf_token": csrf(page.text), "username": who.username,
                                                "password": who.password, "next": "/portal/"})
        assert old.status_code == 401
    who.password = NEW_PASSWORD
    async with signed_in(env, who, who.recovery[2]) as again:
        assert (await again.get("/auth/account/security")).status_code == 200


async def test_new_authenticator_is_saved_only_after_a_code_from_it(env: Env) -> None:
    who = await env.enrol_patient("pt-0007")
    assert who.totp is not None
    async with signed_in(env, who, who.recovery[0]) as b:
        page = await b.get("/auth/account/authenticator")
        assert page.status_code == 200 and 'src="data:image/svg+xml;base64,' in page.text
        secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
        assert secret == re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<',
                                   (await b.get("/auth/account/authenticator")).text).group(1).replace(" ", "")
        new = pyotp.TOTP(secret)
        base = {"csrf_token": csrf(page.text), "current_password": who.password}
        not_from_it = await b.post("/auth/account/authenticator", data={**base, "current_code": who.recovery[1],
                                                                         "new_code": "000000"})
        assert not_from_it.status_code == 400 and "That code did not work" in not_from_it.text
        bad_current = await b.post("/auth/account/authenticator", data={**base, "current_code": "123456",
                                                                         "new_code": new.now()})
        assert bad_current.status_code == 401 and "That code is not correct" in bad_current.text
        # The old app's next code re-authenticates; the new app's current one confirms it.
        now = time.time()
        done = await b.post("/auth/account/authenticator", data={**base, "current_code": who.totp.at(now + 30),
                                                                  "new_code": new.at(now)})
        assert done.headers["location"] == "/auth/account/security?done=authenticator"
    assert env.audit.has("mfa.setup", "success", account_id=who.account_id)

    async with env.browser() as old_app:
        assert (await env.sign_in(old_app, who, code=who.totp.at(now))).status_code == 401
    async with env.browser() as replay:  # the code that confirmed the new app is spent
        assert (await env.sign_in(replay, who, code=new.at(now))).status_code == 401
    async with env.browser() as new_app:  # the old app used this step; the new app's code for it still works
        assert (await env.sign_in(new_app, who, code=new.at(now + 30))).status_code == 303


async def test_new_recovery_codes_replace_the_old_set(env: Env) -> None:
    who = await env.enrol_patient("pt-0008")
    async with signed_in(env, who, who.recovery[0]) as b:
        overview = await b.get("/auth/account/security")
        assert "You have 9 recovery codes left." in overview.text
        page = await b.get("/auth/account/recovery-codes")
        base = {"csrf_token": csrf(page.text), "current_password": who.password}
        refused = await b.post("/auth/account/recovery-codes", data={**base, "current_code": "abcd-efgh-jkmn"})
        assert refused.status_code == 401
        assert await env.accounts.store.recovery_codes_left(who.account_id) == 9
        done = await b.post("/auth/account/recovery-codes", data={**base, "current_code": who.recovery[1]})
        assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
        codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", done.text)
        assert len(codes) == 10 and not set(codes) & set(who.recovery)
    assert env.audit.has("recovery_codes", "success", account_id=who.account_id)
    async with env.browser() as old:
        assert (await env.sign_in(old, who, code=who.recovery[2])).status_code == 401
    async with env.browser() as new:
        assert (await env.sign_in(new, who, code=codes[0])).status_code == 303


async def test_pages_need_a_signed_in_session_and_lock_after_repeated_wrong_passwords(env: Env) -> None:
    async with env.browser() as stranger:
        for path in ("/auth/account/security", "/auth/account/password", "/auth/account/authenticator",
                     "/auth/account/recovery-codes"):
            answer = await stranger.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == f"/auth/login?next={path}"
    who = await env.enrol_patient("pt-0009")
    async with signed_in(env, who, who.recovery[0]) as b:
        page = await b.get("/auth/account/recovery-codes")
        data = {"csrf_token": csrf(page.text), "current_password": "Wrong-Guess-9999", "current_code": "x"}
        statuses = [(await b.post("/auth/account/recovery-codes", data=data)).status_code for _ in range(5)]
        assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
        # Locked: even the right answers are refused now, and the codes are untouched.
        locked = await b.post("/auth/account/recovery-codes", data={**data, "current_password": who.password,
                                                                     "current_code": who.recovery[1]})
        assert locked.status_code == 429 and "Too many wrong tries" in locked.text
        assert await env.accounts.store.recovery_codes_left(who.account_id) == 9
        forged = await b.post("/auth/account/recovery-codes", data={**data, "csrf_token": "forged"})
        assert forged.status_code == 400 and "expired" in forged.text
