"""Bring up what a benchmark needs: the EHR (reused or started), Redis, and a gateway process."""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

from devstack.procs import StackError, Started, free_port, spawn, wait_until
from devstack.services import (
    JAR,
    StackConfig,
    audit_worker_cmd,
    ehr_ready,
    ensure_ehr,
    ensure_redis,
    gateway_cmd,
    redis_args,
    redis_ping,
)
from fixtures.context import fixture_tag
from smart_auth.keys import KeyStore

from . import runner
from .cpu import cpu_seconds, tree_cpu_seconds, wait_quiet

Run = Callable[..., Awaitable[runner.Result]]  # runner.run or wrk_runner.run


@contextmanager
def ehr_and_redis() -> Iterator[StackConfig]:
    cfg = StackConfig.from_env()
    started = Started()
    try:
        ensure_redis(cfg.redis_url, cfg.state_dir, started, name="PORTAL_REDIS_URL", persistent=True)
        ensure_redis(cfg.cache_redis_url, cfg.state_dir, started, name="PORTAL_CACHE_REDIS_URL", persistent=False)
        ensure_ehr(cfg.fhir_base_url, cfg.state_dir, started, jvm_flags=cfg.ehr_jvm_flags)
        yield cfg
    finally:
        started.stop()


class RunningGateway(NamedTuple):
    url: str
    state: Path
    pid: int  # the uvicorn process (with several workers: their parent); its CPU is the gateway's own
    worker_pid: int | None  # the audit worker beside it, or None when the gateway moves the audit stream itself

    @property
    def pids(self) -> list[int]:
        return [self.pid] if self.worker_pid is None else [self.pid, self.worker_pid]


@contextmanager
def gateway(cfg: StackConfig, extra_env: dict[str, str], workers: int = 1,
            code: Path | None = None, audit_worker: bool = True) -> Iterator[RunningGateway]:
    """A gateway process on a free port with a state directory of its own; `code`: run the gateway of another
    checkout of this repository (its directory first on the path) instead of this one. With `audit_worker`,
    as `./stack up` runs it: the gateway only records, and an audit worker beside it moves the audit stream
    on; without, the gateway process does that itself."""
    state = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PORTAL_PUBLIC_URL": url, "PORTAL_STATE_DIR": str(state), "PORTAL_FHIR_BASE_URL": cfg.fhir_base_url,
           "PORTAL_REDIS_URL": cfg.redis_url, "PORTAL_CACHE_REDIS_URL": cfg.cache_redis_url,
           # Its own audit stream: the gateway under test exports exactly its own events (a real cost, and
           # part of what is measured), never a backlog some earlier process left behind.
           "PORTAL_AUDIT_STREAM": f"audit:bench:{uuid.uuid4().hex[:12]}",
           "LOG_LEVEL": "warning", **extra_env}
    started = Started()
    if code is not None:
        env["PYTHONPATH"] = str(code)
    worker = None
    if audit_worker:
        worker = spawn(audit_worker_cmd(), state / "audit-worker.log", env=env, cwd=code)
        started.add("audit worker", worker)
    proc = spawn(gateway_cmd("127.0.0.1", port, workers), state / "gateway.log",
                 env=env | {"PORTAL_AUDIT_EXPORT": "false"} if audit_worker else env, cwd=code)
    started.add("gateway", proc)
    try:
        wait_until(lambda: _up(url), 60, "gateway", proc, state / "gateway.log")
        if worker is not None and worker.poll() is not None:
            raise StackError(f"the audit worker exited with code {worker.returncode}; see {state / 'audit-worker.log'}")
        yield RunningGateway(url, state, proc.pid, worker.pid if worker is not None else None)
    finally:
        started.stop()


async def measured(run: Run, name: str, requests: list[runner.Request], *, concurrency: int,
                   gw: RunningGateway, ehr_pid: int | None = None) -> runner.Result:
    """`run` through `gw` with the gateway's own CPU per request; with an audit worker, also the worker's
    CPU from the start of the run until it is quiet again (it has moved the run's audit events on); with
    `ehr_pid`, the cores the EHR's process used meanwhile."""
    before = tree_cpu_seconds(gw.worker_pid) if gw.worker_pid is not None else 0.0
    ehr_before, began = (cpu_seconds(ehr_pid) if ehr_pid is not None else 0.0), time.monotonic()
    result = await run(name, requests, concurrency=concurrency, cpu_pid=gw.pid)
    if ehr_pid is not None:
        result.ehr_cores = (cpu_seconds(ehr_pid) - ehr_before) / (time.monotonic() - began)
    if gw.worker_pid is not None:
        # A window longer than the worker's pause after a part batch (PORTAL_AUDIT_EXPORT_INTERVAL, 1 s):
        # a shorter one can take that pause for the end of its work.
        await wait_quiet([gw.worker_pid], window=1.5)
        result.worker_cpu = tree_cpu_seconds(gw.worker_pid) - before
    return result


