"""The one pooled HTTP client to the EHR's FHIR API.

Maps transport failures onto FHIR errors the caller understands (timeout → 504, down → 503,
EHR 5xx → 502) and retries only idempotent requests, only on connection errors.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import orjson

from .errors import FHIRError, operation_outcome

log = logging.getLogger("fhir_gateway.upstream")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
FHIR_JSON = "application/fhir+json"


def json_body(response: httpx.Response) -> Any:
    """The EHR's JSON answer (orjson: several times faster than json on the hot path)."""
    return orjson.loads(response.content)


class UpstreamDown(FHIRError):
    def __init__(self, detail: str) -> None:
        super().__init__(503, "transient", f"The EHR is not reachable: {detail}")


class UpstreamTimeout(FHIRError):
    def __init__(self) -> None:
        super().__init__(504, "timeout", "The EHR did not answer in time")


def make_client(
    base_url: str, *, connect_timeout: float, read_timeout: float, max_connections: int
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"Accept": FHIR_JSON},
    )


class Upstream:
    """FHIR calls to the EHR. `base_url` is the EHR's own base, used to recognise its links."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, retries: int = 2) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.retries = retries

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        hdrs = dict(headers or {})
        if request_id:
            hdrs["X-Request-Id"] = request_id
        if json is not None or content is not None:
            hdrs.setdefault("Content-Type", FHIR_JSON)
        attempts = 1 + (self.retries if method.upper() in IDEMPOTENT else 0)
        for attempt in range(attempts):
            try:
                kwargs: dict[str, Any] = {"params": params, "headers": hdrs}
                if json is not None:
                    kwargs["json"] = json
                elif content is not None:
                    kwargs["content"] = content
                response = await self.client.request(method, path.lstrip("/"), **kwargs)
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout) and attempt + 1 < attempts:
                    continue
                log.warning("EHR timeout %s %s request_id=%s", method, path.split("?")[0], request_id)
                raise UpstreamTimeout() from exc
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.05 * (2**attempt))
                    continue
                log.warning("EHR unreachable %s request_id=%s: %s", method, request_id, type(exc).__name__)
                raise UpstreamDown(type(exc).__name__) from exc
            if response.status_code >= 500:
                log.warning("EHR %s on %s request_id=%s", response.status_code, method, request_id)
                raise FHIRError(
                    502,
                    "exception",
                    f"The EHR failed to process the request (HTTP {response.status_code})",
                    outcome=operation_outcome(
                        "error", "exception", f"The EHR failed to process the request (HTTP {response.status_code})"
                    ),
                )
            return response
        raise AssertionError("unreachable")

    async def read(self, resource_type: str, resource_id: str, request_id: str | None = None) -> dict | None:
        """Read one resource; None when the EHR does not have it (404/410)."""
        response = await self.request("GET", f"{resource_type}/{resource_id}", request_id=request_id)
        if response.status_code in (404, 410):
            return None
        if response.status_code >= 400:
            raise FHIRError(502, "exception", f"The EHR refused a read of {resource_type} ({response.status_code})")
        return json_body(response)

    async def search(
        self, resource_type: str, params: Any, request_id: str | None = None
    ) -> dict:
        response = await self.request("GET", resource_type, params=params, request_id=request_id)
        if response.status_code >= 400:
            raise FHIRError(502, "exception", f"The EHR refused a search of {resource_type} ({response.status_code})")
        return json_body(response)

    async def ping(self, timeout: float = 2.0) -> bool:
        try:
            response = await self.client.get("metadata", params={"_summary": "true"}, timeout=timeout)
            return response.status_code == 200
        except httpx.HTTPError:
            return False
