"""What every response of ours must carry, checked on the headers the browser really received.

`ResponseWatch` listens to a whole browser context: every response from the app and every
Content-Security-Policy violation the browser reports (an inline style or script in a template shows up
here, because the page is never loaded with the CSP bypassed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, ConsoleMessage, Response

UNSAFE_SOURCES = ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:")


def parse_csp(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives.setdefault(words[0].lower(), words[1:])
    return directives


def csp_problems(policy: str | None) -> list[str]:
    """Why a Content-Security-Policy is not strict (empty when it is)."""
    if not policy:
        return ["no Content-Security-Policy"]
    csp = parse_csp(policy)
    problems = []
    for directive in ("script-src", "style-src"):
        sources = csp.get(directive, csp.get("default-src"))
        if sources is None:
            problems.append(f"CSP has neither {directive} nor default-src")
        elif unsafe := [s for s in sources if s in UNSAFE_SOURCES]:
            problems.append(f"CSP {directive} allows {' '.join(unsafe)}")
    if "default-src" not in csp:
        problems.append("CSP has no default-src")
    if csp.get("frame-ancestors") != ["'none'"]:
        problems.append("CSP lacks frame-ancestors 'none'")
    if csp.get("object-src") != ["'none'"]:
        problems.append("CSP lacks object-src 'none'")
    return problems


def security_header_problems(headers: Mapping[str, str], *, html: bool) -> list[str]:
    """What is missing from one response's headers (lower-case names). Every response needs nosniff; an HTML
    response also needs the strict CSP (with frame-ancestors 'none') and Referrer-Policy: no-referrer."""
    problems = []
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append("X-Content-Type-Options is not nosniff")
    if html:
        problems += csp_problems(headers.get("content-security-policy"))
        if headers.get("referrer-policy", "").lower() != "no-referrer":
            problems.append("Referrer-Policy is not no-referrer")
    return problems


def is_html(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").lower().startswith("text/html")


@dataclass
class ResponseWatch:
    """Records the app's responses and the CSP violations of one browser context; `problems()` says what
    was wrong. Responses from elsewhere (pages a test serves itself) are ignored."""

    origin: str  # scheme://host:port of the app
    html_urls: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    _problems: list[str] = field(default_factory=list)
    _pending: set[asyncio.Task] = field(default_factory=set)

    def attach(self, context: BrowserContext) -> ResponseWatch:
        context.on("response", self._on_response)
        context.on("console", self._on_console)
        return self

    def _ours(self, url: str) -> bool:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" == self.origin

    def _on_response(self, response: Response) -> None:
        if not self._ours(response.url):
            return
        task = asyncio.ensure_future(self._check(response))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _check(self, response: Response) -> None:
        try:
            headers = await response.all_headers()
        except Exception:  # the context closed under us: nothing left to check
            return
        html = is_html(headers)
        if html:
            self.html_urls.append(response.url)
        for problem in security_header_problems(headers, html=html):
            self._problems.append(f"{response.status} {urlsplit(response.url).path}: {problem}")

    def _on_console(self, message: ConsoleMessage) -> None:
        url = message.page.url if message.page else ""
        if "Content Security Policy" in message.text and self._ours(url):
            self.csp_violations.append(f"{urlsplit(url).path}: {message.text}")

    async def problems(self) -> list[str]:
        """Every header problem and CSP violation seen so far (waits for pending header reads)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        return [*self._problems, *(f"CSP violation at {v}" for v in self.csp_violations)]
