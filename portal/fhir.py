"""The portal's FHIR client for one page request: the person's access token, the browser's address
(signed, for the audit trail) and a request id per call, against the gateway's /fhir.

Answers come back as plain dicts. What a page needs to know about trouble is raised as one of a few
errors (the record system is down, the session has ended, not found, refused), and an answer the gateway
served from its cache while the EHR was down is remembered as stale, so the page can say it is not current.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

CLIENT_ADDRESS_HEADER = "X-Portal-Client-Address"
MAX_PAGES = 50


class FhirProblem(Exception):
    """Base of what a FHIR call can go wrong with, as a page sees it."""


class RecordUnavailable(FhirProblem):
    """The record system (or the gateway) cannot answer right now."""


class SessionEnded(FhirProblem):
    """The token was refused (revoked, expired): the person must sign in again."""


class NotFound(FhirProblem):
    """Nothing there, or nothing this person may see (the gateway answers both alike)."""


class Refused(FhirProblem):
    """The gateway refused the request itself."""


class OutsideCareTeam(Refused):
    """A staff member asked for the record of a patient whose care team they are not on (the gateway's
    OperationOutcome says `security`): the page may offer break-the-glass access with a reason."""


class NotSupported(FhirProblem):
    """The EHR does not offer this operation."""


class WriteRefused(FhirProblem):
    """The gateway would not make a change the person asked for; `reason` is its words (safe to show)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass
class Staleness:
    """Collects, per page, which answers were served from the gateway's cache while the EHR was down."""

    stale: list[str] = field(default_factory=list)
    oldest_age: int = 0

    def note(self, what: str, response: httpx.Response) -> None:
        if response.headers.get("x-cache", "").upper() == "STALE":
            self.stale.append(what)
            age = response.headers.get("age", "")
            if age.isdigit():
                self.oldest_age = max(self.oldest_age, int(age))