async def settle_ehr(ehr_pid: int | None) -> None:
    """Until the EHR is quiet (under a tenth of a core for half a second; at most 30 s). HAPI goes on working for
    about a second after its last answer to a run (0.7 cores: saving search results, collecting), and the run
    after it would otherwise pay for that; an audit export batch under way is waited out too."""
    if ehr_pid is not None:
        await wait_quiet([ehr_pid], share=0.1, window=0.5)


def start_own_ehr(java: str, flags: list[str], state: Path, port: int, started: Started) -> tuple[int, float]:
    """A HAPI of the benchmark's own (`flags` for its JVM, its database under `state`) on `port`, answering:
    its pid and the seconds it took to answer."""
    url = f"http://127.0.0.1:{port}/fhir"
    log = state / "ehr.log"
    begun = time.monotonic()
    proc = spawn([java, *flags, "-jar", str(JAR)], log,
                 env={"EHR_PORT": str(port), "EHR_STATE_DIR": str(state / "ehr"), "EHR_BIND": "127.0.0.1"})
    started.add("ehr", proc)
    wait_until(lambda: ehr_ready(url), 1800, "the benchmark's HAPI", proc, log)
    return proc.pid, time.monotonic() - begun


@contextmanager
def hello_world() -> Iterator[tuple[str, int]]:
    """The hello-world ASGI app (`bench/hello.py`) in a process of its own: its URL and pid."""
    log = Path(tempfile.mkdtemp(prefix="bench-hello-")) / "hello.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = Started()
    proc = spawn([sys.executable, "-m", "bench.hello", "--port", str(port)], log)
    started.add("hello-world app", proc)
    try:
        wait_until(lambda: _up(url, "/"), 30, "hello-world app", proc, log)
        yield url, proc.pid
    finally:
        started.stop()


def wait_for_change_feed(url: str, timeout: float = 60) -> None:
    """Until the gateway's change feed has completed a round (reported by /readyz)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        feed = httpx.get(url + "/readyz", timeout=10).json().get("change_feed") or {}
        if feed.get("seconds_since_success") is not None:
            return
        time.sleep(0.2)
    raise SystemExit("the gateway's change feed never completed a round; see its log")


def _up(url: str, path: str = "/healthz") -> bool:
    try:
        return httpx.get(url + path, timeout=1).status_code == 200
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
    """The first ``n`` patients (by id) of the fixture set, following the EHR's pages. Only the fixture set's:
    an EHR that tests have used also holds patients they made, most with no records at all, and a workload
    over those would measure empty answers."""
    tag = fixture_tag("")
    ids: list[str] = []
    url: str | None = f"{base}/Patient"
    params: dict[str, str | int] | None = {"_count": min(n, 1000), "_elements": "id", "_sort": "_id",
                                           "_tag": f"{tag['system']}|{tag['code']}"}
    with httpx.Client(timeout=120) as client:
        while url and len(ids) < n:
            bundle = client.get(url, params=params).json()
            ids += [e["resource"]["id"] for e in bundle.get("entry", [])]
            url = next((lk["url"] for lk in bundle.get("link", []) if lk.get("relation") == "next"), None)
            params = None
    if not ids:
        raise SystemExit("The EHR holds no fixture patients; run ./stack up once (it loads the fixtures)")
    return ids[:n]


@contextmanager
def private_cache_redis(maxmemory: str = "1gb") -> Iterator[str]:
    """A cache Redis of the benchmark's own, so its memory can be measured from empty."""
    data = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    port = free_port()
    started = Started()
    proc = spawn(redis_args(port, data, persistent=False, maxmemory=maxmemory), data / "redis.log")
    started.add("cache redis", proc)
    try:
        wait_until(lambda: redis_ping("127.0.0.1", port), 15, "cache redis", proc, data / "redis.log")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        started.stop()
