"""`GET /portal/api/access-log`: the patient's "who looked at my record" list as JSON for the portal.

Who may ask: a token bound to a patient (the patient, or a caregiver acting for them) whose scopes allow
searching AuditEvent (`patient/AuditEvent.rs`, `patient/*.read`, ...). Staff and backend-service tokens
get 403: the log is for patients, staff search `/fhir/AuditEvent`. A `patient` query parameter is only
accepted when it names the token's own patient; anything else answers 404, exactly like a patient that
does not exist.

Errors are `{"error", "error_description"}` JSON (as in the portal's other JSON APIs under /auth/api),
never OperationOutcomes, with `Cache-Control: no-store`. Looking at the log reads patient data, so every
call is itself audited through the gateway's audit hook, as a search of AuditEvent for that patient,
before the answer leaves; if it cannot be recorded the answer is 503.

The events come from our audit store (or, in a deployment without one, from the EHR's AuditEvent
search); the names of the people in them are read from the EHR.

Paging: `next` carries an opaque cursor, a point in time. A page never splits a millisecond: events
recorded in the same millisecond as the first one that did not fit move to the next page together, so
following `next` shows every event once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from audit.access_log import AccessLogPage, AccessLogSource, AccessLogUnavailable, EhrAccessLog, describe
from audit.store import StoreUnavailable
from mappers.dates import access_log_when
from mappers.instants import parse_instant
from mappers.names import human_name
from mappers.references import local_reference

from .access import AccessChecker
from .caller import Caller, TokenVerifier
from .client_address import source_address
from .errors import FHIRError
from .pipeline import AccessAudit, AccessRecord
from .policy import SEARCH

log = logging.getLogger("fhir_gateway.access_log_api")

PATH = "/portal/api/access-log"
DEFAULT_COUNT = 50
MAX_COUNT = 200
# Events of one millisecond fetched at once when they alone overflow a page (see `_page`).
MAX_SAME_INSTANT = 500
# Distinct people looked up per page; beyond that the plain words fall back to "a member of your care team".
MAX_NAME_LOOKUPS = 50
NAMED_TYPES = ("Practitioner", "RelatedPerson")
NAMES_TTL = 300.0  # s
NO_STORE = {"Cache-Control": "no-store"}
_YOUR = re.compile(r"\byour\b")


class RecentNames:
    """Names looked up lately, each kept `ttl` seconds; bounded (the oldest go first)."""

    def __init__(self, ttl: float, size: int = 10_000, clock: Any = time.monotonic) -> None:
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, str | None]:
        item = self._items.get(key)
        if item is None or item[0] < self._clock():
            return False, None
        return True, item[1]

    def put(self, key: str, name: str | None) -> None:
        self._items[key] = (self._clock() + self.ttl, name)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class ClientDirectory(Protocol):
    """smart_auth's ClientStore satisfies it: registered apps by client id."""

    async def get(self, client_id: str | None) -> Any: ...


class EhrClient(Protocol):
    """fhir_gateway.upstream.Upstream satisfies it."""

    async def request(self, method: str, path: str, *, params: Any = None,
                      headers: dict[str, str] | None = None) -> Any: ...

    async def read(self, resource_type: str, resource_id: str, request_id: str | None = None) -> dict | None: ...


class ApiError(Exception):
    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "error_description": self.description}, status_code=self.status,
                            headers={**NO_STORE, **self.headers})


def _from_fhir_error(exc: FHIRError) -> ApiError:
    """The token verifier and the audit hook speak FHIR errors; this API answers in the portal's JSON."""
    if exc.status == 401:
        bearer = exc.headers.get("WWW-Authenticate", 'Bearer error="invalid_token"').replace(' realm="fhir",', "")
        error = "invalid_request" if 'error="invalid_request"' in bearer else "invalid_token"
        return ApiError(401, error, exc.diagnostics, {"WWW-Authenticate": bearer})
    if exc.status == 503:
        return ApiError(503, "temporarily_unavailable", exc.diagnostics, {"Retry-After": "5"})
    return ApiError(exc.status, "server_error" if exc.status >= 500 else "invalid_request", exc.diagnostics)


