"""The portal when things go wrong or happen at once: the EHR down (pages show what the gateway kept, marked
as not current, and say plainly what is missing), and two tabs refreshing the same session's token at the
same moment (one refresh, both pages work, the grant survives)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.requests import Request

from portal.core import Portal, PortalDeps
from portal.sessions import SESSION_KEY, Tokens, sha256_hex
from portal.settings import PortalUiSettings
from tests.conftest import GatewayServer, RedisServer, start_gateway_process
from tests.integration.e2e_smart.flows import enrol_patient
from tests.tcp_proxy import TcpProxy

from .helpers import portal_browser, portal_sign_in, text_of

pytestmark = pytest.mark.integration
PATIENT = "pt-0003"


def own_gateway(state: Path, redis_server: RedisServer, db: int, env: dict[str, str]) -> GatewayServer:
    state.mkdir(parents=True, exist_ok=True)
    return start_gateway_process(state, {
        "LOG_LEVEL": "warning", "PORTAL_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/{db}",
        "PORTAL_CACHE_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/{db + 1}", **env})


@pytest.fixture
async def ehr_proxy(ehr_base_url: str) -> Any:
    url = httpx.URL(ehr_base_url)
    proxy = TcpProxy(url.host, url.port or 80, url.path)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_ehr_down_pages_show_kept_data_marked_not_current(ehr_proxy: TcpProxy, ehr_base_url: str,
                                                                redis_server: RedisServer, tmp_path: Path) -> None:
    gw = own_gateway(tmp_path / "gw", redis_server, 6, {
        "PORTAL_FHIR_BASE_URL": ehr_proxy.base_url, "PORTAL_CACHE_TTL": "1", "PORTAL_UPSTREAM_RETRIES": "0",
        "PORTAL_UPSTREAM_CONNECT_TIMEOUT": "1"})
    try:
        person = await asyncio.to_thread(enrol_patient, gw, ehr_base_url, PATIENT)

        pages: dict[str, Any] = {}
        with portal_browser(gw) as b:
            assert (await asyncio.to_thread(portal_sign_in, b, person, "/portal/record")).status_code == 200
            await asyncio.sleep(1.5)  # past the cache's freshness: kept answers are only servable as stale now
            await ehr_proxy.stop()
            for path in ("/portal/record", "/portal/results", "/portal/download/record.json"):
                pages[path] = await asyncio.to_thread(b.get, path)
            await ehr_proxy.start()
            pages["back"] = await asyncio.to_thread(b.get, "/portal/record")
    finally:
        gw.started.stop()
    record = pages["/portal/record"]
    text = text_of(record.text)
    assert record.status_code == 200, record.text[:500]
    assert "This may not be up to date." in text and "what we last had" in text
    assert "Health problems" in text and "Vaccinations" in text
    # A page whose answers were never kept says what it cannot show, in words; no stack trace anywhere.
    results = pages["/portal/results"]
    assert results.status_code in (200, 503)
    assert "can't be shown right now" in text_of(results.text) or "can't show this right now" in text_of(results.text)
    download = pages["/portal/download/record.json"]
    assert download.status_code == 503 and "not answering right now" in text_of(download.text)
    for page in (record, results, download):
        assert "Traceback" not in page.text and "Exception" not in page.text
    assert "This may not be up to date" not in text_of(pages["back"].text)


async def test_two_tabs_refreshing_at_once_both_work_and_the_grant_survives(
        ehr_base_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    # Access tokens of 125 s and a refresh margin of 120 s: five seconds after sign-in every page refreshes.
    gw = own_gateway(tmp_path / "gw", redis_server, 8, {"PORTAL_FHIR_BASE_URL": ehr_base_url,
                                                       "PORTAL_ACCESS_TOKEN_TTL": "125"})
    try:
        person = await asyncio.to_thread(enrol_patient, gw, ehr_base_url, PATIENT)
        with portal_browser(gw) as first:
            assert (await asyncio.to_thread(portal_sign_in, first, person)).status_code == 200
            with portal_browser(gw) as second:
                second.cookies = first.cookies  # the same browser, a second tab
                await asyncio.sleep(6)
                with ThreadPoolExecutor(2) as pool:
                    both = list(pool.map(lambda pair: pair[0].get(pair[1]),
                                         [(first, "/portal/record"), (second, "/portal/results")]))
                await asyncio.sleep(6)
                later = await asyncio.to_thread(first.get, "/portal/")
    finally:
        gw.started.stop()
    for page in both:
        assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    assert "Health problems" in text_of(both[0].text) and "Lab results" in text_of(both[1].text)
    # Had the rotated refresh token been used twice, the whole grant would be gone and this would be sign-in.
    assert later.status_code == 200 and "Your next visits" in text_of(later.text)


class CountingOAuth:
    """Stands in for the token endpoint: counts refreshes and takes a while, as a real one can."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def refresh(self, tokens: Tokens, request_id: str | None = None) -> Tokens:
        self.refreshes += 1
        await asyncio.sleep(0.3)
        return Tokens(f"access-{self.refreshes}", time.time() + 3600, f"refresh-{self.refreshes}", tokens.scope)


async def test_one_refresh_for_two_tabs_and_a_stale_tab_never_brings_the_old_token_back(
        redis_server: RedisServer, tmp_path: Path) -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{redis_server.port}/10")
    portal = Portal(PortalDeps(settings=PortalUiSettings(state_dir=tmp_path), redis=redis, clients=None,  # type: ignore[arg-type]
                               signins=None, accounts=None, app=object()))  # type: ignore[arg-type]
    oauth = CountingOAuth()
    portal.oauth = oauth  # type: ignore[assignment]
    request = Request({"type": "http", "method": "GET", "path": "/portal/", "headers": [], "query_string": b""})
    try:
        cookie, _ = await portal.store.create(
            account_id="acct", fhir_user="Patient/pt-x", patient_id="pt-x", patient_name="X",
            tokens=Tokens("access-0", time.time() + 30, "refresh-0"), device="", address=None)
        stale_raw = await redis.get(SESSION_KEY.format(sha256_hex(cookie)))
        tabs = [await portal.store.load(cookie) for _ in range(2)]
        fresh = await asyncio.gather(*(portal.fresh_tokens(request, tab) for tab in tabs))  # type: ignore[arg-type]
        assert oauth.refreshes == 1
        assert [s.tokens.access_token for s in fresh] == ["access-1", "access-1"]
        # A tab that read the session before the refresh slides its idle time afterwards: the new tokens stay.
        stale = portal.store._open(sha256_hex(cookie), stale_raw)
        assert stale is not None
        await portal.store._touch(stale, stale_raw)
        kept = await portal.store.load(cookie)
        assert kept is not None and kept.tokens.refresh_token == "refresh-1"
    finally:
        await portal.close()
        await redis.aclose()
