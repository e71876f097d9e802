"""Bring up what a benchmark needs: the EHR (reused or started), Redis, and a gateway process."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devstack.procs import Started, free_port, spawn, wait_until
from devstack.services import StackConfig, ensure_ehr, ensure_redis, gateway_cmd
from smart_auth.keys import KeyStore


@contextmanager
def ehr_and_redis() -> Iterator[StackConfig]:
    cfg = StackConfig.from_env()
    started = Started()
    try:
        ensure_redis(cfg.redis_url, cfg.state_dir, started, name="PORTAL_REDIS_URL", persistent=True)
        ensure_redis(cfg.cache_redis_url, cfg.state_dir, started, name="PORTAL_CACHE_REDIS_URL", persistent=False)
        ensure_ehr(cfg.fhir_base_url, cfg.state_dir, started)
        yield cfg
    finally:
        started.stop()


@contextmanager
def gateway(cfg: StackConfig, extra_env: dict[str, str], workers: int = 1) -> Iterator[tuple[str, Path]]:
    state = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PORTAL_PUBLIC_URL": url, "PORTAL_STATE_DIR": str(state), "PORTAL_FHIR_BASE_URL": cfg.fhir_base_url,
           "PORTAL_REDIS_URL": cfg.redis_url, "PORTAL_CACHE_REDIS_URL": cfg.cache_redis_url,
           "LOG_LEVEL": "warning", **extra_env}
    started = Started()
    proc = spawn(gateway_cmd("127.0.0.1", port, workers), state / "gateway.log", env=env)
    started.add("gateway", proc)
    try:
        wait_until(lambda: _up(url), 60, "gateway", proc, state / "gateway.log")
        yield url, state
    finally:
        started.stop()


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def patient_tokens(url: str, state: Path, patients: list[str]) -> dict[str, str]:
    keys = KeyStore.load_or_create(state / "signing-key.pem")
    now = int(time.time())
    return {
        p: keys.sign({"iss": url, "sub": f"bench-{p}", "aud": url + "/fhir", "iat": now, "exp": now + 3600,
                      "jti": uuid.uuid4().hex, "client_id": "bench", "patient": p,
                      "fhirUser": f"{url}/fhir/Patient/{p}", "scope": "launch/patient patient/*.rs"})
        for p in patients
    }


def fixture_patients(base: str, n: int) -> list[str]:
    bundle = httpx.get(f"{base}/Patient", params={"_count": n, "_elements": "id", "_sort": "_id"}, timeout=60).json()
    ids = [e["resource"]["id"] for e in bundle.get("entry", [])]
    if not ids:
        raise SystemExit("The EHR has no patients; run ./stack up once (it loads the fixtures)")
    return ids
