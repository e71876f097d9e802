"""Where `./stack` starts the sandbox EHR, its JVM flags come from one place and can be overridden; `./stack up`
runs an audit worker beside the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.procs import Started
from devstack.services import EHR_JVM_FLAGS, StackConfig


def test_the_sandbox_keeps_its_quick_start_flags_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTAL_EHR_JVM_FLAGS", raising=False)
    assert StackConfig.from_env().ehr_jvm_flags == ()  # ensure_ehr then uses EHR_JVM_FLAGS
    assert "-XX:TieredStopAtLevel=1" in EHR_JVM_FLAGS


def test_jvm_flags_from_the_environment_are_split_into_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_EHR_JVM_FLAGS", "  -Xms256m -Xmx1536m\t-XX:+UseG1GC ")
    assert StackConfig.from_env().ehr_jvm_flags == ("-Xms256m", "-Xmx1536m", "-XX:+UseG1GC")


def test_stack_up_runs_an_audit_worker_beside_a_gateway_that_only_records(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import devstack.__main__ as stack

    monkeypatch.setenv("PORTAL_STATE_DIR", str(tmp_path))
    started: dict[str, dict[str, str]] = {}

    class Exited:
        pid = 0
        returncode = 3

        def poll(self) -> int:
            return 3  # the worker died: the stack must stop and say so

    def worker(env: dict[str, str], log: Path, procs: Started) -> None:
        started["worker"] = env
        procs.add("audit worker", Exited())  # type: ignore[arg-type]

    def gateway(host: str, port: int, env: dict[str, str], *args: object, **kwargs: object) -> None:
        started["gateway"] = env

    monkeypatch.setattr(stack, "services", lambda *args: None)
    monkeypatch.setattr(stack, "start_audit_worker", worker)
    monkeypatch.setattr(stack, "start_gateway", gateway)
    monkeypatch.setattr(stack, "print_urls", lambda *args: None)
    monkeypatch.setattr(Started, "stop", lambda self, timeout=20.0: None)
    monkeypatch.setattr(stack.signal, "signal", lambda *args: None)  # not this test process's SIGTERM

    assert stack.main(["up"]) == 1
    assert started["gateway"]["PORTAL_AUDIT_EXPORT"] == "false"
    assert "PORTAL_AUDIT_EXPORT" not in started["worker"]
    # The same state (audit store, spool) and the same Redis (the stream) for both.
    for name in ("PORTAL_STATE_DIR", "PORTAL_REDIS_URL", "PORTAL_FHIR_BASE_URL"):
        assert started["worker"][name] == started["gateway"][name]
    assert "audit worker stopped unexpectedly" in capsys.readouterr().err