def _patient_ref(value: str) -> str:
    return value if value.startswith("Patient/") else f"Patient/{value}"


def _parse_count(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_COUNT
    try:
        count = int(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", "count must be a whole number") from exc
    if count < 1:
        raise ApiError(400, "invalid_request", "count must be at least 1")
    return min(count, MAX_COUNT)  # like FHIR's _count: more than the maximum gets the maximum


def _parse_since(raw: str | None) -> str | None:
    """A date (`2024-06-01`) or a date-time; a date-time without a zone is taken as UTC."""
    if not raw:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            datetime.strptime(raw, "%Y-%m-%d")
        except ValueError as exc:
            raise ApiError(400, "invalid_request", "since must be a date (YYYY-MM-DD) or a date-time") from exc
        return raw
    when = parse_instant(raw) if "T" in raw else None
    if when is None:
        raise ApiError(400, "invalid_request", "since must be a date (YYYY-MM-DD) or a date-time")
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def _encode_cursor(op: str, instant: str) -> str:
    raw = json.dumps({op: instant}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(raw: str | None) -> tuple[str, str] | None:
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        ((op, instant),) = data.items()
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(400, "invalid_request", "cursor is not one this endpoint issued") from exc
    if op not in ("le", "lt") or not isinstance(instant, str) or parse_instant(instant) is None:
        raise ApiError(400, "invalid_request", "cursor is not one this endpoint issued")
    return op, instant


def _requestor(event: Mapping[str, Any]) -> str | None:
    for agent in event.get("agent") or []:
        if agent.get("requestor"):
            return local_reference((agent.get("who") or {}).get("reference") or "") or None
    return None


def _client_ids(event: Mapping[str, Any]) -> set[str]:
    found = set()
    for agent in event.get("agent") or []:
        if agent.get("requestor"):
            continue
        value = ((agent.get("who") or {}).get("identifier") or {}).get("value")
        if value and str(((agent.get("who") or {}).get("identifier") or {}).get("system", "")).endswith(
                "/oauth-client"):
            found.add(str(value))
    return found


def _sort_key(event: Mapping[str, Any]) -> tuple[datetime, str]:
    return parse_instant(event.get("recorded") or "") or datetime.min.replace(tzinfo=UTC), str(event.get("id", ""))


class AccessLogApi:
    def __init__(self, *, verifier: TokenVerifier, checker: AccessChecker, ehr: EhrClient, audit: AccessAudit,
                 clients: ClientDirectory | None = None, source: AccessLogSource | None = None) -> None:
        self.verifier = verifier
        self.checker = checker
        self.ehr = ehr  # names of the people in the log
        self.audit = audit
        self.clients = clients
        # The events: our audit store, or without one the EHR's AuditEvent search.
        self.source = source if source is not None else EhrAccessLog(ehr)
        # People's and apps' names change rarely: looked up once per few minutes, not on every page view.
        self._known = RecentNames(NAMES_TTL)

    async def _events(self, patient: str, **bounds: Any) -> AccessLogPage:
        try:
            return await self.source.page(patient, **bounds)
        except StoreUnavailable as exc:
            raise AccessLogUnavailable(str(exc)) from exc

    # -- who may see which log ---------------------------------------------------------------------
    def _patient_of(self, caller: Caller, asked: str | None) -> str:
        bound = caller.bound_patient
        if bound is None:
            raise ApiError(403, "access_denied", "The access log is shown to patients and their caregivers; this "
                                                 "token does not act for a patient")
        try:
            decision = self.checker.authorize(caller, SEARCH, "AuditEvent")
        except FHIRError as exc:
            raise ApiError(403, "insufficient_scope", "The token's scopes do not permit reading the access log "
                                                      "(patient/AuditEvent.rs)",
                           {"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="patient/AuditEvent.rs"'}
                           ) from exc
        if decision.grant.constrained:
            raise ApiError(403, "insufficient_scope", "The token may only see some AuditEvents; the access log "
                                                      "needs patient/AuditEvent.rs without restrictions",
                           {"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="patient/AuditEvent.rs"'})
        mine = _patient_ref(bound)
        if asked and _patient_ref(asked) != mine:
            # Another patient's log answers exactly like a patient nobody knows: no existence leak.
            raise ApiError(404, "not_found", "No access log is known for that patient")
        return mine

    # -- the page ---------------------------------------------------------------------------------
    async def _page(self, patient: str, count: int, since: str | None,
                    cursor: tuple[str, str] | None) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        bound = {"until" if cursor[0] == "le" else "before": cursor[1]} if cursor else {}
        # One more than the page: the first event that does not fit marks where the next page starts.
        found = await self._events(patient, count=count + 1, since=since, **bound)
        fetched = sorted(found.events, key=_sort_key, reverse=True)
        if len(fetched) > count:
            cut, candidates = fetched[count].get("recorded") or "", fetched[:count]
        elif found.more and fetched:
            # The EHR capped the page below count + 1: its last event marks the start of the next page.
            cut, candidates = fetched[-1].get("recorded") or "", fetched[:-1]
        else:
            return fetched, None
        cut_at = parse_instant(cut)
        page = [e for e in candidates if (parse_instant(e.get("recorded") or "") or cut_at) != cut_at]
        if page:
            return page, ("le", cut)  # the rest, starting with every event of the cut's millisecond
        # More than a page of events in one millisecond: show that millisecond whole, continue before it.
        same = (await self._events(patient, count=MAX_SAME_INSTANT, since=cut, until=cut)).events
        same = [e for e in same if parse_instant(e.get("recorded") or "") == cut_at] or candidates
        same.sort(key=_sort_key, reverse=True)
        return same, ("lt", cut)

    async def _names(self, events: list[dict[str, Any]], request_id: str | None) -> dict[str, str]:
        refs = list(dict.fromkeys(
            ref for e in events if (ref := _requestor(e)) and ref.split("/", 1)[0] in NAMED_TYPES))[:MAX_NAME_LOOKUPS]
        client_ids = list(dict.fromkeys(cid for e in events for cid in sorted(_client_ids(e))))[:MAX_NAME_LOOKUPS]
        gate = asyncio.Semaphore(8)

        async def person(ref: str) -> tuple[str, str | None]:
            known, name = self._known.get(ref)
            if known:
                return ref, name
            rtype, resource_id = ref.split("/", 1)
            async with gate:
                try:
                    resource = await self.ehr.read(rtype, resource_id, request_id)
                except Exception:  # a name is a nicety: any EHR failure falls back to generic words
                    return ref, None
            name = human_name(resource, prefer_official=True, with_prefix=True) if resource else None
            self._known.put(ref, name)
            return ref, name

        async def app(client_id: str) -> tuple[str, str | None]:
            if self.clients is None:
                return client_id, None
            known, name = self._known.get(f"client:{client_id}")
            if known:
                return client_id, name
            try:
                client = await self.clients.get(client_id)
            except Exception:  # the registry lives in Redis; without it the client id is still shown
                return client_id, None
            name = getattr(client, "client_name", None) or None
            self._known.put(f"client:{client_id}", name)
            return client_id, name

        found = await asyncio.gather(*(person(r) for r in refs), *(app(c) for c in client_ids))
        return {key: name for key, name in found if name}

    @staticmethod
    def _entry(event: dict[str, Any], names: Mapping[str, str], patient: str, viewer: str | None,
               caregiver: bool) -> dict[str, Any]:
        words = describe(event, names, patient=patient)
        who, what, app = words["who"], words["what"], words["app"]
        actor = _requestor(event)
        if caregiver:
            # The log is the patient's; the reader is their caregiver: "you" is the caregiver.
            if actor and actor == viewer:
                who = "You"
                what = _YOUR.sub("the patient's", what)
            elif who == "You":
                who = "The patient"
                what = _YOUR.sub("their", what)
            else:
                who = who.replace("Your caregiver", "The patient's caregiver", 1)
                what = _YOUR.sub("the patient's", what)
        text = f"{who} {what}"
        if app and app not in who:
            text += f" via {app}"
        text += f" on {access_log_when(words['when'])}"
        entry: dict[str, Any] = {"id": event.get("id"), "when": words["when"], "who": who, "what": what,
                                 "app": app, "outcome": words["outcome"], "text": text}
        if who == "You" and words.get("from"):
            # Only one's own sign-ins and views show an address (to spot a stranger using the account);
            # staff members' network addresses are not the patient's business.
            entry["from"] = words["from"]
        return entry

    # -- the endpoint ----------------------------------------------------------------------------
    async def _record(self, request: Request, caller: Caller, outcome: str, entity_refs: list[str],
                      patient_refs: list[str], query: str | None) -> None:
        await self.audit(AccessRecord(
            interaction=SEARCH, outcome=outcome, entity_refs=entity_refs, patient_refs=patient_refs, caller=caller,
            source_ip=source_address(request),
            request_id=getattr(request.state, "request_id", None), query=query,
        ))

    async def handle(self, request: Request) -> JSONResponse:
        try:
            return await self._handle(request)
        except ApiError as exc:
            return exc.response()
        except FHIRError as exc:
            return _from_fhir_error(exc).response()

    async def _handle(self, request: Request) -> JSONResponse:
        caller = await self.verifier.verify(request.headers.get("authorization"))
        params = request.query_params
        asked = params.get("patient")
        try:
            patient = self._patient_of(caller, asked)
        except ApiError as exc:
            refs = ["AuditEvent"] + ([_patient_ref(asked)] if asked else [])
            await self._record(request, caller, "4", refs, [], None)
            raise exc from None
        count = _parse_count(params.get("count"))
        since = _parse_since(params.get("since"))
        cursor = _decode_cursor(params.get("cursor"))
        # What the log search amounts to, in FHIR terms (only ids, dates and controls: no PHI).
        query = [("patient", patient), ("_sort", "-date"), ("_count", str(count))]
        query += [("date", f"ge{since}")] if since else []
        query += [("date", f"{cursor[0]}{cursor[1]}")] if cursor else []
        request_id = getattr(request.state, "request_id", None)
        try:
            events, next_cursor = await self._page(patient, count, since, cursor)
        except AccessLogUnavailable as exc:
            log.warning("access log unavailable request_id=%s: %s", request_id, exc)
            await self._record(request, caller, "8", ["AuditEvent"], [patient], urlencode(query))
            raise ApiError(503, "temporarily_unavailable", "The health record system is not reachable right "
                                                           "now, so your access history cannot be shown; please try "
                                                           "again shortly", {"Retry-After": "30"}) from exc
        names = await self._names(events, request_id)
        caregiver = caller.on_behalf_of is not None
        entries = [self._entry(e, names, patient, caller.fhir_user, caregiver) for e in events]
        # The caregivers named on the page are the patient's data too (their RelatedPerson resources).
        refs = [f"AuditEvent/{e['id']}" for e in events if e.get("id")]
        refs += [ref for ref in names if ref.startswith("RelatedPerson/")]
        # Recorded before the answer leaves; an unrecordable access is refused (503) like any other.
        await self._record(request, caller, "0", refs or ["AuditEvent"], [patient], urlencode(query))
        body: dict[str, Any] = {"patient": patient, "entries": entries}
        if next_cursor:
            kept = [(k, v) for k, v in (("patient", asked), ("count", str(count)), ("since", params.get("since")))
                    if v]
            body["next"] = f"{PATH}?{urlencode([*kept, ('cursor', _encode_cursor(*next_cursor))])}"
        return JSONResponse(body, headers=NO_STORE)


def build_access_log_router(*, verifier: TokenVerifier, checker: AccessChecker, ehr: EhrClient,
                            audit: AccessAudit, clients: ClientDirectory | None = None,
                            source: AccessLogSource | None = None) -> APIRouter:
    api = AccessLogApi(verifier=verifier, checker=checker, ehr=ehr, audit=audit, clients=clients, source=source)
    router = APIRouter(tags=["portal"])

    @router.get(PATH)
    async def access_log_endpoint(request: Request) -> JSONResponse:
        """Who accessed the caller's (or, for a caregiver, their patient's) record, newest first."""
        return await api.handle(request)

    return router
