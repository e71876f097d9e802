"""Security headers on every response, decided in one place (pure ASGI: no per-request task group).

Every response gets `X-Content-Type-Options: nosniff`. Every HTML response gets a strict
Content-Security-Policy (no inline script or style), `frame-ancestors 'none'`, `X-Frame-Options: DENY`
and `Referrer-Policy: no-referrer`. With an https public URL every response also gets HSTS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def csp_allowing_form_to(target_url: str) -> str:
    """The strict policy, except that a form may also lead on to ``target_url``'s origin.

    Browsers apply `form-action` to the redirects that follow a form post too, so an OAuth consent or
    patient-picker form, whose answer redirects to the app's redirect URI, needs the app's origin there.
    """
    parts = urlsplit(target_url)
    try:
        port = parts.port
    except ValueError:
        return STRICT_CSP
    if parts.scheme in ("http", "https") and parts.hostname:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        source = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    elif parts.scheme and re.fullmatch(r"[a-z][a-z0-9+.-]*", parts.scheme):
        source = f"{parts.scheme}:"  # a native app's private-use scheme (RFC 8252)
    else:
        return STRICT_CSP
    if re.search(r"[\s;,']", source):
        return STRICT_CSP
    return STRICT_CSP.replace("form-action 'self'", f"form-action 'self' {source}")


class SecurityHeadersMiddleware:
    """Adds the headers; a response that already set a CSP (a page with its own needs) keeps it.

    ``csp_overrides`` maps a path prefix to the policy its HTML uses instead of the strict one.
    """

    def __init__(self, app: ASGIApp, *, https: bool = False, csp_overrides: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.https = https
        self.csp_overrides = dict(csp_overrides or {})

    def _csp_for(self, path: str) -> str:
        for prefix, policy in self.csp_overrides.items():
            if path.startswith(prefix):
                return policy
        return STRICT_CSP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if self.https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", self._csp_for(path))
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Referrer-Policy", "no-referrer")
            await send(message)

        await self.app(scope, receive, send_with_headers)
