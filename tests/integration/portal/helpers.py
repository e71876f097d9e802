"""A person's browser against the running app's portal: sign in through the real pages (password + TOTP),
follow every redirect hop, and read pages as HTML."""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import GatewayServer
from tests.integration.e2e_smart.flows import Person, sign_in

BROWSER_ADDRESS = "203.0.113.7"  # documentation range: what uvicorn is told the browser's address is


def portal_browser(gw: GatewayServer, address: str = BROWSER_ADDRESS) -> httpx.Client:
    # uvicorn runs with --proxy-headers and trusts 127.0.0.1, so X-Forwarded-For sets the browser's address.
    return httpx.Client(base_url=gw.url, follow_redirects=False, timeout=60,
                        headers={"X-Forwarded-For": address, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) "
                                 "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"})


def follow(b: httpx.Client, response: httpx.Response, person: Person | None = None, *,
           pick: str | None = None, hops: list[str] | None = None, skip_guide: bool = True) -> httpx.Response:
    """Follow redirects as a browser would, signing in when the sign-in page is reached and choosing
    ``pick`` on the patient picker; the first-use guide after an account's first sign-in is skipped
    unless ``skip_guide`` is false. Every location is appended to ``hops``."""
    for _ in range(20):
        if response.status_code in (301, 302, 303, 307):
            location = response.headers["location"]
            if hops is not None:
                hops.append(location)
            target = urlsplit(location)
            path = target.path + (f"?{target.query}" if target.query else "")
            if target.path == "/auth/login" and person is not None and "notice" not in target.query:
                next_url = parse_qs(target.query)["next"][0]
                response = sign_in(b, person, next_url)
                continue
            response = b.get(path)
            continue
        if response.status_code == 200 and 'action="/auth/authorize/patient"' in response.text:
            html = response.text
            offered = re.findall(r'name="patient" value="([^"]+)"', html)
            choice = pick or offered[0]
            assert choice in offered, (choice, offered)
            pending = re.search(r'name="pending" value="([^"]+)"', html).group(1)
            response = b.post("/auth/authorize/patient", data={"csrf_token": csrf_of(html), "pending": pending,
                                                               "patient": choice})
            continue
        if skip_guide and response.status_code == 200 and "data-guide-skip" in response.text:
            skip = re.search(r'href="([^"]+)" data-guide-skip', response.text).group(1)
            response = b.get(unescape(skip))
            continue
        return response
    raise AssertionError("too many redirects")


def portal_sign_in(b: httpx.Client, person: Person, page: str = "/portal/", *, pick: str | None = None,
                   hops: list[str] | None = None, skip_guide: bool = True) -> httpx.Response:
    return follow(b, b.get(page), person, pick=pick, hops=hops, skip_guide=skip_guide)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def submission_of(html: str) -> str:
    """A form's one-time submission key (a resent form writes once)."""
    return re.search(r'name="submission" value="([^"]+)"', html).group(1)


def text_of(html: str) -> str:
    """The visible words of a page (tags dropped, whitespace collapsed), for asserting what a person reads."""
    body = re.sub(r"(?s)<(script|style|head)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).replace("&#39;", "'").replace("&amp;", "&").strip()


def page_showing(b: httpx.Client, path: str, *wanted: str, within: float = 20.0) -> httpx.Response:
    """`path` once it shows every wanted phrase, or as it last was after `within` seconds. For the access log:
    audit records reach the audit store moments after the request (longer when a busy machine has a backlog);
    each look is itself logged, so it looks about once a second, not in a tight loop."""
    deadline = time.monotonic() + within
    while True:
        page = b.get(path)
        if all(w in text_of(page.text) for w in wanted) or time.monotonic() >= deadline:
            return page
        time.sleep(1)


def access_log_text(b: httpx.Client, *wanted: str) -> str:
    """The visible words of the access log page once it shows every wanted phrase (see `page_showing`)."""
    return text_of(page_showing(b, "/portal/access-log", *wanted).text)


def choose_language(b: httpx.Client, page: httpx.Response, code: str) -> None:
    """The language switch on a signed-in `page`, as the person would use it: kept with the account, so every
    later sign-in opens in it too, whatever the health record's preferred language is."""
    answer = b.post("/portal/language", data={"csrf_token": csrf_of(page.text), "lang": code, "next": "/portal/"})
    assert answer.status_code == 303, answer.text[:300]
    assert f'<html lang="{code}"' in b.get("/portal/").text
