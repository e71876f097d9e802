"""Account settings, read from `PORTAL_*` environment variables (one model for this package)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AccountSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    # Shared with the gateway's settings (same env vars) so the CLI can run without the app.
    redis_url: str = "redis://127.0.0.1:6379/0"
    fhir_base_url: str = "http://127.0.0.1:8080/fhir"
    public_url: str = "http://127.0.0.1:8000"
    state_dir: Path = Path(".state")

    accounts_secret_key: SecretStr | None = Field(
        default=None, description="32+ byte secret for hashing codes and sealing TOTP secrets; generated when unset"
    )
    admin_api_key: SecretStr | None = Field(default=None, description="bearer key for POST /auth/admin/invitations")

    invitation_ttl_seconds: int = 7 * 24 * 3600
    invitation_max_attempts: int = 5

    login_max_failures: int = 5
    login_failure_window_seconds: int = 15 * 60
    login_lockout_seconds: int = 15 * 60

    session_idle_seconds: int = 15 * 60
    session_absolute_seconds: int = 12 * 3600
    flow_ttl_seconds: int = 30 * 60  # pre-session state: login, enrolment and reset steps

    otp_ttl_seconds: int = 10 * 60
    otp_max_attempts: int = 5
    recovery_code_count: int = 10
    totp_issuer: str = "Patient Portal"

    default_next: str = "/portal/"
    session_cookie: str = "portal_session"
    presession_cookie: str = "portal_presession"
