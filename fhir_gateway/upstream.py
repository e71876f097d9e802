"""The one pooled HTTP client to the EHR's FHIR API.

Maps transport failures onto FHIR errors the caller understands (timeout → 504, down → 503,
EHR 5xx → 502) and retries only idempotent requests, only on connection errors. An EHR 4xx to a
request we forwarded is the caller's to see (`refusal`): same status, the EHR's OperationOutcome
cleaned of internal detail and of the EHR's own addresses.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx
import orjson

from mappers.outcome import clean_outcome
from web.tls import client_tls

from .errors import FHIRError, invalid, operation_outcome
from .http1 import Http1Transport

log = logging.getLogger("fhir_gateway.upstream")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
FHIR_JSON = "application/fhir+json"
# An EHR 4xx that is about our own credentials or setup, never the caller's request: reported as 502.
NOT_THE_CALLERS = frozenset({401, 403, 407})
_ADDRESS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)


def json_body(response: httpx.Response) -> Any:
    """The EHR's JSON answer (orjson: several times faster than json on the hot path)."""
    return orjson.loads(response.content)


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The EHR's answer when it is a JSON object, else an empty one (an empty or non-JSON body)."""
    try:
        body = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


class UpstreamDown(FHIRError):
    def __init__(self, detail: str) -> None:
        super().__init__(503, "transient", f"The EHR is not reachable: {detail}")


class UpstreamTimeout(FHIRError):
    def __init__(self) -> None:
        super().__init__(504, "timeout", "The EHR did not answer in time")


class _KeepNone(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class EhrClient(httpx.AsyncClient):
    """A client that keeps no cookies. The gateway's client to a FHIR server carries every caller's
    requests, so a cookie one answer set must never ride along on someone else's request. (It also
    spares reading every answer's headers for cookies: about 2 % of an uncached request's CPU.)"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._keep_none = _KeepNone()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._keep_none

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise AttributeError("the EHR client keeps no cookies")


def make_client(
    base_url: str, *, connect_timeout: float, read_timeout: float, max_connections: int, transport: str = "http1"
) -> httpx.AsyncClient:
    """The pooled client for one FHIR server. ``transport``: "http1" (`http1.py`, the default) or "httpx"
    (httpx's own, which respx replaces in the unit tests)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    own = httpx.AsyncHTTPTransport(verify=client_tls(), limits=limits)
    return EhrClient(
        base_url=base_url.rstrip("/") + "/",
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        headers={"Accept": FHIR_JSON},
        transport=Http1Transport(max_connections=max_connections, fallback=own) if transport == "http1" else own,
    )


class Upstream:
    """FHIR calls to the EHR. `base_url` is the EHR's own base, used to recognise its links."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, retries: int = 2) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self._host = httpx.URL(self.base_url).host
        self.retries = retries
        self._prefix = str(client.base_url) if str(client.base_url).endswith("/") else None

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
                plain = self._build_plain(method, path, params, hdrs) if json is None and content is None else None
                if plain is not None:
                    response = await self.client.send(plain)
                else:
                    kwargs: dict[str, Any] = {"params": params, "headers": hdrs}
                    if json is not None:
                        kwargs["json"] = json
                    elif content is not None:
                        kwargs["content"] = content
                    response = await self.client.request(method, path.lstrip("/"), **kwargs)
            except httpx.InvalidURL as exc:
                # Ids are checked at the edge; this is the last line should anything unchecked get here.
                raise invalid("The request names something that is not a valid FHIR address") from exc
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

    def _build_plain(self, method: str, path: str, params: Any, headers: dict[str, str]) -> httpx.Request | None:
        """A request without a body to a path under the base, built as `client.build_request` would build it
        but without joining and parsing the base URL again for every call (a third of the client's cost
        per request). None where the client's own merging is needed: a query already in the path (the
        params would be merged into it) or an absolute address."""
        if self._prefix is None or "?" in path or "://" in path:
            return None
        url = self._prefix + path.lstrip("/")
        if params:
            url += "?" + str(httpx.QueryParams(params))
        merged = httpx.Headers(self.client.headers)
        merged.update(headers)
        return httpx.Request(method, url, headers=merged, extensions={"timeout": self.client.timeout.as_dict()})

    def refusal(self, response: httpx.Response, fallback: str, *, status: int | None = None) -> FHIRError:
        """The EHR's 4xx answer as the caller's error: its status (or ``status``) and its OperationOutcome,
        cleaned of internal detail and of every address (they would name the EHR). 401/403/407 are about
        our own access to the EHR, so they are a 502 like any other failure of the EHR."""
        if response.status_code in NOT_THE_CALLERS:
            log.warning("EHR answered %s to the gateway itself", response.status_code)
            return FHIRError(502, "exception", f"The EHR refused the gateway (HTTP {response.status_code})")
        issues = [i for i in json_object(response).get("issue") or [] if isinstance(i, dict)]
        outcome = clean_outcome({"issue": issues}, fallback)
        for issue in outcome["issue"]:
            text = _ADDRESS.sub("[address]", issue["diagnostics"])
            issue["diagnostics"] = text.replace(self._host, "[address]") if self._host else text
        code = outcome["issue"][0]["code"]
        return FHIRError(status or response.status_code, code, outcome["issue"][0]["diagnostics"], outcome=outcome)

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
