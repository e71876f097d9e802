"""Where to send a person after sign-in: only a path inside the portal, never another site."""

from __future__ import annotations

from urllib.parse import urlsplit

HOME = "/portal/"


def safe_next(value: str | None) -> str:
    if not value or len(value) > 500 or "\\" in value or any(ord(c) < 32 for c in value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/portal/") or "/../" in parts.path:
        return HOME
    if parts.path.startswith(("/portal/callback", "/portal/login", "/portal/static")):
        return HOME
    return value
