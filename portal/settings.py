"""The patient web portal's settings (`PORTAL_UI_*`), one section of the app's `PortalSettings`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalUiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_UI_", extra="ignore")

    # Shared values, handed in by the composition root (read once as PORTAL_PUBLIC_URL etc.).
    public_url: str = "http://127.0.0.1:8000"
    redis_url: str = "redis://127.0.0.1:6379/0"
    state_dir: Path = Path(".state")
    appointment_change_notice_hours: int = 24  # the gateway enforces it; the portal says it before anyone tries

    gateway_url: str | None = Field(
        default=None,
        description="base URL of the gateway when the portal runs apart from it (e.g. https://gw.example.org); "
                    "unset: the portal calls the gateway in-process",
    )
    client_id: str | None = Field(
        default=None,
        description="the portal's OAuth client id; unset: 'patient-portal-' plus a fingerprint of the public URL, "
                    "so gateways with different public URLs sharing one Redis never overwrite each other's client",
    )
    client_name: str = Field(default="the patient portal", description="how the access log names the portal")
    idle_timeout_seconds: int = Field(default=15 * 60, description="a portal session ends after this long idle")
    idle_warning_seconds: int = Field(default=2 * 60, description="warn this long before an idle sign-out")
    max_session_seconds: int = Field(default=12 * 3600, description="a portal session never outlives this")
    refresh_margin_seconds: int = Field(default=120, description="refresh the access token this long before it ends")
    cookie_name: str = "portal_app"
    timezone: str = Field(default="America/Chicago", description="the clinic's time zone for dates and times")
    region: str = Field(default="US", pattern=r"^[A-Z]{2}$",
                        description="the clinic's region: how dates, times and numbers are written in each language "
                                    "(Spanish in the US: 2:30 p.m., 5.1; in ES: 14:30, 5,1)")
    login_ttl_seconds: int = Field(default=15 * 60, description="how long a started sign-in may take")
    fhir_timeout_seconds: float = Field(default=20.0, description="longest wait for one FHIR call")

    @property
    def oauth_client_id(self) -> str:
        if self.client_id:
            return self.client_id
        return "patient-portal-" + hashlib.sha256(self.public_url.rstrip("/").encode()).hexdigest()[:10]

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/portal/callback"

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")
