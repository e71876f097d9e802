"""Which audit parts a deployment gets from its settings (PORTAL_AUDIT_STORE / _REPOSITORY)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from audit.exporter import AuditExporter
from audit.feeder import StoreFeeder
from audit.settings import AuditSettings
from audit.sqlite_store import SqliteAuditStore
from audit.store_export import StoreExporter
from audit.workers import AuditWorkers
from fhir_gateway.settings import PortalSettings


class FakeRedis:
    def register_script(self, script: str) -> Any:
        return None


EHR = object()  # stands for the repository's FHIR client


def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> AuditSettings:
    for name in [n for n in os.environ if n.startswith("PORTAL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(f"PORTAL_{name}", value)
    return PortalSettings.load(state_dir=tmp_path).audit


def test_defaults_store_on_this_node_export_to_the_ehr_keep_six_years(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    audit = settings(tmp_path, monkeypatch)
    assert (audit.audit_store, audit.audit_repository) == ("sqlite", "ehr")
    assert audit.store_path == tmp_path / "audit.sqlite3"
    assert audit.retention is not None and audit.retention.days == 2192
    workers = AuditWorkers.build(FakeRedis(), audit, EHR)  # type: ignore[arg-type]
    assert isinstance(workers.store, SqliteAuditStore) and workers.store.path == tmp_path / "audit.sqlite3"
    assert isinstance(workers.mover, StoreFeeder) and workers.mover.export
    assert isinstance(workers.exporter, StoreExporter) and workers.exporter.repository.client is EHR
    assert workers.exporter.rate.rate == 10  # paced: a tenth of a two-core EHR at most (audit/README.md)
    assert workers.access_log(EHR) is workers.store  # type: ignore[arg-type]


def test_export_off_still_stores_and_keeps_nothing_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audit = settings(tmp_path, monkeypatch, AUDIT_REPOSITORY="off", AUDIT_RETENTION_DAYS="0")
    workers = AuditWorkers.build(FakeRedis(), audit, None)  # type: ignore[arg-type]
    assert isinstance(workers.mover, StoreFeeder) and not workers.mover.export
    assert workers.exporter is None and workers.retention is None


def test_without_a_store_the_stream_goes_straight_to_the_repository(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    audit = settings(tmp_path, monkeypatch, AUDIT_STORE="none", AUDIT_EXPORT_RATE="25")
    workers = AuditWorkers.build(FakeRedis(), audit, EHR)  # type: ignore[arg-type]
    assert workers.store is None and workers.exporter is None
    assert isinstance(workers.mover, AuditExporter) and workers.mover.rate.rate == 25
    assert workers.mover.rate.share == 0.05  # by default the repository answers the export 5 % of the time
    assert type(workers.access_log(EHR)).__name__ == "EhrAccessLog"  # type: ignore[arg-type]
    no_limit = settings(tmp_path, monkeypatch, AUDIT_STORE="none", AUDIT_EXPORT_RATE="0", AUDIT_EXPORT_SHARE="1")
    unpaced = AuditWorkers.build(FakeRedis(), no_limit, EHR)  # type: ignore[arg-type]
    assert isinstance(unpaced.mover, AuditExporter) and unpaced.mover.rate.rate is None  # 0: no limit
    assert unpaced.mover.rate.share is None  # 1: no rest


def test_a_separate_repository_gets_its_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audit = settings(tmp_path, monkeypatch, AUDIT_REPOSITORY="fhir", AUDIT_REPOSITORY_URL="https://arr.example.org/fhir",
                     AUDIT_REPOSITORY_TOKEN="s3cret")
    workers = AuditWorkers.build(FakeRedis(), audit, EHR)  # type: ignore[arg-type]
    assert workers.exporter is not None
    assert workers.exporter.repository.headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(audit)


@pytest.mark.parametrize("env", [{"AUDIT_REPOSITORY": "fhir"}, {"AUDIT_STORE": "postgresql"},
                                 {"AUDIT_EXPORT_RATE": "-1"}, {"AUDIT_STORE": "mysql"},
                                 {"AUDIT_EXPORT_SHARE": "0"}, {"AUDIT_EXPORT_SHARE": "1.5"}])
def test_incomplete_settings_are_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        settings(tmp_path, monkeypatch, **env)