class PortalFhir:
    def __init__(self, http: httpx.AsyncClient, fhir_base: str, access_token: str, *, request_id: str,
                 client_address: str | None, sign_address: Callable[[str, str], str] | None,
                 extra_headers: dict[str, str] | None = None) -> None:
        self.http = http
        self.extra_headers = dict(extra_headers or {})
        self.base = fhir_base.rstrip("/")
        self.token = access_token
        self.request_id = request_id[:48]
        self.client_address = client_address
        self.sign_address = sign_address
        self.staleness = Staleness()
        self._seq = itertools.count(1)
        self.calls: list[tuple[str, float]] = []  # (what, seconds): for the benchmark's page/slowest-call ratio

    def _headers(self) -> dict[str, str]:
        rid = f"{self.request_id}.{next(self._seq)}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/fhir+json", "X-Request-Id": rid,
                   **self.extra_headers}
        if self.client_address and self.sign_address:
            headers[CLIENT_ADDRESS_HEADER] = self.sign_address(self.client_address, rid)
        return headers

    async def _get(self, url: str, params: Any = None, what: str = "") -> dict[str, Any]:
        started = time.perf_counter()
        try:
            response = await self.http.get(url, params=params, headers=self._headers())
        except httpx.HTTPError as exc:
            raise RecordUnavailable(what) from exc
        self.calls.append((what, time.perf_counter() - started))
        status = response.status_code
        if status == 401:
            raise SessionEnded(what)
        if status == 501 or (status >= 400 and _issue_code(response) == "not-supported"):
            raise NotSupported(what)
        if status in (404, 410):
            raise NotFound(what)
        if status == 403:
            raise OutsideCareTeam(what) if _issue_code(response) == "security" else Refused(what)
        if status >= 500 or status == 429:
            raise RecordUnavailable(what)
        if status >= 400:
            raise Refused(what)
        self.staleness.note(what, response)
        try:
            body = response.json()
        except ValueError as exc:
            raise RecordUnavailable(what) from exc
        if not isinstance(body, dict):
            raise RecordUnavailable(what)
        return body

    def _own(self, url: str) -> str:
        """A paging link the gateway gave us, as long as it points back at our FHIR base (the token
        must never go anywhere else)."""
        if not url.startswith(self.base + "/") and not url.startswith(self.base + "?"):
            raise Refused("paging link outside the FHIR base")
        return url

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        return await self._get(f"{self.base}/{resource_type}/{resource_id}", what=resource_type)

    async def search(self, resource_type: str, params: list[tuple[str, str]] | None = None, *,
                     all_pages: bool = True, max_pages: int = MAX_PAGES) -> list[dict[str, Any]]:
        """The matching resources (`search.mode` match and include), following `next` links."""
        out: list[dict[str, Any]] = []
        async for bundle in self.bundles(f"{self.base}/{resource_type}", params or [], resource_type,
                                         max_pages if all_pages else 1):
            out.extend(resources_of(bundle))
        return out

    async def bundles(self, url: str, params: Any, what: str, max_pages: int = MAX_PAGES
                      ) -> AsyncIterator[dict[str, Any]]:
        """Each page of a search or operation, in order, until there is no `next` (or ``max_pages``)."""
        bundle = await self._get(url, params, what)
        yield bundle
        for _ in range(max_pages - 1):
            following = next_link(bundle)
            if not following:
                return
            bundle = await self._get(self._own(following), None, what)
            yield bundle

    async def everything(self, patient_id: str, page_size: int = 200,
                         types: tuple[str, ...] = ()) -> AsyncIterator[dict[str, Any]]:
        params = [("_count", str(page_size))] + ([("_type", ",".join(types))] if types else [])
        async for bundle in self.bundles(f"{self.base}/Patient/{patient_id}/$everything", params, "everything",
                                         max_pages=10_000):
            yield bundle

    async def summary(self, patient_id: str) -> dict[str, Any]:
        """The International Patient Summary document (`Patient/$summary`)."""
        return await self._get(f"{self.base}/Patient/{patient_id}/$summary", what="summary")

    async def write(self, method: str, path: str, body: dict[str, Any], *, idempotency_key: str,
                    if_match: str | None = None) -> dict[str, Any]:
        """Create (POST Type) or update (PUT Type/id) through the gateway. The Idempotency-Key names one
        form submission: sending it again returns the first answer instead of writing twice."""
        headers = {**self._headers(), "Content-Type": "application/fhir+json", "Idempotency-Key": idempotency_key}
        if if_match:
            headers["If-Match"] = if_match
        what = path.split("/", 1)[0]
        try:
            response = await self.http.request(method, f"{self.base}/{path}", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RecordUnavailable(what) from exc
        status = response.status_code
        if status == 401:
            raise SessionEnded(what)
        if status in (404, 410):
            raise NotFound(what)
        if status >= 500 or status == 429:
            raise RecordUnavailable(what)
        if status >= 400:
            raise WriteRefused(_diagnostics(response) or "That change could not be made.", status)
        try:
            answer = response.json()
        except ValueError as exc:
            raise RecordUnavailable(what) from exc
        return answer if isinstance(answer, dict) else {}

    async def get_json(self, path: str, params: Any = None, what: str = "") -> dict[str, Any]:
        """A non-FHIR JSON API of the gateway (e.g. /portal/api/access-log), with the same token."""
        root = self.base.rsplit("/fhir", 1)[0]
        return await self._get(root + path, params, what or path)


def resources_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            and (e.get("search") or {}).get("mode", "match") in ("match", "include")]


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _diagnostics(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    issues = body.get("issue") if isinstance(body, dict) else None
    if isinstance(issues, list) and issues and isinstance(issues[0], dict):
        text = issues[0].get("diagnostics")
        return text if isinstance(text, str) else None
    return None


def _issue_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    issues = body.get("issue") if isinstance(body, dict) else None
    if isinstance(issues, list) and issues and isinstance(issues[0], dict):
        return issues[0].get("code")
    return None
