"""Session fixtures shared by every integration test: the real HAPI sandbox, a private Redis and the gateway.

HAPI is reused when it already answers at PORTAL_FHIR_BASE_URL (default http://127.0.0.1:8080/fhir) and
started from the ehr_sandbox jar otherwise; the default fixtures are loaded into an empty EHR. Redis is a
private instance on a free port so tests may stop and restart it without disturbing anyone.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.procs import Started, free_port, port_open, spawn, wait_until
from devstack.services import catchall_cmd, ensure_ehr, gateway_cmd, patient_count, redis_args, redis_ping

ROOT = Path(__file__).resolve().parent.parent
FHIR_BASE = os.environ.get("PORTAL_FHIR_BASE_URL", "http://127.0.0.1:8080/fhir")
DEFAULT_PATIENTS = 25


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath) and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
        if "/e2e/" in str(item.fspath) and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack_state() -> Path:
    path = Path(os.environ.get("PORTAL_STATE_DIR", ROOT / ".state")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def ehr_base_url(stack_state: Path) -> Iterator[str]:
    """The real HAPI FHIR sandbox with the default synthetic patients loaded."""
    started = Started()
    ensure_ehr(FHIR_BASE, stack_state, started)
    if patient_count(FHIR_BASE) == 0:
        from fixtures.generate import generate
        from fixtures.loader import load_dataset

        asyncio.run(load_dataset(FHIR_BASE, generate(patients=DEFAULT_PATIENTS), progress=False))
    try:
        yield FHIR_BASE
    finally:
        started.stop()


@dataclass
class RedisServer:
    """A private redis-server on its own port that a test may stop, kill (a crash) and start again.

    ``cmd`` is the full command line; by default the project's persistent instance (AOF, noeviction).
    """

    port: int
    data_dir: Path
    log: Path
    cmd: list[str] | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(self.cmd or redis_args(self.port, self.data_dir, persistent=True), self.log)
        try:
            wait_until(lambda: redis_ping("127.0.0.1", self.port), 15, "test redis", self.proc, self.log)
        except BaseException:
            self.stop()  # a server that never answered must not outlive the run
            raise

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """A crash, not a shutdown: SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (./stack test installs it)")
    data = tmp_path_factory.mktemp("redis")
    server = RedisServer(free_port(), data, data / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class MailServer:
    """The project's SMTP catch-all (notifications/catchall.py) in its own process, on a free port: the real
    SMTP server the tests send to and read from. A test may stop it (the port then refuses connections) and
    start it again on the same port."""

    port: int
    folder: Path
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = spawn(catchall_cmd("127.0.0.1", self.port, self.folder), self.log, cwd=ROOT)
        try:
            wait_until(lambda: port_open("127.0.0.1", self.port), 15, "the SMTP catch-all", self.proc, self.log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def messages(self) -> list:
        from notifications.catchall import messages

        return messages(self.folder)

    def to(self, address: str) -> list:
        return [m for m in self.messages() if m["To"] == address]

    def link_to(self, address: str, path: str, timeout: float = 20.0) -> str:
        """The newest link to `path` (e.g. "/auth/enroll") e-mailed to `address`, once one arrived."""
        from notifications.catchall import body_of

        pattern = re.compile(r"https?://\S+" + re.escape(path) + r"\S*")
        deadline = time.monotonic() + timeout
        while True:
            links = [m.group(0) for message in self.to(address) if (m := pattern.search(body_of(message)))]
            if links or time.monotonic() > deadline:
                assert links, f"no link to {path} was e-mailed to {address} in {timeout} s"
                return links[-1]
            time.sleep(0.2)

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list:
        """The messages to `address` once at least `count` arrived (notices go out moments after they are
        queued); fails the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.to(address)
            if len(got) >= count or time.monotonic() > deadline:
                assert len(got) >= count, f"{len(got)} of {count} messages to {address} arrived in {timeout} s"
                return got
            time.sleep(0.2)


@pytest.fixture(scope="session")
def mail_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    data = tmp_path_factory.mktemp("mail")
    server = MailServer(free_port(), data / "kept", data / "smtp.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class GatewayServer:
    url: str
    state_dir: Path
    env: dict[str, str]
    log: Path
    started: Started

    @property
    def fhir(self) -> str:
        return self.url + "/fhir"


def start_gateway_process(state_dir: Path, env_extra: dict[str, str]) -> GatewayServer:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PORTAL_PUBLIC_URL": url, "PORTAL_STATE_DIR": str(state_dir), **env_extra}
    started = Started()
    log = state_dir / "gateway.log"
    proc = spawn(gateway_cmd("127.0.0.1", port), log, env=env, cwd=ROOT)
    started.add("gateway", proc)

    def up() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 60, "gateway", proc, log)
    except BaseException:
        started.stop()  # a gateway that never answered must not outlive the run
        raise
    return GatewayServer(url, state_dir, env, log, started)


@pytest.fixture(scope="session")
def gateway_extra_env() -> dict[str, str]:
    """Extra `PORTAL_*` settings for the session's gateway; a suite's conftest overrides this to add its own."""
    return {}


@pytest.fixture(scope="session")
def gateway(ehr_base_url: str, redis_server: RedisServer, mail_server: MailServer,
            tmp_path_factory: pytest.TempPathFactory, gateway_extra_env: dict[str, str]) -> Iterator[GatewayServer]:
    """The whole app as a user runs it: uvicorn in its own process, talking to real HAPI and Redis."""
    state = tmp_path_factory.mktemp("gateway-state")
    server = start_gateway_process(state, {
        "PORTAL_FHIR_BASE_URL": ehr_base_url,
        "PORTAL_REDIS_URL": redis_server.url,
        "PORTAL_CACHE_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/1",
        "PORTAL_SMTP_HOST": "127.0.0.1",
        "PORTAL_SMTP_PORT": str(mail_server.port),
        **gateway_extra_env,
    })
    try:
        yield server
    finally:
        server.started.stop()
        time.sleep(0.1)
