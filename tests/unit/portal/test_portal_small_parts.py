"""The portal's small parts: sealed sessions, where sign-in may send a person, devices in words, and what a
page that fails says."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from portal.devices import describe_device
from portal.fhir import NotFound, NotSupported, RecordUnavailable
from portal.menu import GROUPS, PLACES, grouped_places
from portal.safe_next import safe_next
from portal.token_box import TokenBox

from .pages_harness import demo_visit


def test_sealed_values_open_only_under_their_own_key_and_place(tmp_path: Path) -> None:
    box = TokenBox.load_or_create(tmp_path)
    assert (tmp_path / "portal-session-key").stat().st_mode & 0o777 == 0o600
    sealed = box.seal(b"eyJ.secret.token", "portal:session:a")
    assert b"eyJ" not in sealed
    assert box.open(sealed, "portal:session:a") == b"eyJ.secret.token"
    assert box.open(sealed, "portal:session:b") is None  # copied under another session's key
    assert box.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), "portal:session:a") is None  # tampered
    assert TokenBox.load_or_create(tmp_path).open(sealed, "portal:session:a") == b"eyJ.secret.token"  # restart
    assert TokenBox(b"z" * 32).open(sealed, "portal:session:a") is None


def test_after_sign_in_a_person_only_goes_to_portal_pages() -> None:
    assert safe_next("/portal/results?month=2026-01") == "/portal/results?month=2026-01"
    for bad in ("", None, "https://evil.example/portal/", "//evil.example/portal/", "/auth/token",
                "/portal/../auth/x", "/portal/callback?code=x", "/portal/login", "\\\\evil", "/portal/\nx"):
        assert safe_next(bad) == "/portal/", bad


def test_devices_in_words() -> None:
    assert describe_device("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/130.0 Safari/537.36 Edg/130.0") == "Edge on Windows"
    assert describe_device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                           "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1") == "Safari on an iPhone"
    assert describe_device("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0") == \
        "Firefox on Linux"
    assert describe_device(None) == "A web browser"


@pytest.mark.parametrize(("problem", "status", "words"), [
    (NotSupported("summary"), 501, "does not offer this yet"),
    (RecordUnavailable("Observation"), 503, "not answering at the moment"),
    (NotFound("Communication"), 404, "could not find that page"),
    (ValueError("a bug"), 500, "something went wrong"),
])
async def test_a_page_that_fails_says_why_in_words_never_a_trace(tmp_path: Path, problem: Exception, status: int,
                                                                  words: str) -> None:
    visit = demo_visit(tmp_path, [], "pt-0001", datetime(2026, 3, 2))

    async def failing() -> Response:
        raise problem

    router = APIRouter(route_class=visit.portal.route_class())
    router.get("/portal/x")(failing)
    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as client:
        answer = await client.get("/portal/x")
    assert answer.status_code == status
    body = answer.text
    assert words in body.replace("&#39;", "'") and "Traceback" not in body and "a bug" not in body


def test_the_top_navigation_stays_short_and_all_pages_lists_every_page_with_a_line_each(tmp_path: Path) -> None:
    visit = demo_visit(tmp_path, [], "pt-0001", datetime(2026, 3, 2))
    page = visit.render("portal/menu.html", title="All pages", groups=grouped_places()).body.decode()
    nav = page.split('aria-label="Portal"', 1)[1].split("</nav>", 1)[0]
    assert nav.count("<li>") <= 8  # fits a phone screen in two short rows
    assert 'href="/portal/menu"' in nav and "All pages" in nav
    main = page.split("<main", 1)[1]
    for place in PLACES:
        assert f'href="{place.href}"' in main and place.says.replace("'", "&#39;") in main
    assert {p.group for p in PLACES} <= set(GROUPS)
