"""The /fhir REST facade: authenticate, decide, forward, check what comes back, audit, answer."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from cache import CachedResponse
from mappers.outcome import clean_outcome
from mappers.validation import InboundError, validate
from smart_auth.scopes import Grant

from .access import AccessChecker, Decision
from .caching import HIT, STALE, GatewayCache, Lookup, entity_refs_of, result_versions, search_etag
from .caller import Caller, TokenVerifier
from .client_address import source_address
from .compartment import patients_of
from .errors import FHIR_JSON, FHIRError, forbidden, invalid, not_found
from .idempotency import IdempotencyStore, Stored
from .links import LinkRewriter
from .policy import CREATE, HISTORY_INSTANCE, READ, SEARCH, UPDATE, VREAD
from .upstream import Upstream, json_body
from .writes import PatientWrites, WriteResult, etag_of, refused_write

log = logging.getLogger("fhir_gateway.routes")

FHIR_JSON_UTF8 = f"{FHIR_JSON}; charset=utf-8"
ACTION = {READ: "R", VREAD: "R", HISTORY_INSTANCE: "R", SEARCH: "E", CREATE: "C", UPDATE: "U",
          "operation": "E", "capabilities": "R"}


@dataclass
class AccessRecord:
    """What the audit trail needs to know about one /fhir request."""

    interaction: str
    outcome: str  # "0" success, "4" refused / client error, "8" server-side failure
    entity_refs: list[str]
    patient_refs: list[str]
    caller: Caller | None
    source_ip: str | None
    request_id: str | None
    query: str | None

    @property
    def action(self) -> str:
        return ACTION.get(self.interaction, "E")


AccessAudit = Callable[[AccessRecord], Awaitable[None]]


def dump(body: Any) -> bytes:
    return orjson.dumps(body)


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dump(body), status_code=status, headers=headers, media_type=FHIR_JSON_UTF8)


def conditional_response(request: Request, body: bytes, headers: dict[str, str], status: int = 200) -> Response:
    """``body``, or 304 with the same headers when the client's If-None-Match is the answer's ETag."""
    inm = request.headers.get("if-none-match")
    if inm and headers.get("ETag") and inm.strip() == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, headers=headers, media_type=FHIR_JSON_UTF8)


def cached_response(request: Request, entry: CachedResponse, label: str) -> Response:
    headers = {"X-Cache": label}
    if entry.etag:
        headers["ETag"] = entry.etag
    if entry.last_modified:
        headers["Last-Modified"] = entry.last_modified
    if label == STALE:
        # RFC 9111 §5.5 / RFC 7234 Warning 110: the EHR could not be asked; this is what we last knew.
        headers["Warning"] = '110 - "Response is Stale"'
        headers["Age"] = str(int(entry.age()))
    return conditional_response(request, entry.body, headers, entry.status)


def http_date(instant: str | None) -> str | None:
    if not instant:
        return None
    try:
        return format_datetime(datetime.fromisoformat(instant.replace("Z", "+00:00")), usegmt=True)
    except ValueError:
        return None


def resource_headers(resource: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    if etag := etag_of(resource):
        headers["ETag"] = etag
    if last := http_date((resource.get("meta") or {}).get("lastUpdated")):
        headers["Last-Modified"] = last
    return headers


def _source_ip(request: Request) -> str | None:
    return source_address(request)


class Gateway:
    def __init__(
        self,
        *,
        upstream: Upstream,
        verifier: TokenVerifier,
        checker: AccessChecker,
        links: LinkRewriter,
        writes: PatientWrites,
        idempotency: IdempotencyStore,
        audit: AccessAudit,
        public_base: str,
        max_body_bytes: int,
        capability: Callable[[], dict[str, Any]],
        cache: GatewayCache | None = None,
    ) -> None:
        self.upstream = upstream
        self.verifier = verifier
        self.checker = checker
        self.links = links
        self.writes = writes
        self.idempotency = idempotency
        self.audit = audit
        self.public_base = public_base.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.capability = capability
        self.cache = cache or GatewayCache(None)

    # -- plumbing ------------------------------------------------------------------------------
    async def caller(self, request: Request, *, overlap_revocation: bool = False) -> Caller:
        """The verified caller. With ``overlap_revocation`` (reads only) the revocation look-up runs
        while the read proceeds; ``settle_revocation`` (called by ``record``, which precedes every
        answer) waits for it, so nothing is answered to a revoked token, one Redis trip sooner."""
        caller = self.verifier.authenticate(request.headers.get("authorization"))
        request.state.caller = caller
        if overlap_revocation:
            request.state.revocation = asyncio.ensure_future(self.verifier.check_revocation(caller))
        else:
            await self.verifier.check_revocation(caller)
        return caller

    async def settle_revocation(self, request: Request) -> None:
        pending = getattr(request.state, "revocation", None)
        if pending is not None:
            request.state.revocation = None
            await pending

    async def record(self, request: Request, interaction: str, outcome: str, entity_refs: list[str],
                     patient_refs: set[str] | list[str], caller: Caller | None) -> None:
        await self.settle_revocation(request)
        rid = getattr(request.state, "request_id", None)
        await self.audit(AccessRecord(
            interaction=interaction, outcome=outcome, entity_refs=entity_refs,
            patient_refs=sorted(set(patient_refs)), caller=caller, source_ip=_source_ip(request),
            request_id=rid, query=request.url.query or None,
        ))

    async def authorized(self, request: Request, caller: Caller, interaction: str, rtype: str, entity: str, *,
                         check: str | None = None) -> Decision:
        """The access decision; a refusal is audited (outcome 4) before it is answered."""
        try:
            return self.checker.authorize(caller, check or interaction, rtype)
        except FHIRError:
            await self.record(request, interaction, "4", [entity], caller.own_patient_refs, caller)
            raise

    async def body_json(self, request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise FHIRError(413, "too-costly", f"Request bodies are limited to {self.max_body_bytes} bytes")
        raw = await request.body()
        if len(raw) > self.max_body_bytes:
            raise FHIRError(413, "too-costly", f"Request bodies are limited to {self.max_body_bytes} bytes")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid("The request body is not valid JSON") from exc

    def _filter_bundle(self, caller: Caller, bundle: dict[str, Any]) -> tuple[dict[str, Any], list[str], set[str]]:
        kept, refs, patients, dropped = [], [], set(), 0
        for entry in bundle.get("entry", []) or []:
            resource = entry.get("resource")
            if isinstance(resource, dict) and not self.checker.may_see(caller, resource):
                dropped += 1
                continue
            if isinstance(resource, dict) and resource.get("id"):
                refs.append(f"{resource['resourceType']}/{resource['id']}")
                patients |= patients_of(resource)
            kept.append(entry)
        if dropped:
            log.warning("dropped %d result entries outside the caller's access", dropped)
        bundle["entry"] = kept
        return self.links.rewrite_bundle(bundle, caller.binding), refs, patients

    # -- interactions --------------------------------------------------------------------------
    async def metadata(self) -> Response:
        return fhir_response(self.capability())

    async def read(self, request: Request, rtype: str, rid: str, vid: str | None = None) -> Response:
        caller = await self.caller(request, overlap_revocation=True)
        try:
            return await self._read(request, caller, rtype, rid, vid)
        finally:
            await self.settle_revocation(request)

    async def _read(self, request: Request, caller: Caller, rtype: str, rid: str, vid: str | None) -> Response:
        interaction = VREAD if vid else READ
        decision = await self.authorized(request, caller, interaction, rtype, f"{rtype}/{rid}")
        lookup = self.cache.for_read(caller, decision.grant, rtype, rid, vid)
        if hit := await self._from_cache(request, caller, interaction, lookup):
            return hit
        generations = await self.cache.generations(lookup)
        try:
            path = f"{rtype}/{rid}" + (f"/_history/{vid}" if vid else "")
            response = await self.upstream.request("GET", path, request_id=request.state.request_id)
            resource = json_body(response) if response.status_code == 200 else None
            resource = self.checker.check_read(caller, resource, rtype, rid)
            await self._check_granular(decision.grant, rtype, rid, request)
        except FHIRError as exc:
            if stale := await self._stale(request, caller, interaction, lookup, exc):
                return stale
            await self.record(request, interaction, "4" if exc.status < 500 else "8", [f"{rtype}/{rid}"], [], caller)
            raise
        patients = patients_of(resource)
        await self.record(request, interaction, "0", [f"{rtype}/{rid}"], patients, caller)
        headers = resource_headers(resource)
        body = dump(resource)
        await self.cache.store(lookup, generations, body, etag=headers.get("ETag"),
                               last_modified=headers.get("Last-Modified"), entity_refs=[f"{rtype}/{rid}"],
                               patient_refs=patients)
        headers["X-Cache"] = self.cache.miss_label()
        return conditional_response(request, body, headers)

    async def _from_cache(self, request: Request, caller: Caller, interaction: str, lookup: Lookup) -> Response | None:
        """A fresh entry answers; None on a miss."""
        return await self._kept(request, caller, interaction, await self.cache.fresh(lookup), HIT)

    async def _stale(self, request: Request, caller: Caller, interaction: str, lookup: Lookup,
                     failure: FHIRError) -> Response | None:
        """While the EHR fails, the last answer we kept for this very caller and query, marked stale."""
        return await self._kept(request, caller, interaction, await self.cache.stale(lookup, failure.status), STALE)

    async def _kept(self, request: Request, caller: Caller, interaction: str, entry: CachedResponse | None,
                    label: str) -> Response | None:
        """Answer with a kept entry, audited like the answer it repeats."""
        if entry is None:
            return None
        refs, patients = entity_refs_of(entry)
        await self.record(request, interaction, "0", refs, patients, caller)
        return cached_response(request, entry, label)

    async def _check_granular(self, grant: Grant, rtype: str, rid: str, request: Request) -> None:
        """v2 granular scopes (e.g. category=laboratory) on a read: let the EHR's own search decide."""
        if not grant.constrained:
            return
        for constraints in grant.constraint_sets:
            bundle = await self.upstream.search(rtype, [("_id", rid), ("_summary", "count"), *constraints],
                                                request.state.request_id)
            if bundle.get("total", 0) > 0:
                return
        raise not_found(rtype, rid)

    async def history(self, request: Request, rtype: str, rid: str) -> Response:
        caller = await self.caller(request)
        await self.authorized(request, caller, HISTORY_INSTANCE, rtype, f"{rtype}/{rid}")
        current = await self.upstream.read(rtype, rid, request.state.request_id)
        try:
            self.checker.check_read(caller, current, rtype, rid)
        except FHIRError:
            await self.record(request, HISTORY_INSTANCE, "4", [f"{rtype}/{rid}"], [], caller)
            raise
        params = [(k, v) for k, v in request.query_params.multi_items() if k in ("_count", "_since", "_at")]
        response = await self.upstream.request("GET", f"{rtype}/{rid}/_history", params=params,
                                               request_id=request.state.request_id)
        bundle, _refs, patients = self._filter_bundle(caller, json_body(response))
        await self.record(request, HISTORY_INSTANCE, "0", [f"{rtype}/{rid}"], patients, caller)
        return fhir_response(bundle)

    async def search(self, request: Request, rtype: str, params: list[tuple[str, str]]) -> Response:
        caller = await self.caller(request, overlap_revocation=True)
        try:
            return await self._search(request, caller, rtype, params)
        finally:
            await self.settle_revocation(request)

    async def _search(self, request: Request, caller: Caller, rtype: str, params: list[tuple[str, str]]) -> Response:
        try:
            decision = self.checker.authorize_search(caller, rtype, params)
        except FHIRError:
            await self.record(request, SEARCH, "4", [rtype], [], caller)
            raise
        lookup = self.cache.for_search(caller, decision.grant, decision.policy, rtype, decision.params)
        if hit := await self._from_cache(request, caller, SEARCH, lookup):
            return hit
        generations = await self.cache.generations(lookup)
        try:
            response = await self.upstream.request("GET", rtype, params=list(decision.params),
                                                   request_id=request.state.request_id)
        except FHIRError as exc:
            if stale := await self._stale(request, caller, SEARCH, lookup, exc):
                return stale
            await self.record(request, SEARCH, "8", [rtype], [], caller)
            raise
        if response.status_code >= 400:
            await self.record(request, SEARCH, "4", [rtype], [], caller)
            raise FHIRError(response.status_code, "invalid", "",
                            outcome=clean_outcome(response.json() if response.content else {},
                                                  "The search could not be performed"))
        bundle, refs, patients = self._filter_bundle(caller, json_body(response))
        if caller.bound_patient and not decision.policy.shared:
            patients.update(caller.own_patient_refs)  # even an empty result looked into this patient's record
        await self.record(request, SEARCH, "0", refs or [rtype], patients, caller)
        body = dump(bundle)
        versions = result_versions(bundle)
        etag = search_etag(versions, bundle.get("total"))
        await self.cache.store(lookup, generations, body, etag=etag, last_modified=None, entity_refs=refs or [rtype],
                               patient_refs=patients, version_ids=versions)
        return conditional_response(request, body, {"X-Cache": self.cache.miss_label(), "ETag": etag})

    async def page(self, request: Request) -> Response:
        caller = await self.caller(request)
        params = list(request.query_params.multi_items())
        forwarded = self.links.verify_page(params, caller.binding)
        if forwarded is None:
            await self.record(request, SEARCH, "4", [], [], caller)
            raise FHIRError(404, "not-found", "This page link is unknown or was not issued to this token")
        response = await self.upstream.request("GET", "", params=forwarded, request_id=request.state.request_id)
        if response.status_code >= 400:
            raise FHIRError(410 if response.status_code in (404, 410) else 400, "not-found",
                            "This page of results has expired; please search again")
        bundle, refs, patients = self._filter_bundle(caller, json_body(response))
        await self.record(request, SEARCH, "0", refs, patients, caller)
        return fhir_response(bundle)

    async def everything(self, request: Request, rid: str) -> Response:
        caller = await self.caller(request)
        await self.authorized(request, caller, "operation", "Patient", f"Patient/{rid}", check=READ)
        if caller.bound_patient and caller.bound_patient != rid:
            await self.record(request, "operation", "4", [f"Patient/{rid}"], [], caller)
            raise not_found("Patient", rid)
        params = [(k, v) for k, v in request.query_params.multi_items() if k in ("_count", "_since", "_type")]
        response = await self.upstream.request("GET", f"Patient/{rid}/$everything", params=params,
                                               request_id=request.state.request_id)
        if response.status_code == 404:
            raise not_found("Patient", rid)
        bundle, _refs, patients = self._filter_bundle(caller, json_body(response))
        await self.record(request, "operation", "0", [f"Patient/{rid}"], patients, caller)
        return fhir_response(bundle)

    async def create(self, request: Request, rtype: str) -> Response:
        caller = await self.caller(request)
        await self.authorized(request, caller, CREATE, rtype, rtype)
        body = await self.body_json(request)
        return await self._idempotent(request, caller, "POST", rtype, body,
                                      lambda: self._do_create(request, caller, rtype, body))

    async def update(self, request: Request, rtype: str, rid: str) -> Response:
        caller = await self.caller(request)
        await self.authorized(request, caller, UPDATE, rtype, f"{rtype}/{rid}")
        body = await self.body_json(request)
        if not isinstance(body, dict) or body.get("id") != rid:
            raise invalid("The resource id in the body must match the id in the URL")
        return await self._idempotent(request, caller, "PUT", f"{rtype}/{rid}", body,
                                      lambda: self._do_update(request, caller, rtype, rid, body))

    async def _idempotent(self, request: Request, caller: Caller, method: str, target: str, body: Any,
                          write: Callable[[], Awaitable[Response]]) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return await write()
        fingerprint = hashlib.sha256(f"{method} {target} {json.dumps(body, sort_keys=True)}".encode()).hexdigest()
        stored = await self.idempotency.begin(caller.binding, key, fingerprint)
        if stored is not None:
            return Response(json.dumps(stored.body), status_code=stored.status, headers=stored.headers,
                            media_type=FHIR_JSON_UTF8)
        try:
            response = await write()
        except BaseException:
            await self.idempotency.abandon(caller.binding, key)
            raise
        kept = {k: v for k, v in response.headers.items() if k.lower() in ("location", "etag", "last-modified")}
        stored = Stored(response.status_code, json.loads(bytes(response.body) or b"{}"), kept)
        await self.idempotency.finish(caller.binding, key, fingerprint, stored)
        return response

    def _write_response(self, result: WriteResult) -> Response:
        headers = resource_headers(result.resource)
        rtype, rid, vid = result.resource.get("resourceType"), result.resource.get("id"), etag_of(result.resource)
        if rtype and rid and result.status == 201:
            version = (result.resource.get("meta") or {}).get("versionId")
            headers["Location"] = f"{self.public_base}/{rtype}/{rid}" + (f"/_history/{version}" if vid else "")
        return fhir_response(result.resource, status=result.status, headers=headers)

    async def _do_create(self, request: Request, caller: Caller, rtype: str, body: Any) -> Response:
        rid = request.state.request_id
        try:
            if caller.bound_patient:
                result = await self.writes.create(caller, rtype, body, rid)
            else:
                result = await self._generic_write(request, "POST", rtype, body)
        except FHIRError:
            await self.record(request, CREATE, "4", [rtype], caller.own_patient_refs, caller)
            raise
        await self.cache.invalidate_write(caller, result.touched, result.resource)
        await self.record(request, CREATE, "0", result.touched, patients_of(result.resource), caller)
        return self._write_response(result)

    async def _do_update(self, request: Request, caller: Caller, rtype: str, rid: str, body: Any) -> Response:
        request_id = request.state.request_id
        try:
            if caller.bound_patient:
                result = await self.writes.update(caller, rtype, rid, body, request.headers.get("if-match"),
                                                  request_id)
            else:
                result = await self._generic_write(request, "PUT", f"{rtype}/{rid}", body)
        except FHIRError:
            await self.record(request, UPDATE, "4", [f"{rtype}/{rid}"], [], caller)
            raise
        await self.cache.invalidate_write(caller, result.touched, result.resource)
        await self.record(request, UPDATE, "0", result.touched, patients_of(result.resource), caller)
        return self._write_response(result)

    async def _generic_write(self, request: Request, method: str, path: str, body: Any) -> WriteResult:
        """Staff and backend-service writes: validated, then forwarded with the caller's preconditions."""
        rtype = path.split("/")[0]
        try:
            validate(body, rtype)
        except InboundError as exc:
            raise FHIRError(422, "invalid", str(exc)) from exc
        headers = {"Prefer": "return=representation"}
        for name in ("if-match", "if-none-exist"):
            if value := request.headers.get(name):
                headers[name.title()] = value
        response = await self.upstream.request(method, path, json=body, headers=headers,
                                               request_id=request.state.request_id)
        if response.status_code >= 400:
            raise refused_write(response, keep_status=(409, 412))
        resource = response.json() if response.content else {}
        if not resource.get("id") and response.headers.get("location"):
            loc = response.headers["location"].split("/_history")[0].split("/")
            resource = await self.upstream.read(loc[-2], loc[-1], request.state.request_id) or {}
        return WriteResult(response.status_code, resource, [f"{rtype}/{resource.get('id')}"])


