"""Where `./stack` starts the sandbox EHR, its JVM flags come from one place and can be overridden."""

from __future__ import annotations

import pytest

from devstack.services import EHR_JVM_FLAGS, StackConfig


def test_the_sandbox_keeps_its_quick_start_flags_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTAL_EHR_JVM_FLAGS", raising=False)
    assert StackConfig.from_env().ehr_jvm_flags == ()  # ensure_ehr then uses EHR_JVM_FLAGS
    assert "-XX:TieredStopAtLevel=1" in EHR_JVM_FLAGS


def test_jvm_flags_from_the_environment_are_split_into_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_EHR_JVM_FLAGS", "  -Xms256m -Xmx1536m\t-XX:+UseG1GC ")
    assert StackConfig.from_env().ehr_jvm_flags == ("-Xms256m", "-Xmx1536m", "-XX:+UseG1GC")
