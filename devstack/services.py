"""The three services of the local stack, each started only when not already answering."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .procs import StackError, Started, port_open, require, spawn, wait_until

ROOT = Path(__file__).resolve().parent.parent
JAR = ROOT / "ehr_sandbox" / "target" / "ehr-sandbox.jar"


@dataclass
class StackConfig:
    state_dir: Path
    fhir_base_url: str = "http://127.0.0.1:8080/fhir"
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_redis_url: str = "redis://127.0.0.1:6380/0"
    cache_maxmemory: str = "256mb"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    ehr_jvm_flags: tuple[str, ...] = ()  # empty: EHR_JVM_FLAGS

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        return cls(
            state_dir=Path(env.get("PORTAL_STATE_DIR", ".state")).resolve(),
            fhir_base_url=env.get("PORTAL_FHIR_BASE_URL", cls.fhir_base_url),
            redis_url=env.get("PORTAL_REDIS_URL", cls.redis_url),
            cache_redis_url=env.get("PORTAL_CACHE_REDIS_URL", cls.cache_redis_url),
            gateway_port=int(urlsplit(env.get("PORTAL_PUBLIC_URL", "http://127.0.0.1:8000")).port or 8000),
            smtp_host=env.get("PORTAL_SMTP_HOST", cls.smtp_host),
            smtp_port=int(env.get("PORTAL_SMTP_PORT", cls.smtp_port)),
            ehr_jvm_flags=tuple(env.get("PORTAL_EHR_JVM_FLAGS", "").split()),
        )


def _host_port(url: str, default: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default


def _local(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


# -- Redis ------------------------------------------------------------------------------------------
def redis_ping(host: str, port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host=host, port=port, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def redis_args(port: int, data_dir: Path, *, persistent: bool, maxmemory: str | None = None) -> list[str]:
    args = [require("redis-server", "Install it with: apt-get install redis-server"),
            "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes", "--dir", str(data_dir),
            "--save", ""]
    if persistent:
        # Auth data and the audit stream must survive a restart and must never be evicted.
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
    else:
        # The cache instance: bounded memory, evicts only its own (cache) keys.
        args += ["--appendonly", "no", "--maxmemory", maxmemory or "256mb", "--maxmemory-policy", "allkeys-lru"]
    return args


def ensure_redis(url: str, state_dir: Path, started: Started, *, name: str, persistent: bool,
                 maxmemory: str | None = None) -> None:
    host, port = _host_port(url, 6379)
    if redis_ping(host, port):
        return
    if not _local(host):
        raise StackError(f"Redis at {host}:{port} is not answering (set {name} to a reachable server)")
    if port_open(host, port):
        raise StackError(f"Port {port} is busy but is not Redis; free it or set {name} to another port")
    data_dir = state_dir / f"redis-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "logs" / f"redis-{port}.log"
    proc = spawn(redis_args(port, data_dir, persistent=persistent, maxmemory=maxmemory), log)
    started.add(f"redis:{port}", proc)
    wait_until(lambda: redis_ping(host, port), 15, f"redis-server on port {port}", proc, log)


# -- the SMTP catch-all ---------------------------------------------------------------------------
def mail_folder(state_dir: Path) -> Path:
    return state_dir / "mail"


def catchall_cmd(host: str, port: int, folder: Path) -> list[str]:
    return [sys.executable, "-m", "notifications.catchall", "--host", host, "--port", str(port), "--dir", str(folder)]


def ensure_mail(host: str, port: int, state_dir: Path, started: Started) -> None:
    """The local SMTP catch-all (notices in development): started unless something already listens there
    (a catch-all of an earlier run, or a real relay the settings point at)."""
    if port_open(host, port):
        return
    if not _local(host):
        raise StackError(f"The SMTP server at {host}:{port} is not answering (check PORTAL_SMTP_HOST/PORT)")
    log = state_dir / "logs" / "smtp.log"
    proc = spawn(catchall_cmd(host, port, mail_folder(state_dir)), log, cwd=ROOT)
    started.add("smtp", proc)
    wait_until(lambda: port_open(host, port), 15, f"the SMTP catch-all on port {port}", proc, log)


# -- HAPI FHIR --------------------------------------------------------------------------------------
def ehr_ready(base_url: str) -> bool:
    try:
        return httpx.get(base_url.rstrip("/") + "/metadata", params={"_summary": "true"}, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def build_jar(quiet: bool = True) -> None:
    if JAR.exists():
        return
    mvn = require("mvn", "Maven and Java 17 are needed to build the EHR sandbox: apt-get install maven "
                  "openjdk-17-jdk-headless")
    require("java", "Java 17 is needed: apt-get install openjdk-17-jdk-headless")
    print("Building the HAPI FHIR sandbox (first run only; downloads from Maven Central)...", flush=True)
    started = time.monotonic()
    cmd = [mvn, "-B", "-q" if quiet else "-e", "-f", str(ROOT / "ehr_sandbox" / "pom.xml"), "package", "-DskipTests"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not JAR.exists():
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise StackError("Building the EHR sandbox failed: " + " | ".join(tail))
    print(f"Built {JAR.name} in {time.monotonic() - started:.0f} s", flush=True)


# The sandbox EHR's JVM. C1 only: it starts sooner, loads the fixtures sooner and answers faster for its
# first minutes of load, which is all a portal session or a test run gives it; the default JIT overtakes it
# only after minutes of sustained load (`./stack bench ehr` measures the choices; README "Benchmarks").
EHR_JVM_FLAGS = ("-Xms256m", "-Xmx1536m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


def ensure_ehr(base_url: str, state_dir: Path, started: Started, timeout: float = 240,
               jvm_flags: tuple[str, ...] = ()) -> None:
    """The EHR answering at `base_url`: reused if it does, else the sandbox started on it (`jvm_flags`, or
    EHR_JVM_FLAGS when empty)."""
    if ehr_ready(base_url):
        return
    host, port = _host_port(base_url, 8080)
    if not _local(host):
        raise StackError(f"The EHR at {base_url} is not answering; check PORTAL_FHIR_BASE_URL")
    if port_open(host, port):
        raise StackError(f"Port {port} is busy but does not answer FHIR at {base_url}; free it or change the port")
    java = require("java", "Java 17 is needed for the EHR sandbox: apt-get install openjdk-17-jdk-headless")
    build_jar()
    ehr_state = state_dir / "ehr"
    ehr_state.mkdir(parents=True, exist_ok=True)
    log = state_dir / "logs" / "ehr.log"
    env = {"EHR_PORT": str(port), "EHR_STATE_DIR": str(ehr_state), "EHR_BIND": "127.0.0.1"}
    print(f"Starting the HAPI FHIR sandbox on {base_url} ...", flush=True)
    proc = spawn([java, *(jvm_flags or EHR_JVM_FLAGS), "-jar", str(JAR)], log, env=env)
    started.add("ehr", proc)
    wait_until(lambda: ehr_ready(base_url), timeout, "The HAPI FHIR sandbox", proc, log)


def patient_count(base_url: str) -> int:
    r = httpx.get(base_url.rstrip("/") + "/Patient", params={"_summary": "count"}, timeout=30)
    r.raise_for_status()
    return int(r.json().get("total", 0))


# -- The gateway ------------------------------------------------------------------------------------
def gateway_cmd(host: str, port: int, workers: int = 1) -> list[str]:
    """`portal-serve`: uvicorn with the app factory, TLS when PORTAL_TLS_CERT/PORTAL_TLS_KEY are set."""
    return [sys.executable, "-m", "fhir_gateway.serve", "--host", host, "--port", str(port), "--workers", str(workers)]


def audit_worker_cmd() -> list[str]:
    """`portal-audit-worker`: the audit trail's background work beside gateways that only record."""
    return [sys.executable, "-m", "fhir_gateway.audit_worker"]


def start_audit_worker(env: dict[str, str], log: Path, started: Started) -> None:
    """Start the audit worker: gateway processes given `env` with PORTAL_AUDIT_EXPORT=false then only record."""
    proc = spawn(audit_worker_cmd(), log, env=env, cwd=ROOT)
    started.add("audit worker", proc)


def start_gateway(host: str, port: int, env: dict[str, str], log: Path, started: Started,
                  workers: int = 1, ca: Path | None = None) -> None:
    """Start the gateway; with `ca` it serves https (PORTAL_TLS_* in `env`) and is checked against that CA."""
    if port_open(host, port):
        raise StackError(f"Port {port} is already in use; stop what runs there or set PORTAL_PUBLIC_URL "
                         "to another port")
    proc = spawn(gateway_cmd(host, port, workers), log, env=env, cwd=ROOT)
    started.add("gateway", proc)

    scheme = "https" if ca else "http"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True

    def up() -> bool:
        try:
            return httpx.get(f"{scheme}://{host}:{port}/healthz", timeout=1, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 60, "The gateway", proc, log)
