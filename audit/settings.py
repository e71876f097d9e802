"""Audit settings, read from `PORTAL_*` environment variables.

The values the whole app shares (state directory, Redis URL, public URL) are declared here so the audit
CLI runs without the app; inside the app the composition root hands them in from its one `PortalSettings`.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .events import EventContext

# HIPAA keeps audit documentation six years (45 CFR 164.316(b)(2)); 2,192 days covers any six years.
SIX_YEARS_DAYS = 6 * 365 + 2


def _default_consumer() -> str:
    # Unique per process so several replicas/workers share the consumer group without stealing live work.
    return f"{socket.gethostname()}-{os.getpid()}"


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    state_dir: Path = Path(".state")
    public_url: str = "http://127.0.0.1:8000"
    redis_url: str = "redis://127.0.0.1:6379/0"  # the same PORTAL_REDIS_URL the gateway uses

    # -- recording: the Redis stream, and the spool while Redis is down --------------------------------------
    audit_spool_path: Path | None = Field(default=None, description="default: <state_dir>/audit-spool.jsonl")
    audit_stream: str = "audit:events"
    audit_stream_maxlen: int | None = Field(
        default=None, description="cap on unexported stream entries; beyond it events go to the spool"
    )
    audit_site: str = "patient-portal"
    audit_observer: str = "smart-portal-gateway"
    audit_tag_system: str | None = Field(
        default=None, description="meta.tag system put on every event (default <public_url>/CodeSystem/audit-source)"
    )
    audit_tag_code: str = "smart-portal-gateway"
    audit_replay_interval: float = Field(default=5.0, gt=0, description="spool replay check interval (s)")

    # -- the store of ours: access log and retention ---------------------------------------------------------
    audit_store: Literal["sqlite", "postgresql", "none"] = Field(
        default="sqlite", description="sqlite: one file under the state dir (one node); postgresql: shared by "
                                      "replicas; none: no store (the repository serves the access log)")
    audit_store_path: Path | None = Field(default=None, description="default: <state_dir>/audit.sqlite3")
    audit_store_url: SecretStr | None = Field(
        default=None, description="postgresql://user:password@host:5432/db (for audit_store=postgresql)")
    audit_retention_days: int = Field(
        default=SIX_YEARS_DAYS, ge=0, description="events older than this leave the store (0: keep forever)")
    audit_purge_interval: float = Field(default=3600.0, gt=0, description="how often the retention purge runs (s)")

    # -- moving the stream on (into the store, or with no store straight to the repository) ------------------
    audit_export_group: str = "exporter"
    audit_export_consumer: str = Field(default_factory=_default_consumer)
    audit_heartbeat_ttl: float = Field(
        default=3.0, gt=0, description="a consumer (or exporter) silent this long is taken over (s)")
    audit_export_interval: float = Field(
        default=1.0, gt=0, description="longest idle wait, and the pause after a partial batch (s)")
    audit_export_backoff_max: float = Field(default=60.0, gt=0, description="cap of the retry backoff (s)")
    audit_export_claim_idle: float = Field(
        default=300.0, gt=0, description="last resort: take over entries pending this long even from a live consumer")

    # -- the audit record repository: FHIR AuditEvents, batched and paced ------------------------------------
    audit_repository: Literal["ehr", "fhir", "off"] = Field(
        default="ehr", description="ehr: the EHR (PORTAL_FHIR_BASE_URL); fhir: a separate FHIR server "
                                   "(IHE BALP Audit Record Repository) at audit_repository_url; off: no export")
    audit_repository_url: str | None = None
    audit_repository_token: SecretStr | None = Field(
        default=None, description="bearer token sent to a separate repository")
    audit_export_batch_size: int = Field(default=100, ge=1, le=1000, description="events per transaction")
    # 10 events/s: measured, the sandbox EHR spends 17-30 ms of CPU storing one of our AuditEvents on one
    # machine (35-48 ms on a slower one), so on its own the rate bounds the EHR's share only roughly...
    audit_export_rate: float = Field(
        default=10.0, ge=0, description="at most this many events per second to the repository (0: no limit)")
    # ...the share bounds it whatever one event costs there: the time the repository takes to answer. 0.05:
    # the sandbox EHR's CPU for a transaction is about twice the time it takes to answer it (more threads than
    # one while it answers, collection and compilation after), so about a tenth of one core on average.
    audit_export_share: float = Field(
        default=0.05, gt=0, le=1, description="at most this share of the time does the repository spend answering "
                                              "the export: a batch answered in t s is followed by "
                                              "t*(1-share)/share s of rest (1: no rest)")

    @model_validator(mode="after")
    def _consistent(self) -> AuditSettings:
        if self.audit_repository == "fhir" and not self.audit_repository_url:
            raise ValueError("PORTAL_AUDIT_REPOSITORY=fhir needs PORTAL_AUDIT_REPOSITORY_URL")
        if self.audit_store == "postgresql" and self.audit_store_url is None:
            raise ValueError("PORTAL_AUDIT_STORE=postgresql needs PORTAL_AUDIT_STORE_URL")
        return self

    @property
    def spool_path(self) -> Path:
        return self.audit_spool_path or self.state_dir / "audit-spool.jsonl"

    @property
    def store_path(self) -> Path:
        return self.audit_store_path or self.state_dir / "audit.sqlite3"

    @property
    def retention(self) -> timedelta | None:
        return timedelta(days=self.audit_retention_days) if self.audit_retention_days else None

    def event_context(self) -> EventContext:
        return EventContext(
            base_url=self.public_url,
            site=self.audit_site,
            observer=self.audit_observer,
            tag_system=self.audit_tag_system or self.public_url.rstrip("/") + "/CodeSystem/audit-source",
            tag_code=self.audit_tag_code,
        )
