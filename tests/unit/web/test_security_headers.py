"""Every response is nosniff; every HTML page carries the strict CSP and framing/referrer rules."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from web import SecurityHeadersMiddleware, csrf_input, tokens_match
from web.security import STRICT_CSP


def _app(**kwargs: object) -> SecurityHeadersMiddleware:
    inner = Starlette(routes=[
        Route("/page", lambda r: HTMLResponse("<p>hi</p>")),
        Route("/api", lambda r: JSONResponse({"a": 1})),
        Route("/docs", lambda r: HTMLResponse("<p>docs</p>")),
    ])
    return SecurityHeadersMiddleware(inner, **kwargs)  # type: ignore[arg-type]


async def test_html_gets_strict_policy_and_json_gets_nosniff_only() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        page = await client.get("/page")
        api = await client.get("/api")
    assert page.headers["content-security-policy"] == STRICT_CSP
    assert "'unsafe-inline'" not in STRICT_CSP and "frame-ancestors 'none'" in STRICT_CSP
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers
    assert "strict-transport-security" not in page.headers


async def test_https_adds_hsts_and_overrides_apply_by_prefix() -> None:
    app = _app(https=True, csp_overrides={"/docs": "default-src 'self'"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        docs = await client.get("/docs")
        api = await client.get("/api")
    assert docs.headers["content-security-policy"] == "default-src 'self'"
    assert api.headers["strict-transport-security"].startswith("max-age=")


def test_csrf_field_escapes_and_compare_refuses_empty() -> None:
    assert 'value="a&#34;b"' in str(csrf_input('a"b')) or 'value="a&quot;b"' in str(csrf_input('a"b'))
    assert tokens_match("abc", "abc")
    assert not tokens_match("", "")
    assert not tokens_match(None, "abc")
    assert not tokens_match("abd", "abc")
    assert not tokens_match("\u00ff\u00fe", "abc")  # non-ASCII input is a mismatch, not an error


def test_a_form_leading_back_to_an_app_may_go_to_that_origin_only() -> None:
    from web.security import csp_allowing_form_to

    policy = csp_allowing_form_to("https://app.example.org:8443/callback?x=1")
    assert "form-action 'self' https://app.example.org:8443;" in policy
    assert policy.replace(" https://app.example.org:8443", "") == STRICT_CSP
    assert "form-action 'self' com.example.notes:;" in csp_allowing_form_to("com.example.notes:/cb")
    # Nothing that could smuggle in another directive or a wildcard.
    assert csp_allowing_form_to("https://a.example/cb;script-src *") == STRICT_CSP.replace(
        "form-action 'self'", "form-action 'self' https://a.example")
    assert csp_allowing_form_to("not a url") == STRICT_CSP
    assert "form-action 'self' http://127.0.0.1:9000;" in csp_allowing_form_to("http://u:p@127.0.0.1:9000/cb")
