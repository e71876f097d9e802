"""Audit settings, read from `PORTAL_*` environment variables."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .events import EventContext


def _default_consumer() -> str:
    # Unique per process so several replicas/workers share the consumer group without stealing live work.
    return f"{socket.gethostname()}-{os.getpid()}"


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    state_dir: Path = Path(".state")
    public_url: str = "http://127.0.0.1:8000"
    redis_url: str = "redis://127.0.0.1:6379/0"  # the same PORTAL_REDIS_URL the gateway uses

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

    audit_export_group: str = "exporter"
    audit_export_consumer: str = Field(default_factory=_default_consumer)
    audit_export_batch_size: int = Field(default=100, ge=1, le=1000)
    audit_export_interval: float = Field(default=1.0, gt=0, description="idle wait between export polls (s)")
    audit_export_backoff_max: float = Field(default=60.0, gt=0, description="cap of the retry backoff (s)")
    audit_export_claim_idle: float = Field(
        default=60.0, gt=0, description="take over other consumers' entries pending this long (s)"
    )
    audit_replay_interval: float = Field(default=5.0, gt=0, description="spool replay check interval (s)")

    @property
    def spool_path(self) -> Path:
        return self.audit_spool_path or self.state_dir / "audit-spool.jsonl"

    def event_context(self) -> EventContext:
        return EventContext(
            base_url=self.public_url,
            site=self.audit_site,
            observer=self.audit_observer,
            tag_system=self.audit_tag_system or self.public_url.rstrip("/") + "/CodeSystem/audit-source",
            tag_code=self.audit_tag_code,
        )
