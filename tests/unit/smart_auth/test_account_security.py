"""The sign-in settings pages (/auth/account/...) driven through the real accounts router, sessions, store and
lockout over in-memory storage: each change needs the current password and a current code, a refusal changes
nothing, a password change ends the other sign-ins but not this one."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp
from argon2 import PasswordHasher
from fastapi import FastAPI
from starlette.responses import Response

from smart_auth.accounts import AccountSettings, build_accounts
from smart_auth.accounts.mfa import new_recovery_codes, new_totp_secret
from smart_auth.accounts.models import AccountRecord
from smart_auth.accounts.passwords import PasswordHashing
from smart_auth.accounts.router import build_accounts_router
from smart_auth.deps import AuthDeps
from smart_auth.keys import KeyStore
from tests.recording_audit import RecordingAudit

from .memory_redis import MemoryRedis

PUBLIC = "http://portal.test"
PASSWORD = "Tr4vel-Lantern-Oak"
NEW_PASSWORD = "Quiet-Harbor-Lamp-77"
_hashing = PasswordHashing(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))  # argon2id, made cheap


@dataclass
class KeptGrants:
    calls: list[tuple[str, str | None]] = field(default_factory=list)

    async def revoke_for(self, account_id: str, patient_id: str | None = None, *,
                         keep_session: str | None = None) -> int:
        self.calls.append((account_id, keep_session))
        return 0


@dataclass
class Outbox:
    sent: list[dict[str, str]] = field(default_factory=list)

    async def send(self, channel: str, to: str, subject: str, body: str, *, purpose: str) -> None:
        self.sent.append({"channel": channel, "to": to, "subject": subject, "body": body, "purpose": purpose})

    def last_code(self) -> str:
        return re.search(r"code is (\d{6})", self.sent[-1]["body"]).group(1)  # type: ignore[union-attr]


@dataclass
class Person:
    record: AccountRecord
    totp: pyotp.TOTP | None
    recovery: list[str]


class Site:
    def __init__(self, state: Path, keys: KeyStore) -> None:
        self.audit, self.outbox, self.grants = RecordingAudit(), Outbox(), KeptGrants()
        deps = AuthDeps(redis=MemoryRedis(), keys=keys, ehr=None, audit=self.audit,  # type: ignore[arg-type]
                        public_url=PUBLIC, state_dir=state)
        self.settings = AccountSettings(public_url=PUBLIC, state_dir=state)
        self.accounts = build_accounts(deps, self.settings, sender=self.outbox)
        self.app = FastAPI()
        a = self.accounts
        self.app.include_router(build_accounts_router(deps, a.settings, a.sessions, a.store, a.sender, self.grants,
                                                      hashing=_hashing))

    async def person(self, *, email: str | None = None) -> Person:
        store, secret = self.accounts.store, new_totp_secret()
        record = await store.create(AccountRecord(
            id="", username=f"pat-{time.time_ns()}", kind="patient", fhir_user="Patient/pt-1", patient_id="pt-1",
            password_hash=_hashing.hash(PASSWORD),
            mfa_method="email" if email else "totp", contact=email,
            totp_secret_sealed=None if email else store.box.seal(secret), password_changed_at=1_764_547_200.0))
        codes = new_recovery_codes()
        await store.set_recovery_codes(record.id, codes)
        return Person(record, None if email else pyotp.TOTP(secret), codes)

    async def browser(self, person: Person) -> httpx.AsyncClient:
        """A browser holding a fresh signed-in session of the person's account."""
        response = Response()
        await self.accounts.sessions.create(response, person.record.public())
        cookie = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC,
                                 cookies={self.settings.session_cookie: cookie})

    async def record(self, person: Person) -> AccountRecord:
        record = await self.accounts.store.get_record(person.record.id)
        assert record is not None
        return record



def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


async def test_the_pages_need_a_signed_in_session(site: Site) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url=PUBLIC) as stranger:
        for path in ("/auth/account/security", "/auth/account/password", "/auth/account/authenticator",
                     "/auth/account/recovery-codes"):
            answer = await stranger.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, f"/auth/login?next={path}")


async def test_overview_says_when_the_password_was_set_the_second_step_and_the_codes_left(site: Site) -> None:
    person = await site.person()
    await site.accounts.store.use_recovery_code(person.record.id, person.recovery[0])
    async with await site.browser(person) as b:
        page = (await b.get("/auth/account/security")).text
    assert "You last set your password on 1 December 2025." in page
    assert "you sign in with an authenticator app" in page
    assert "You have 9 recovery codes left." in page


