"""Notification settings (`PORTAL_SMTP_*`, `PORTAL_NOTICE_*`, `PORTAL_SMS_NOTIFIER`).

The defaults send to the local SMTP catch-all that `./stack up` starts (127.0.0.1:8025, no TLS, no login).
A real relay: set PORTAL_SMTP_HOST/PORT, PORTAL_SMTP_USERNAME/PASSWORD and PORTAL_SMTP_TLS=starttls (or tls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    # shared with the rest of the app (handed in by PortalSettings)
    public_url: str = "http://127.0.0.1:8000"
    state_dir: Path = Path(".state")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=8025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # auto: STARTTLS when the server offers it; starttls: required; tls: implicit TLS (port 465); none: plain.
    smtp_tls: Literal["auto", "starttls", "tls", "none"] = "auto"
    smtp_from: str = "Patient portal <no-reply@portal.localhost>"
    smtp_timeout: float = Field(default=10.0, gt=0)

    # The Notifier for text messages, as module:Class (see notifications/sms.py for what a real one provides).
    sms_notifier: str = "notifications.sms:LoggingSmsNotifier"

    notice_send: bool = Field(default=True, description="this process sends queued notices (one or more may)")
    # Without an explicit key, the same notice (same person, kind and link) is sent once in this window.
    notice_key_ttl: int = Field(default=86_400, ge=60)
    notice_backoff_initial: float = Field(default=1.0, gt=0)
    notice_backoff_max: float = Field(default=60.0, gt=0)
    portal_name: str = "patient portal"
    # Visit reminders: booked visits starting within this many hours get a reminder (0: none), looked for
    # this often.
    notice_reminder_hours: int = Field(default=24, ge=0, le=24 * 14)
    notice_reminder_interval: float = Field(default=900.0, ge=5)
