"""`next=` handling: only local paths, so the login page cannot be used as an open redirect."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(value: str | None, default: str = "/portal/") -> str:
    """Return `value` when it is a path on this site, else `default`."""
    if not value or len(value) > 2048:
        return default
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value) or "\\" in value:
        return default  # browsers treat "\" like "/" and strip tabs/newlines: "/\evil.com" escapes
    if not value.startswith("/") or value.startswith("//"):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value
