"""The browser's address, vouched for by the portal: which source address an audit record names.

The portal calls `/fhir` on a person's behalf, so the socket it connects from is the portal's own. It
passes the person's browser address in `X-Portal-Client-Address: <address>; ts=<unix>; sig=<hmac>`, where
the HMAC-SHA256 (keyed by a secret derived from the signing key, so only our own replicas hold it) covers
the address, the request id and the time. The gateway believes the header only when the signature
verifies, the request id is this request's and the time is recent; anything else (no header, a forged
or replayed one) falls back to the socket address. Pure functions plus one request helper.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

HEADER = "X-Portal-Client-Address"
MAX_AGE_SECONDS = 60
SECRET_LABEL = "portal-client-address"  # noqa: S105 - a key-derivation label, not a secret


def _mac(secret: bytes, address: str, request_id: str, ts: int) -> str:
    digest = hmac.new(secret, f"{address}\n{request_id}\n{ts}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def sign(secret: bytes, address: str, request_id: str, *, now: float | None = None) -> str:
    """The header value vouching that ``address`` made the request ``request_id``."""
    ts = int(time.time() if now is None else now)
    return f"{address}; ts={ts}; sig={_mac(secret, address, request_id, ts)}"


def verify(secret: bytes, header: str | None, request_id: str | None, *, now: float | None = None) -> str | None:
    """The vouched-for address, or None when the header is missing, malformed, forged, stale or for
    another request."""
    if not header or not request_id or len(header) > 200:
        return None
    parts = [p.strip() for p in header.split(";")]
    if len(parts) != 3 or not parts[1].startswith("ts=") or not parts[2].startswith("sig="):
        return None
    address, ts_text, sig = parts[0], parts[1][3:], parts[2][4:]
    if not ts_text.isdigit() or not _valid_ip(address):
        return None
    ts = int(ts_text)
    current = time.time() if now is None else now
    if abs(current - ts) > MAX_AGE_SECONDS:
        return None
    if not hmac.compare_digest(sig, _mac(secret, address, request_id, ts)):
        return None
    return address


@dataclass(frozen=True)
class ClientAddress:
    """The gateway's view: verify a request's header with the shared secret."""

    secret: bytes

    def signer(self) -> Callable[[str, str], str]:
        """What the portal is handed: ``sign(address, request_id) -> header value``."""
        return lambda address, request_id: sign(self.secret, address, request_id)

    def of(self, request: Request) -> str | None:
        socket = request.client.host if request.client else None
        vouched = verify(self.secret, request.headers.get(HEADER), getattr(request.state, "request_id", None))
        return vouched or socket


def source_address(request: Request) -> str | None:
    """The one answer to "where did this request come from" (the app puts a ClientAddress on its state)."""
    checker = getattr(request.app.state, "client_address", None) if "app" in request.scope else None
    if isinstance(checker, ClientAddress):
        return checker.of(request)
    return request.client.host if request.client else None
