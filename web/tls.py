"""One TLS trust context for every outgoing HTTP client of the process.

An httpx client made without one loads the CA bundle again (tens of milliseconds each, far more on a busy
machine; the JWKS fetch made a client per fetch). A context with the same trust settings is safe to share.
It honours SSL_CERT_FILE / SSL_CERT_DIR as httpx's own default does.
"""

from __future__ import annotations

import ssl
from functools import lru_cache

import httpx


@lru_cache(maxsize=1)
def client_tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()
