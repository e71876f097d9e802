"""Gateway settings, read from `PORTAL_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    fhir_base_url: str = "http://127.0.0.1:8080/fhir"
    redis_url: str = "redis://127.0.0.1:6379/0"
    public_url: str = "http://127.0.0.1:8000"
    state_dir: Path = Path(".state")

    upstream_connect_timeout: float = 5.0
    upstream_read_timeout: float = 30.0
    upstream_max_connections: int = 100
    upstream_retries: int = 2
    max_body_bytes: int = Field(default=1_048_576, description="largest request body accepted under /fhir")
    strict_search: bool = Field(default=True, description="refuse unknown search parameters")
    cors_allow_origins: list[str] = ["*"]
    cache_serve_stale: bool = Field(
        default=True, description="answer from a kept cache entry, marked stale, while the EHR is down"
    )
    audit_export: bool = Field(default=True, description="export the audit stream to the EHR as AuditEvents")

    @property
    def fhir_public_base(self) -> str:
        """Our FHIR base as callers see it; also the `aud` of every access token."""
        return self.public_url.rstrip("/") + "/fhir"