async def test_password_change_asks_again_and_a_wrong_password_changes_nothing(site: Site) -> None:
    person = await site.person(email="pat@example.org")
    other = await site.browser(person)
    async with await site.browser(person) as b, other:
        page = await b.get("/auth/account/password")
        sent = await b.post("/auth/account/send-code", data={"csrf_token": csrf(page.text),
                                                             "back": "/auth/account/password"})
        assert sent.headers["location"] == "/auth/account/password?sent=1"
        code = site.outbox.last_code()
        form = {"csrf_token": csrf(page.text), "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD,
                "current_code": code}
        wrong = await b.post("/auth/account/password", data={**form, "current_password": "Wrong-Guess-2024"})
        assert wrong.status_code == 401 and "That is not your current password." in wrong.text
        assert 'id="current_password-error"' in wrong.text and 'aria-invalid="true"' in wrong.text
        assert (await site.record(person)).password_hash == person.record.password_hash
        assert site.grants.calls == []
        mismatch = await b.post("/auth/account/password", data={**form, "current_password": PASSWORD,
                                                                 "password_confirm": "Something-Else-99"})
        assert mismatch.status_code == 400 and "The two passwords do not match." in mismatch.text

        done = await b.post("/auth/account/password", data={**form, "current_password": PASSWORD})
        assert done.headers["location"] == "/auth/account/security?done=password"
        assert (await b.get("/auth/account/security")).status_code == 200  # still signed in here
        assert (await other.get("/auth/account/security")).status_code == 303  # not there
    record = await site.record(person)
    assert _hashing.verify(record.password_hash, NEW_PASSWORD) and record.password_changed_at > time.time() - 60
    assert len(site.grants.calls) == 1 and site.grants.calls[0][1] is not None  # this sign-in's grants kept
    assert site.audit.has("password_change", "failure", detail="password")
    assert site.audit.has("password_change", "success", account_id=person.record.id)
    assert site.outbox.sent[-1]["subject"] == "Your sign-in settings changed"
    assert site.outbox.sent[-1]["to"] == "pat@example.org"


async def test_a_new_authenticator_is_saved_only_after_a_code_from_it(site: Site) -> None:
    person = await site.person()
    async with await site.browser(person) as b:
        page = await b.get("/auth/account/authenticator")
        secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
        new = pyotp.TOTP(secret)
        base = {"csrf_token": csrf(page.text), "current_password": PASSWORD}
        not_new = await b.post("/auth/account/authenticator", data={**base, "current_code": person.totp.now(),  # type: ignore[union-attr]
                                                                     "new_code": "000000"})
        assert not_new.status_code == 400 and "That code did not work" in not_new.text
        assert secret in not_new.text  # the same key is offered again
        assert (await site.record(person)).totp_secret_sealed == person.record.totp_secret_sealed
        done = await b.post("/auth/account/authenticator", data={**base, "current_code": person.recovery[0],
                                                                  "new_code": new.now()})
        assert done.headers["location"] == "/auth/account/security?done=authenticator"
    assert site.accounts.store.totp_secret(await site.record(person)) == secret
    assert await site.accounts.store.recovery_codes_left(person.record.id) == 9
    assert site.audit.has("mfa.setup", "success", account_id=person.record.id)
    assert site.outbox.sent == []  # no address on file: nothing to send


async def test_new_recovery_codes_replace_the_old_set_and_are_shown_once(site: Site) -> None:
    person = await site.person()
    async with await site.browser(person) as b:
        page = await b.get("/auth/account/recovery-codes")
        form = {"csrf_token": csrf(page.text), "current_password": PASSWORD}
        refused = await b.post("/auth/account/recovery-codes", data={**form, "current_code": "123456"})
        assert refused.status_code == 401 and "That code is not correct or has expired." in refused.text
        done = await b.post("/auth/account/recovery-codes", data={**form, "current_code": person.totp.now()})  # type: ignore[union-attr]
        assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", done.text)
    assert len(codes) == 10 and "Print this page" in done.text
    store = site.accounts.store
    assert not await store.use_recovery_code(person.record.id, person.recovery[1])
    assert await store.use_recovery_code(person.record.id, codes[0])


async def test_wrong_answers_lock_the_account_like_sign_in_does(site: Site) -> None:
    person = await site.person()
    async with await site.browser(person) as b:
        page = await b.get("/auth/account/recovery-codes")
        wrong = {"csrf_token": csrf(page.text), "current_password": PASSWORD, "current_code": "999999"}
        statuses = [(await b.post("/auth/account/recovery-codes", data=wrong)).status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        right = await b.post("/auth/account/recovery-codes", data={**wrong, "current_code": person.recovery[0]})
        assert right.status_code == 429 and "Too many wrong tries" in right.text
    assert await site.accounts.store.recovery_codes_left(person.record.id) == 10
    assert site.audit.has("lockout", "failure", account_id=person.record.id)


def test_the_audit_trail_names_the_new_event_kinds() -> None:
    from audit.events import AUTH_EVENTS, normalise_kind

    assert AUTH_EVENTS[normalise_kind("password_change")].display == "Password changed"
    assert AUTH_EVENTS[normalise_kind("recovery_codes")].display == "Recovery codes replaced"
