"""Shared set-up for the SMART conformance checks: a registered public app and an enrolled, signed-in
patient on the running gateway (the session `gateway` fixture), plus a second gateway serving https."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.procs import Started, free_port, spawn, wait_until
from devstack.services import gateway_cmd
from devstack.tls import TlsFiles, development_certificate
from tests.conftest import ROOT, GatewayServer, RedisServer
from tests.integration.e2e_smart.flows import AppClient, Person, browser, enrol_patient, register_public_client, sign_in

PATIENT = "pt-0003"


@pytest.fixture(scope="module")
def app(gateway: GatewayServer) -> AppClient:
    return register_public_client(gateway, "Conformance App")


@pytest.fixture(scope="module")
def patient(gateway: GatewayServer, ehr_base_url: str) -> Person:
    return enrol_patient(gateway, ehr_base_url, PATIENT)


@pytest.fixture(scope="module")
def patient_browser(gateway: GatewayServer, patient: Person) -> Iterator[httpx.Client]:
    with browser(gateway) as b:
        assert sign_in(b, patient, "/portal/").headers["location"] == "/portal/"
        yield b


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return development_certificate(tmp_path_factory.mktemp("tls-state"))


@pytest.fixture(scope="module")
def https_gateway(ehr_base_url: str, redis_server: RedisServer, tls: TlsFiles,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """The whole app served over https by uvicorn itself (PORTAL_TLS_CERT/KEY), as `./stack up --tls` runs it."""
    state = tmp_path_factory.mktemp("https-gateway-state")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    env = {"PORTAL_PUBLIC_URL": url, "PORTAL_STATE_DIR": str(state), "PORTAL_FHIR_BASE_URL": ehr_base_url,
           "PORTAL_REDIS_URL": redis_server.url, "PORTAL_CACHE_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/2",
           "PORTAL_AUDIT_EXPORT": "false", **tls.env()}
    started = Started()
    log: Path = state / "gateway.log"
    trust = ssl.create_default_context(cafile=str(tls.ca))
    started.add("gateway", spawn(gateway_cmd("127.0.0.1", port), log, env=env, cwd=ROOT))

    def up() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=1, verify=trust).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 60, "https gateway", started.procs[0][1], log)
        yield GatewayServer(url, state, env, log, started)
    finally:
        started.stop()
        time.sleep(0.1)
