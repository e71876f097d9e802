"""How the portal talks to the gateway: one httpx.AsyncClient, in-process or over the network.

By default the transport is `httpx.ASGITransport` straight into our own app: the same access checker,
cache and audit as any other SMART app, without a network hop. With `PORTAL_UI_GATEWAY_URL` set the same
client talks to a gateway elsewhere. Either way the portal never reaches the EHR itself.
"""

from __future__ import annotations

from typing import Any

import httpx

from web.tls import client_tls

from .settings import PortalUiSettings


def gateway_base(settings: PortalUiSettings) -> str:
    """Where the authorization server and /fhir live, as their own public URL (token `aud` and `iss`)."""
    return (settings.gateway_url or settings.public_url).rstrip("/")


def make_gateway_http(settings: PortalUiSettings, app: Any | None) -> httpx.AsyncClient:
    timeout = httpx.Timeout(settings.fhir_timeout_seconds, connect=5.0)
    if settings.gateway_url:
        return httpx.AsyncClient(base_url=gateway_base(settings), timeout=timeout, follow_redirects=False,
                                 verify=client_tls(),
                                 limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
    if app is None:
        raise ValueError("the in-process transport needs the app")
    # raise_app_exceptions=False: a failure inside the app comes back as its clean 500, like over HTTP.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=gateway_base(settings), timeout=timeout,
                             follow_redirects=False)
