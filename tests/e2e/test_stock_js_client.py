"""The stock JavaScript SMART client (`fhirclient` from npm, its browser build, unchanged) in Chromium: a
standalone launch against our gateway as a public client, then `client.refresh()` as the library sends it
by default (only `grant_type` and `refresh_token`, no client authentication), then reads with the new token.

The app is served from an origin of its own (a small local web server), as a real app would be, so the
discovery, token and FHIR calls are cross-origin requests the browser makes itself."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Page, Request, expect

from .harness import Account, PortalApp, path_of, submit

pytestmark = pytest.mark.e2e

E2E = Path(__file__).resolve().parent
FILES = {
    "/launch": (E2E / "stock_app" / "index.html", "text/html; charset=utf-8"),
    "/app": (E2E / "stock_app" / "index.html", "text/html; charset=utf-8"),
    "/app.js": (E2E / "stock_app" / "app.js", "text/javascript"),
    "/fhir-client.js": (E2E / "node_modules" / "fhirclient" / "build" / "fhir-client.min.js", "text/javascript"),
}


class _StockApp(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = FILES.get(urlsplit(self.path).path)
        if found is None:
            self.send_error(404)
            return
        body = found[0].read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", found[1])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def stock_app() -> Iterator[str]:
    assert FILES["/fhir-client.js"][0].exists(), "fhirclient is missing: `./stack test` runs npm ci in tests/e2e"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StockApp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def register_public_app(app: PortalApp, redirect_uri: str) -> str:
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
        response = await http.post("/auth/register", json={
            "client_name": "Stock JS App", "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        })
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


async def test_stock_js_client_standalone_launch_and_refresh(portal_signed_in: Callable[..., Awaitable[Page]],
                                                             app: PortalApp, shared_patient: Account,
                                                             stock_app: str) -> None:
    client_id = await register_public_app(app, f"{stock_app}/app")
    page = await portal_signed_in()  # the person is signed in already; the app still asks for consent
    token_calls: list[Request] = []
    page.on("request", lambda r: token_calls.append(r) if path_of_url(r.url) == "/auth/token" else None)

    await page.goto(f"{stock_app}/launch?" + urlencode({"client_id": client_id, "iss": app.url + "/fhir"}))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Stock JS App")
    assert path_of(page) == "/auth/authorize"
    await submit(page, {}, "Allow")
    await page.wait_for_function("() => window.smartResult !== undefined", timeout=30_000)
    result: dict[str, Any] = await page.evaluate("() => window.smartResult")

    assert "error" not in result, result
    assert shared_patient.patient is not None
    assert result["patientId"] == shared_patient.patient.patient_id
    assert result["name"] == shared_patient.patient.name
    assert result["hadRefreshToken"] and result["accessChanged"], result
    assert result["readAfterRefresh"] == shared_patient.patient.patient_id
    assert result["observationsAfterRefresh"] > 0

    # What the library sent: the code exchange names the public client; the refresh is the bare grant.
    forms = [parse_qs(r.post_data or "") for r in token_calls if r.method == "POST"]
    assert [f["grant_type"] for f in forms] == [["authorization_code"], ["refresh_token"]], forms
    refresh = forms[1]
    assert set(refresh) == {"grant_type", "refresh_token"}, refresh
    refresh_request = [r for r in token_calls if r.method == "POST"][1]
    assert "authorization" not in await refresh_request.all_headers()
    answer = await refresh_request.response()
    assert answer is not None and answer.status == 200


def path_of_url(url: str) -> str:
    return urlsplit(url).path
