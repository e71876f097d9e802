"""Authorization-server settings, read from `PORTAL_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    # Shared with the gateway settings (same env vars); the CLI needs them on its own.
    redis_url: str = "redis://127.0.0.1:6379/0"
    public_url: str = "http://127.0.0.1:8000"
    state_dir: Path = Path(".state")

    access_token_ttl: int = Field(default=3600, description="seconds an access token lives")
    refresh_token_ttl: int = Field(default=30 * 86_400, description="offline_access refresh token lifetime")
    online_refresh_token_ttl: int = Field(
        default=8 * 3600, description="online_access refresh token lifetime (also ends with the session)"
    )
    code_ttl: int = Field(default=60, description="authorization code lifetime")
    pending_ttl: int = Field(default=900, description="how long a half-finished authorization may wait")
    launch_ttl: int = Field(default=600, description="how long an EHR launch context can be used")
    consent_remember_ttl: int = Field(
        default=90 * 86_400, description="remember a consent decision this long; 0 = always ask"
    )
    code_reuse_window: int = Field(default=3600, description="remember redeemed codes to detect reuse")
    dynamic_registration: bool = Field(default=True, description="RFC 7591 registration at /auth/register")
    dynamic_registration_allow_system: bool = Field(
        default=False, description="let dynamically registered clients use client_credentials/system scopes"
    )
    jwks_uri_allow_remote: bool = Field(
        default=False, description="fetch client jwks_uri from non-loopback hosts"
    )
    client_assertion_max_lifetime: int = Field(default=300, description="SMART: exp at most 5 min ahead")
    clock_leeway: int = 30
    need_patient_banner: bool = True
    smart_style_url: str | None = Field(
        default=None, description="style document for embedded apps; default: the portal's own /auth/smart-style.json"
    )
