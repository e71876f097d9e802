"""Bodies a browser or an attacker may send that cannot be read: every POST route of the OAuth and accounts
routers answers with a 4xx the caller can act on (a page or an RFC 6749 error), never a 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

pytestmark = pytest.mark.integration

NESTED = b"[" * 100_000 + b"]" * 100_000
BODIES = {
    "multipart without boundary": ({"Content-Type": "multipart/form-data"}, b"csrf_token=x&username=u"),
    "multipart with broken parts": ({"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz\r\nbroken"),
    "JSON nested 100,000 deep": ({"Content-Type": "application/json"}, NESTED),
    "invalid UTF-8 form": ({"Content-Type": "application/x-www-form-urlencoded"}, b"csrf_token=\xff\xfe&a=%ff"),
}


def _post_paths(env: Any) -> list[str]:
    paths = sorted({route.path for router in env.routers for route in router.routes
                    if isinstance(route, APIRoute) and "POST" in route.methods})
    return [re.sub(r"\{[^}]+\}", "x", p) for p in paths]


async def test_every_post_route_answers_unreadable_bodies_with_a_4xx(oauth_env: Any) -> None:
    paths = _post_paths(oauth_env)
    form_pages = {"/auth/login", "/auth/login/mfa", "/auth/login/mfa/resend", "/auth/logout", "/auth/reset",
                  "/auth/reset/verify", "/auth/reset/password", "/auth/enroll/verify", "/auth/enroll/account",
                  "/auth/enroll/totp", "/auth/enroll/otp/send", "/auth/enroll/otp/confirm", "/auth/enroll/accept"}
    assert form_pages <= set(paths), set(paths)
    account = await oauth_env.new_account()
    signed_in = await oauth_env.browser(account)
    failures = []
    async with signed_in, oauth_env.http() as anonymous:
        await anonymous.get("/auth/login")  # a pre-session cookie, as a real browser would have
        for path in paths:
            for name, (headers, body) in BODIES.items():
                for who, client in (("anonymous", anonymous), ("signed in", signed_in)):
                    r = await client.post(path, content=body, headers=headers)
                    if not 400 <= r.status_code < 500 or "Traceback" in r.text:
                        failures.append(f"{who} {path} {name}: {r.status_code} {r.text[:120]}")
                    elif path in form_pages:
                        assert r.headers["content-type"].startswith("text/html"), (path, name)
    assert not failures, "\n".join(failures)


async def test_registration_metadata_of_the_wrong_shape_is_an_rfc7591_error(oauth_env: Any) -> None:
    cases: list[tuple[Any, str]] = [
        ({"redirect_uris": [5]}, "invalid_redirect_uri"),
        ({"redirect_uris": "http://127.0.0.1/cb"}, "invalid_redirect_uri"),
        ({"redirect_uris": [None]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": ["x"]}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://127.0.0.1/cb"], "grant_types": "authorization_code"}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://127.0.0.1/cb"], "grant_types": [{}]}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://127.0.0.1/cb"], "scope": 7}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": ["none"]},
         "invalid_client_metadata"),
        ({"redirect_uris": ["http://127.0.0.1/cb"], "jwks": "keys"}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://127.0.0.1/cb"], "contacts": "me@example.org"}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://127.0.0.1/cb"], "logo_uri": 12}, "invalid_client_metadata"),
    ]
    async with oauth_env.http() as http:
        for meta, error in cases:
            r = await http.post("/auth/register", json=meta)
            assert r.status_code == 400, (meta, r.status_code, r.text)
            assert r.json()["error"] == error, (meta, r.text)
        for body in (NESTED, b'{"a":' * 50_000, b"[1, 2]", b"\xff"):
            r = await http.post("/auth/register", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
