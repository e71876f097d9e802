"""The foundation as an operator sees it: the EHR answers, and readiness follows Redis."""

from __future__ import annotations

import time

import httpx
import pytest

from devstack.procs import free_port
from tests.conftest import GatewayServer, RedisServer, start_gateway_process
from tests.integration.gateway.helpers import auth, mint

pytestmark = pytest.mark.integration


def test_ehr_answers_metadata(ehr_base_url: str) -> None:
    r = httpx.get(f"{ehr_base_url}/metadata", timeout=30)
    assert r.status_code == 200 and r.json()["fhirVersion"].startswith("4.0")


def _ready(gw: GatewayServer) -> httpx.Response:
    return httpx.get(gw.url + "/readyz", timeout=10)


@pytest.fixture
def own_stack(ehr_base_url: str, tmp_path) -> tuple[GatewayServer, RedisServer]:
    """A gateway with a Redis of its own, so stopping that Redis disturbs no other test."""
    redis_server = RedisServer(free_port(), tmp_path, tmp_path / "redis.log")
    redis_server.start()
    state = tmp_path / "gw"
    state.mkdir()
    gw = start_gateway_process(state, {"PORTAL_FHIR_BASE_URL": ehr_base_url, "PORTAL_REDIS_URL": redis_server.url,
                                       "PORTAL_CACHE_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/1"})
    yield gw, redis_server
    gw.started.stop()
    redis_server.stop()


def test_readyz_flips_with_redis(own_stack: tuple[GatewayServer, RedisServer]) -> None:
    gateway, redis_server = own_stack
    assert _ready(gateway).status_code == 200
    redis_server.stop()
    try:
        r = _ready(gateway)
        assert r.status_code == 503
        assert r.json()["checks"] == {"ehr": "up", "redis": "down", "cache": "down"}
    finally:
        redis_server.start()
    deadline = time.monotonic() + 15
    while _ready(gateway).status_code != 200:
        assert time.monotonic() < deadline, "gateway did not notice Redis coming back"
        time.sleep(0.5)
    assert _ready(gateway).json()["checks"]["redis"] == "up"


def test_first_requests_after_a_redis_restart_are_answered(own_stack: tuple[GatewayServer, RedisServer]) -> None:
    gateway, redis_server = own_stack
    token = mint(gateway, "launch/patient patient/*.rs", patient="pt-0001")
    with httpx.Client(base_url=gateway.fhir, headers=auth(token), timeout=30) as c:
        assert c.get("/Patient/pt-0001").status_code == 200  # the gateway now holds pooled Redis connections
        redis_server.stop()
        redis_server.start()  # same data (AOF): the token is still valid, the pooled connections are dead
        after = [c.get("/Patient/pt-0001").status_code for _ in range(3)]
    # No 503 for a connection that merely died with the old server: the revocation read retries once.
    assert after == [200, 200, 200]
