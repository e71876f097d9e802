"""What a person and an app do over HTTP against the running gateway: CLI set-up, enrolment, sign-in with
password + TOTP, the authorize pages (picker, consent) and the code exchange.

Everything here talks to the real uvicorn process of the `gateway` fixture; nothing calls handlers or
mints tokens. The form helpers of the accounts tests are reused (`csrf`, the strong password).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import redis
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from smart_auth.accounts.identity import MRN_SYSTEM
from tests.conftest import ROOT, GatewayServer
from tests.integration.smart_auth.test_accounts_flows import STRONG, csrf

TOTP_PERIOD = 30


def portal_auth(gw: GatewayServer, *args: str) -> str:
    """Run the real `portal-auth` command with the gateway's environment (same Redis, same state dir)."""
    script = Path(sys.executable).with_name("portal-auth")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "smart_auth.cli"]
    done = subprocess.run([*cmd, *args], env={**os.environ, **gw.env}, cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"portal-auth {' '.join(args)} failed ({done.returncode}): {done.stderr}"
    return done.stdout


@dataclass
class AppClient:
    client_id: str
    redirect_uri: str


def register_public_client(gw: GatewayServer, name: str) -> AppClient:
    redirect = f"http://127.0.0.1:{40000 + secrets.randbelow(20000)}/callback"
    out = json.loads(portal_auth(gw, "client", "add", "--name", name, "--redirect-uri", redirect))
    assert out.get("token_endpoint_auth_method") in (None, "none"), out
    assert "client_secret" not in out
    return AppClient(out["client_id"], redirect)


@dataclass
class Person:
    username: str
    password: str
    totp: pyotp.TOTP
    recovery: list[str] = field(default_factory=list)
    used_steps: set[int] = field(default_factory=set)

    def next_code(self) -> str:
        """A TOTP code for a time step not used yet: the server accepts each step once (±1 step of drift)."""
        while True:
            now = time.time()
            current = int(now // TOTP_PERIOD)
            for step in (current, current + 1, current - 1):
                # The previous step stays valid only until the next boundary: not in its last seconds.
                if step == current - 1 and (current + 1) * TOTP_PERIOD - now < 3:
                    continue
                if step not in self.used_steps:
                    self.used_steps.add(step)
                    return self.totp.at(step * TOTP_PERIOD)
            time.sleep(1)


def browser(gw: GatewayServer) -> httpx.Client:
    """A cookie-holding client that does not follow redirects (the tests look at every hop)."""
    return httpx.Client(base_url=gw.url, follow_redirects=False, timeout=30)


def identity_of(ehr_base: str, patient_id: str) -> dict[str, Any]:
    patient = httpx.get(f"{ehr_base}/Patient/{patient_id}", timeout=30).json()
    mrn = next(i["value"] for i in patient.get("identifier", []) if i.get("system") == MRN_SYSTEM)
    return {"birth_date": patient["birthDate"], "mrn": mrn, "resource": patient}


def enrol_patient(gw: GatewayServer, ehr_base: str, patient_id: str) -> Person:
    """Invitation from the CLI, then the enrolment pages: DOB + MRN (read from the EHR), password, TOTP."""
    out = portal_auth(gw, "invite", "--patient", patient_id)
    link = re.search(r"link:\s+(\S+)", out).group(1)
    assert link.startswith(f"{gw.url}/auth/enroll?code="), out
    ident = identity_of(ehr_base, patient_id)
    username = f"e2e-{patient_id}-{secrets.token_hex(3)}"
    with browser(gw) as b:
        page = b.get(link.removeprefix(gw.url))
        assert page.status_code == 200, page.text
        r = b.post("/auth/enroll/verify", data={"csrf_token": csrf(page.text), "birth_date": ident["birth_date"],
                                                "mrn": ident["mrn"]})
        assert r.status_code == 303 and r.headers["location"] == "/auth/enroll/account", r.text
        page = b.get("/auth/enroll/account")
        r = b.post("/auth/enroll/account", data={"csrf_token": csrf(page.text), "username": username,
                                                 "password": STRONG, "password_confirm": STRONG})
        assert r.status_code == 303 and r.headers["location"] == "/auth/enroll/mfa", r.text
        page = b.get("/auth/enroll/totp")
        secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
        person = Person(username, STRONG, pyotp.TOTP(secret))
        done = b.post("/auth/enroll/totp", data={"csrf_token": csrf(page.text), "code": person.next_code()})
        assert done.status_code == 200, done.text
        person.recovery = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", done.text)
        assert len(person.recovery) == 10
    return person


def person_from_cli(out: str) -> Person:
    """The account `portal-auth staff add` / `proxy link` created (password and TOTP secret printed once)."""
    return Person(re.search(r"username:\s+(\S+)", out).group(1), re.search(r"password:\s+(\S+)", out).group(1),
                  pyotp.TOTP(re.search(r"totp secret:\s+(\S+)", out).group(1)),
                  re.search(r"recovery codes:\s+(.+)", out).group(1).split())


def sign_in(b: httpx.Client, person: Person, next_url: str) -> httpx.Response:
    """The sign-in pages: username + password, then the TOTP code; answers the final 303 to `next_url`."""
    page = b.get("/auth/login", params={"next": next_url})
    assert page.status_code == 200, page.text
    r = b.post("/auth/login", data={"csrf_token": csrf(page.text), "username": person.username,
                                    "password": person.password, "next": next_url})
    assert r.status_code == 303 and r.headers["location"] == "/auth/login/mfa", r.text
    page = b.get("/auth/login/mfa")
    r = b.post("/auth/login/mfa", data={"csrf_token": csrf(page.text), "code": person.next_code()})
    assert r.status_code == 303, r.text
    return r


def follow_authorize(b: httpx.Client, url: str, redirect_uri: str, *, person: Person | None = None,
                     pick: str | None = None, decision: str = "allow") -> str:
    """Follow an authorize URL as the person's browser: sign in when asked, pick the patient, submit the
    consent page as shown. Returns the URL the server finally sends the browser to (the app's redirect)."""
    r = b.get(url)
    for _ in range(10):
        if r.status_code in (302, 303):
            location = r.headers["location"]
            if location.startswith(redirect_uri):
                return location
            if urlsplit(location).path == "/auth/login":
                assert person is not None, "the browser is not signed in"
                next_url = parse_qs(urlsplit(location).query)["next"][0]
                done = sign_in(b, person, next_url)
                r = b.get(done.headers["location"])
                continue
            r = b.get(location)
            continue
        assert r.status_code == 200, f"{r.status_code}: {r.text[:2000]}"
        html = r.text
        pending = re.search(r'name="pending" value="([^"]+)"', html).group(1)
        if 'action="/auth/authorize/patient"' in html:
            offered = re.findall(r'name="patient" value="([^"]+)"', html)
            choice = pick or offered[0]
            assert choice in offered, (choice, offered)
            r = b.post("/auth/authorize/patient", data={"csrf_token": csrf(html), "pending": pending,
                                                        "patient": choice})
            continue
        assert 'action="/auth/authorize/decision"' in html, html[:2000]
        scopes = re.findall(r'name="scope" value="([^"]+)"', html)
        form = [("csrf_token", csrf(html)), ("pending", pending), ("decision", decision)]
        form += [("scope", s) for s in scopes]
        r = b.post("/auth/authorize/decision", content=urlencode(form),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    raise AssertionError("the authorize flow did not end at the app's redirect URI")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def authorize_url(gw: GatewayServer, app: AppClient, scope: str, challenge: str, state: str, **extra: str) -> str:
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri,
              "scope": scope, "state": state, "aud": gw.fhir, "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}
    return f"{gw.url}/auth/authorize?{urlencode(params)}"


def code_flow(gw: GatewayServer, b: httpx.Client, app: AppClient, scope: str, *, person: Person | None = None,
              pick: str | None = None, **extra: str) -> dict[str, Any]:
    """A whole authorization-code + PKCE flow in the browser `b`, then the code exchange by the app."""
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    final = follow_authorize(b, authorize_url(gw, app, scope, challenge, state, **extra), app.redirect_uri,
                             person=person, pick=pick)
    query = parse_qs(urlsplit(final).query)
    assert query.get("state") == [state], final
    assert "code" in query, final
    token = httpx.post(f"{gw.url}/auth/token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": app.redirect_uri,
        "code_verifier": verifier, "client_id": app.client_id}, timeout=30)
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    return token.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fhir_get(gw: GatewayServer, path: str, token: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{gw.fhir}/{path}", params=params or None, headers=bearer(token), timeout=60)


def all_pages(gw: GatewayServer, rtype: str, token: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every match of a search through the gateway, following its (rewritten) next links."""
    out: list[dict[str, Any]] = []
    response = fhir_get(gw, rtype, token, **params)
    while True:
        assert response.status_code == 200, response.text
        bundle = response.json()
        out += [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") != "include"]
        nxt = next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None)
        if not nxt:
            return out
        assert nxt.startswith(gw.fhir), nxt  # paging links point at the gateway, never at the EHR
        response = httpx.get(nxt, headers=bearer(token), timeout=60)


def subject_ref(resource: dict[str, Any]) -> str | None:
    return (resource.get("subject") or resource.get("patient") or {}).get("reference")


def assert_refused(response: httpx.Response, status: int) -> None:
    """A /fhir refusal: the status, and an OperationOutcome body as FHIR JSON."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"], body


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.json()["error"] == error, response.text


class StreamTail:
    """Reads every entry appended to the audit stream while the tests run (XREAD from '$').

    The app's exporter sends stream entries to the EHR and then deletes them from the stream, so the entries
    are collected as they arrive, not looked for afterwards."""

    def __init__(self, url: str, stream: str = "audit:events") -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.stream = stream
        self.events: dict[str, dict[str, Any]] = {}
        self.raw: dict[str, str] = {}
        self._stop = threading.Event()
        self._last = "$"
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="audit-tail", daemon=True)

    def start(self) -> StreamTail:
        # Pin the starting point to the current last id so nothing added after start() is missed.
        info = self.client.xinfo_stream(self.stream) if self.client.exists(self.stream) else None
        self._last = info["last-generated-id"].decode() if info else "0-0"
        self._thread.start()
        return self

    def _take(self, entries: list[Any]) -> None:
        with self._lock:
            for entry_id, fields in entries:
                self._last = entry_id.decode()
                payload = fields.get(b"event")
                if payload is not None:
                    text = payload.decode()
                    self.raw[self._last] = text
                    self.events[self._last] = json.loads(text)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self.client.xread({self.stream: self._last}, block=200, count=500)
            except redis.RedisError:
                time.sleep(0.1)
                continue
            for _stream, entries in answer or []:
                self._take(entries)

    def snapshot(self) -> list[tuple[str, dict[str, Any]]]:
        """Collected events plus whatever is still in the stream (read once more, to be current)."""
        time.sleep(0.5)
        with self._lock:
            return [(self.raw[k], self.events[k]) for k in sorted(self.events, key=_stream_order)]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


def _stream_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