def build_fhir_router(gateway: Gateway) -> APIRouter:
    router = APIRouter(prefix="/fhir", tags=["fhir"])

    def refuse_special(name: str) -> None:
        if name.startswith("$") or name.startswith("_"):
            raise forbidden(f"'{name}' is not supported at this level (no system-wide operations, history or "
                            "GraphQL)")

    @router.get("/metadata")
    async def metadata() -> Response:
        return await gateway.metadata()

    @router.get("")
    async def root(request: Request) -> Response:
        if "_getpages" in request.query_params:
            return await gateway.page(request)
        raise forbidden("System-wide search is not supported; search a resource type")

    @router.post("")
    async def batch(request: Request) -> Response:
        caller = await gateway.caller(request)
        await gateway.record(request, "batch", "4", [], caller.own_patient_refs, caller)
        raise forbidden("Batch and transaction bundles are not accepted; send each request on its own")

    @router.get("/{rtype}")
    async def search(request: Request, rtype: str) -> Response:
        refuse_special(rtype)
        return await gateway.search(request, rtype, list(request.query_params.multi_items()))

    @router.post("/{rtype}/_search")
    async def post_search(request: Request, rtype: str) -> Response:
        refuse_special(rtype)
        form = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        return await gateway.search(request, rtype, list(request.query_params.multi_items()) + form)

    @router.get("/Patient/{rid}/$everything")
    async def everything(request: Request, rid: str) -> Response:
        return await gateway.everything(request, rid)

    @router.get("/{rtype}/{rid}")
    async def read(request: Request, rtype: str, rid: str) -> Response:
        refuse_special(rtype)
        refuse_special(rid)
        return await gateway.read(request, rtype, rid)

    @router.get("/{rtype}/{rid}/_history")
    async def history(request: Request, rtype: str, rid: str) -> Response:
        refuse_special(rtype)
        return await gateway.history(request, rtype, rid)

    @router.get("/{rtype}/{rid}/_history/{vid}")
    async def vread(request: Request, rtype: str, rid: str, vid: str) -> Response:
        refuse_special(rtype)
        return await gateway.read(request, rtype, rid, vid)

    @router.post("/{rtype}")
    async def create(request: Request, rtype: str) -> Response:
        refuse_special(rtype)
        return await gateway.create(request, rtype)

    @router.put("/{rtype}/{rid}")
    async def update(request: Request, rtype: str, rid: str) -> Response:
        refuse_special(rtype)
        return await gateway.update(request, rtype, rid)

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unsupported(request: Request, path: str) -> Response:
        await gateway.caller(request)
        if request.method == "DELETE":
            raise FHIRError(405, "not-supported", "Deleting records is not supported through the portal")
        raise FHIRError(404, "not-supported", f"{request.method} /fhir/{path} is not supported")

    return router
