"""The harness's own checks must fail on bad pages: each bar is tried on a page built to break it.

These pages are served by the browser itself (`context.route`) under a reserved host name, with the same
strict Content-Security-Policy as the product's pages; they need no app, EHR or Redis.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs

import pyotp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route

from web.security import STRICT_CSP

from .harness import (
    Authenticator,
    ResponseWatch,
    assert_no_serious_axe_violations,
    axe,
    context_options,
    csp_problems,
    fill_by_keyboard,
    layout_problems,
    security_header_problems,
    tab_walk,
)

pytestmark = pytest.mark.e2e

ORIGIN = "http://harness.invalid"
SHELL = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Harness page</title>
<link rel="stylesheet" href="/style.css"></head><body><main><h1>Harness page</h1>{body}</main></body></html>"""
STYLE = """body { font: 18px sans-serif; margin: 1rem; }
:focus-visible { outline: 3px solid #000; outline-offset: 2px; }
.no-ring:focus { outline: none; } .wide { width: 600px; height: 20px; background: #ddd; }
.tiny { font-size: 10px; padding: 0; min-height: 0; }"""
HEADERS = {"Content-Security-Policy": STRICT_CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}

Serve = Callable[[str], None]


@pytest.fixture
async def harness_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(**context_options(ORIGIN))
    context.set_default_timeout(10_000)

    async def style(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/css", body=STYLE,
                            headers={"X-Content-Type-Options": "nosniff"})

    await context.route(f"{ORIGIN}/style.css", style)
    yield context
    await context.close()


async def open_page(context: BrowserContext, body: str, headers: dict[str, str] | None = None) -> Page:
    async def serve(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=SHELL.format(body=body),
                            headers=HEADERS if headers is None else headers)

    await context.route(f"{ORIGIN}/page", serve)
    page = await context.new_page()
    await page.goto(f"{ORIGIN}/page")
    return page


async def test_axe_runs_under_the_strict_csp_and_reports_real_violations(harness_context: BrowserContext) -> None:
    page = await open_page(harness_context, """<button></button><input id="x">
        <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><script>document.title = "script ran"</script>""")
    assert await page.title() == "Harness page", "the page's CSP must be in force (no inline script ran)"
    found = {v.id: v for v in await axe(page)}
    assert {"button-name", "label", "image-alt"} <= set(found)
    assert all(found[i].blocking for i in ("button-name", "label", "image-alt"))
    with pytest.raises(AssertionError, match="button-name"):
        await assert_no_serious_axe_violations(page, "broken page")

    clean = await open_page(harness_context, """<label for="x">Your name</label><input id="x">
        <button type="button">Save</button>""")
    assert [v for v in await axe(clean) if v.blocking] == []


async def test_tab_walk_finds_unreachable_controls_and_missing_focus_rings(harness_context: BrowserContext) -> None:
    page = await open_page(harness_context, """<a href="#one">Good link</a> <a href="#two" class="no-ring">No ring</a>
        <button type="button" tabindex="-1">Mouse only</button> <label for="d">Date</label><input id="d" type="date">
        <button type="button" tabindex="3">Jumps the queue</button>""")
    walk = await tab_walk(page)
    assert any('"Good link"' in s for s in walk.stops)
    assert any('input#d' in s for s in walk.stops), "a date field (three stops inside) is one control"
    assert [d for d in walk.unreachable if "Mouse only" in d]
    assert [d for d in walk.no_indicator if "No ring" in d]
    assert not [d for d in walk.no_indicator if "Good link" in d or "input#d" in d]
    assert [d for d in walk.positive_tabindex if "Jumps the queue" in d]


async def test_fill_by_keyboard_fills_every_kind_of_field(harness_context: BrowserContext) -> None:
    posted: list[str] = []

    async def echo(route: Route) -> None:
        posted.append(route.request.post_data or "")
        await route.fulfill(status=200, content_type="text/html", body=SHELL.format(body="<p>Thanks</p>"),
                            headers=HEADERS)

    await harness_context.route(f"{ORIGIN}/echo", echo)
    page = await open_page(harness_context, """<form method="post" action="/echo">
        <label for="n">Name</label><input id="n" name="name" value="old text">
        <label for="b">Birth date</label><input id="b" name="born" type="date">
        <label for="c">Colour</label><select id="c" name="colour"><option value="">Choose</option>
          <option value="r">Red</option><option value="g">Green</option></select>
        <input type="checkbox" id="t" name="terms"><label for="t">I agree</label>
        <fieldset><legend>Contact by</legend>
          <input type="radio" id="e" name="by" value="email" checked><label for="e">E-mail</label>
          <input type="radio" id="p" name="by" value="post"><label for="p">Post</label>
          <input type="radio" id="s" name="by" value="sms"><label for="s">Text message</label></fieldset>
        <button type="submit">Send</button></form>""")
    await fill_by_keyboard(page, {"Name": "Ada Lovelace", "Birth date": "1815-12-10", "Colour": "Green",
                                  "I agree": "on", "Text message": "on"}, "Send")
    assert posted, "the form was not submitted"
    form = parse_qs(posted[0])
    assert form == {"name": ["Ada Lovelace"], "born": ["1815-12-10"], "colour": ["g"], "terms": ["on"],
                    "by": ["sms"]}


async def test_layout_check_finds_sideways_scrolling_and_tiny_buttons(harness_context: BrowserContext) -> None:
    page = await open_page(harness_context, """<div class="wide">wide</div>
        <button type="button" class="tiny">Tiny</button>""")
    problems = "\n".join(await layout_problems(page, 375))
    assert "sideways scrolling" in problems
    assert '"Tiny"' in problems and "needs 44px" in problems
    good = await open_page(harness_context, "<p>Short text.</p>")
    assert await layout_problems(good, 375) == []


async def test_response_watch_reports_missing_headers_and_csp_violations(harness_context: BrowserContext) -> None:
    watch = ResponseWatch(ORIGIN).attach(harness_context)
    await open_page(harness_context, '<p style="color: red">Inline style</p>')
    await open_page(harness_context, "<p>No headers</p>", headers={})
    problems = "\n".join(await watch.problems())
    assert "CSP violation at /page" in problems
    assert "200 /page: no Content-Security-Policy" in problems
    assert "Referrer-Policy is not no-referrer" in problems


def test_header_rules() -> None:
    strict = {"content-security-policy": STRICT_CSP, "x-content-type-options": "nosniff",
              "referrer-policy": "no-referrer"}
    assert security_header_problems(strict, html=True) == []
    assert security_header_problems({"x-content-type-options": "nosniff"}, html=False) == []
    assert security_header_problems({}, html=False) == ["X-Content-Type-Options is not nosniff"]
    loose = STRICT_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    assert csp_problems(loose) == ["CSP style-src allows 'unsafe-inline'"]
    assert "CSP lacks frame-ancestors 'none'" in csp_problems("default-src 'self'; object-src 'none'")
    assert csp_problems("frame-ancestors 'none'")  # the old consent-page policy: not strict


async def test_authenticator_never_repeats_a_code_step() -> None:
    device = Authenticator(pyotp.random_base32())
    codes = [await device.code() for _ in range(2)]
    assert len(set(device.steps_used)) == 2
    now = time.time()
    assert all(device.totp.verify(c, for_time=now, valid_window=1) for c in codes)
