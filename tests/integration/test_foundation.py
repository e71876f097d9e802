"""The foundation as an operator sees it: the EHR answers, and readiness follows Redis."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import GatewayServer, RedisServer

pytestmark = pytest.mark.integration


def test_ehr_answers_metadata(ehr_base_url: str) -> None:
    r = httpx.get(f"{ehr_base_url}/metadata", timeout=30)
    assert r.status_code == 200 and r.json()["fhirVersion"].startswith("4.0")


def _ready(gw: GatewayServer) -> httpx.Response:
    return httpx.get(gw.url + "/readyz", timeout=10)


def test_readyz_flips_with_redis(gateway: GatewayServer, redis_server: RedisServer) -> None:
    assert _ready(gateway).status_code == 200
    redis_server.stop()
    try:
        r = _ready(gateway)
        assert r.status_code == 503
        assert r.json()["checks"] == {"ehr": "up", "redis": "down"}
    finally:
        redis_server.start()
    deadline = time.monotonic() + 15
    while _ready(gateway).status_code != 200:
        assert time.monotonic() < deadline, "gateway did not notice Redis coming back"
        time.sleep(0.5)
    assert _ready(gateway).json()["checks"]["redis"] == "up"
