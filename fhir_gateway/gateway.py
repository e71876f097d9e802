"""The FHIR interactions the gateway serves, each answered through the one audited pipeline.

Every public method takes the HTTP request plus what the route read from the URL, and hands the
pipeline (`pipeline.py`) a handler. A handler asks the access checker, the cache, the EHR and the
write rules in turn, and says what its answer disclosed; it never records audit events itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.requests import Request
from starlette.responses import Response

from cache import CachedResponse
from mappers.validation import InboundError, parse_json

from .access import AccessChecker, CheckedBundle
from .caching import HIT, STALE, GatewayCache, entity_refs_of, result_versions, search_etag
from .caller import Caller, TokenVerifier
from .compartment import patients_of
from .errors import FHIRError, invalid, not_found, operation_outcome
from .idempotency import IdempotencyStore, Stored, fingerprint
from .links import LinkRewriter
from .pipeline import AccessAudit, Asked, Interaction, Pipeline
from .policy import CREATE, HISTORY_INSTANCE, PATIENT_OPERATIONS, READ, SEARCH, UPDATE, VREAD
from .responses import cached_response, conditional_response, dump, fhir_response, resource_headers, written_response
from .upstream import Upstream, json_object
from .writes import PRECONDITIONS, WriteResult, Writes

HISTORY_PARAMS = ("_count", "_since", "_at")


@dataclass(kw_only=True, eq=False)
class Gateway:
    upstream: Upstream
    verifier: TokenVerifier
    checker: AccessChecker
    links: LinkRewriter
    writes: Writes
    idempotency: IdempotencyStore
    audit: AccessAudit
    public_base: str
    max_body_bytes: int
    capability: Callable[[], dict[str, Any]]
    cache: GatewayCache = field(default_factory=lambda: GatewayCache(None))
    # A message may carry files (up to 10 MB each, base64 in the body): its own, larger limit.
    max_message_body_bytes: int = 15 * 1024 * 1024

    def __post_init__(self) -> None:
        self.public_base = self.public_base.rstrip("/")
        self.pipeline = Pipeline(self.verifier, self.audit, self.checker.with_care_team)

    # -- interactions (what the routes call) -----------------------------------------------------
    async def metadata(self) -> Response:
        return fhir_response(self.capability())

    async def read(self, request: Request, rtype: str, resource_id: str, version_id: str | None = None) -> Response:
        asked = Asked(VREAD if version_id is not None else READ, rtype, resource_id, version_id)
        return await self.pipeline.run(request, asked, self._read)

    async def search(self, request: Request, rtype: str, *, form: bool = False) -> Response:
        async def handle(ix: Interaction) -> Response:
            params = list(request.query_params.multi_items())
            if form:
                params += await self._form(request)
                ix.query = urlencode(params) or None
            return await self._search(ix, params)

        return await self.pipeline.run(request, Asked(SEARCH, rtype), handle)

    async def page(self, request: Request) -> Response:
        return await self.pipeline.run(request, Asked(SEARCH), self._page)

    async def history(self, request: Request, rtype: str, resource_id: str) -> Response:
        return await self.pipeline.run(request, Asked(HISTORY_INSTANCE, rtype, resource_id), self._history)

    async def patient_operation(self, request: Request, patient_id: str, operation: str) -> Response:
        async def handle(ix: Interaction) -> Response:
            return await self._patient_operation(ix, operation)

        return await self.pipeline.run(request, Asked("operation", "Patient", patient_id), handle)

    async def create(self, request: Request, rtype: str) -> Response:
        return await self.pipeline.run(request, Asked(CREATE, rtype), self._create)

    async def update(self, request: Request, rtype: str, resource_id: str) -> Response:
        return await self.pipeline.run(request, Asked(UPDATE, rtype, resource_id), self._update)

    async def refuse(self, request: Request, interaction: str, error: FHIRError) -> Response:
        """A request refused whatever it names (batch, system-wide search, unsupported methods): audited
        like any other, once its token has been looked at."""
        async def handle(ix: Interaction) -> Response:
            raise error

        return await self.pipeline.run(request, Asked(interaction), handle)

    # -- reads -----------------------------------------------------------------------------------
    async def _read(self, ix: Interaction) -> Response:
        rtype, resource_id, version_id = ix.asked.resource_type or "", ix.asked.resource_id or "", ix.asked.version_id
        decision = self.checker.authorize(ix.caller, ix.interaction, rtype)
        lookup = self.cache.for_read(ix.caller, decision.grant, rtype, resource_id, version_id)
        if kept := await self._kept(ix, await self.cache.fresh(lookup), HIT):
            return kept
        generations = await self.cache.generations(lookup)
        try:
            resource = await self._fetch(ix, rtype, resource_id, version_id)
            resource = await self.checker.checked_read(ix.caller, decision, resource, rtype, resource_id,
                                                       ix.request_id)
        except FHIRError as exc:
            if stale := await self._kept(ix, await self.cache.stale(lookup, exc.status), STALE):
                return stale
            raise
        ref, patients = f"{rtype}/{resource_id}", patients_of(resource)
        ix.answered([ref], patients)
        headers = resource_headers(resource)
        body = dump(resource)
        await self.cache.store(lookup, generations, body, etag=headers.get("ETag"),
                               last_modified=headers.get("Last-Modified"), entity_refs=[ref], patient_refs=patients)
        headers["X-Cache"] = self.cache.miss_label()
        return conditional_response(ix.request, body, headers)

    async def _fetch(self, ix: Interaction, rtype: str, resource_id: str,
                     version_id: str | None = None) -> dict[str, Any] | None:
        """One resource (or one version of it) from the EHR; None when the EHR does not have it."""
        path = f"{rtype}/{resource_id}" + (f"/_history/{version_id}" if version_id else "")
        response = await self.upstream.request("GET", path, request_id=ix.request_id)
        if response.status_code in (404, 410):
            return None
        if response.status_code >= 400:
            raise self.upstream.refusal(response, "The record could not be read")
        return json_object(response)

    async def _kept(self, ix: Interaction, entry: CachedResponse | None, label: str) -> Response | None:
        """Answer with a kept cache entry (fresh, or stale while the EHR fails), disclosing what the
        answer it repeats disclosed; None when there is none."""
        if entry is None:
            return None
        ix.answered(*entity_refs_of(entry))
        return cached_response(ix.request, entry, label)

    async def _search(self, ix: Interaction, params: list[tuple[str, str]]) -> Response:
        rtype, caller = ix.asked.resource_type or "", ix.caller
        decision = self.checker.authorize_search(caller, rtype, params)
        lookup = self.cache.for_search(caller, decision.grant, decision.policy, rtype, decision.params)
        if kept := await self._kept(ix, await self.cache.fresh(lookup), HIT):
            return kept
        generations = await self.cache.generations(lookup)
        try:
            response = await self.upstream.request("GET", rtype, params=list(decision.params),
                                                   request_id=ix.request_id)
        except FHIRError as exc:
            if stale := await self._kept(ix, await self.cache.stale(lookup, exc.status), STALE):
                return stale
            raise
        checked = self._checked_bundle(caller, response, "The search could not be performed")
        patients = checked.patients
        if caller.bound_patient and not decision.policy.shared:
            patients |= set(caller.own_patient_refs)  # even an empty result looked into this patient's record
        refs = checked.refs or [rtype]
        ix.answered(refs, patients)
        body = dump(checked.bundle)
        versions = result_versions(checked.bundle)
        etag = search_etag(versions, checked.bundle.get("total"))
        await self.cache.store(lookup, generations, body, etag=etag, last_modified=None, entity_refs=refs,
                               patient_refs=patients, version_ids=versions)
        return conditional_response(ix.request, body, {"X-Cache": self.cache.miss_label(), "ETag": etag})

    async def _form(self, request: Request) -> list[tuple[str, str]]:
        """The parameters of a POSTed search (a form body), within the body and parameter limits."""
        raw = await self._bounded_body(request)
        try:
            return parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True,
                             max_num_fields=self.checker.limits.max_params)
        except ValueError as exc:
            raise invalid(f"A search may have at most {self.checker.limits.max_params} parameters") from exc

    async def _page(self, ix: Interaction) -> Response:
        forwarded = self.links.verify_page(list(ix.request.query_params.multi_items()), ix.caller.binding)
        if forwarded is None:
            raise FHIRError(404, "not-found", "This page link is unknown or was not issued to this token")
        response = await self.upstream.request("GET", "", params=forwarded, request_id=ix.request_id)
        if response.status_code >= 400:
            raise FHIRError(410 if response.status_code in (404, 410) else 400, "not-found",
                            "This page of results has expired; please search again")
        checked = self._checked_bundle(ix.caller, response, "")
        ix.answered(checked.refs, checked.patients)
        return fhir_response(checked.bundle)

    async def _history(self, ix: Interaction) -> Response:
        rtype, resource_id = ix.asked.resource_type or "", ix.asked.resource_id or ""
        self.checker.authorize(ix.caller, HISTORY_INSTANCE, rtype)
        self.checker.check_read(ix.caller, await self._fetch(ix, rtype, resource_id), rtype, resource_id)
        params = [(k, v) for k, v in ix.request.query_params.multi_items() if k in HISTORY_PARAMS]
        response = await self.upstream.request("GET", f"{rtype}/{resource_id}/_history", params=params,
                                               request_id=ix.request_id)
        if response.status_code in (404, 410):
            raise not_found(rtype, resource_id)
        checked = self._checked_bundle(ix.caller, response, "The history could not be read")
        ix.answered([f"{rtype}/{resource_id}"], checked.patients)
        return fhir_response(checked.bundle)

    async def _patient_operation(self, ix: Interaction, operation: str) -> Response:
        patient_id = ix.asked.resource_id or ""
        self.checker.authorize_patient_operation(ix.caller, patient_id)
        wanted = PATIENT_OPERATIONS[operation].params
        params = [(k, v) for k, v in ix.request.query_params.multi_items() if k in wanted]
        response = await self.upstream.request("GET", f"Patient/{patient_id}/${operation}", params=params,
                                               request_id=ix.request_id)
        if response.status_code >= 400:
            raise self._operation_refused(response, operation, patient_id)
        checked = self._checked_bundle(ix.caller, response, "")
        ix.answered([f"Patient/{patient_id}"], checked.patients)
        return fhir_response(checked.bundle)

    def _operation_refused(self, response: httpx.Response, operation: str, patient_id: str) -> FHIRError:
        """The EHR's 4xx to an operation: an operation it does not offer is 501 (the portal then says "not
        available"), an unknown patient is 404 like any other, anything else the caller's error as is."""
        error = self.upstream.refusal(response, f"The ${operation} operation could not be performed")
        if error.code == "not-supported":
            return FHIRError(501, "not-supported", f"The ${operation} operation is not available from the EHR")
        if response.status_code in (404, 410):
            return not_found("Patient", patient_id)
        return error

    def _checked_bundle(self, caller: Caller, response: httpx.Response, fallback: str) -> CheckedBundle:
        """The EHR's Bundle with only what this caller may see, its links pointing at us (bound to this
        caller); an EHR 4xx becomes the caller's error."""
        if response.status_code >= 400:
            raise self.upstream.refusal(response, fallback or "The request could not be performed")
        checked = self.checker.filter_bundle(caller, json_object(response))
        self.links.rewrite_bundle(checked.bundle, caller.binding)
        return checked

    # -- writes ----------------------------------------------------------------------------------
    async def _create(self, ix: Interaction) -> Response:
        rtype, caller = ix.asked.resource_type or "", ix.caller
        self.checker.authorize(caller, CREATE, rtype)
        ix.about_own_patient()  # a patient-bound caller's create can only be about their own record
        limit = self.max_message_body_bytes if rtype == "Communication" else self.max_body_bytes
        body = await self._body(ix.request, limit)
        preconditions = self._preconditions(ix.request)
        return await self._write(ix, "POST", rtype, body,
                                 lambda: self.writes.create(caller, rtype, body, preconditions, ix.request_id))

    async def _update(self, ix: Interaction) -> Response:
        rtype, resource_id, caller = ix.asked.resource_type or "", ix.asked.resource_id or "", ix.caller
        self.checker.authorize(caller, UPDATE, rtype)
        body = await self._body(ix.request)
        if not isinstance(body, dict) or body.get("id") != resource_id:
            raise invalid("The resource id in the body must match the id in the URL")
        preconditions = self._preconditions(ix.request)
        return await self._write(ix, "PUT", f"{rtype}/{resource_id}", body, lambda: self.writes.update(
            caller, rtype, resource_id, body, preconditions, ix.request_id))

    async def _write(self, ix: Interaction, method: str, target: str, body: Any,
                     write: Callable[[], Awaitable[WriteResult]]) -> Response:
        """One write, at most once per Idempotency-Key; what it touched is dropped from the cache before
        the answer leaves (read-your-writes)."""
        key, binding = ix.request.headers.get("idempotency-key"), ix.caller.binding
        fp = fingerprint(method, target, body) if key is not None else ""
        if key is not None and (stored := await self.idempotency.begin(binding, key, fp)) is not None:
            return await self._repeat(ix, stored)
        try:
            result = await write()
        except BaseException:
            if key is not None:
                await self.idempotency.abandon(binding, key)
            raise
        await self.cache.invalidate_write(ix.caller, result.touched, result.resource)
        if key is not None:
            version = (result.resource.get("meta") or {}).get("versionId")
            ref = f"{result.resource['resourceType']}/{result.resource['id']}" if result.resource.get("id") else None
            await self.idempotency.finish(binding, key, fp, Stored(result.status, ref, version))
        ix.answered(result.touched, patients_of(result.resource))
        return written_response(result.resource, result.status, self.public_base)

    async def _repeat(self, ix: Interaction, stored: Stored) -> Response:
        """A repeated write answers as the first did, with the resource it wrote read again (that exact
        version) through the access checker: to the audit trail, the repeat is a read of it."""
        ix.interaction = VREAD
        if stored.ref is None:  # the EHR named nothing it wrote; there is nothing to show again
            return fhir_response(operation_outcome("information", "informational", "Already processed"),
                                 status=stored.status)
        rtype, _, resource_id = stored.ref.partition("/")
        resource = await self._fetch(ix, rtype, resource_id, stored.version)
        resource = self.checker.check_written(ix.caller, resource, rtype, resource_id)
        ix.answered([stored.ref], patients_of(resource))
        return written_response(resource, stored.status, self.public_base)

    async def _bounded_body(self, request: Request, limit: int | None = None) -> bytes:
        limit = limit or self.max_body_bytes
        declared = request.headers.get("content-length")
        too_big = FHIRError(413, "too-costly", f"Request bodies are limited to {limit} bytes")
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_big
        raw = await request.body()
        if len(raw) > limit:
            raise too_big
        return raw

    async def _body(self, request: Request, limit: int | None = None) -> Any:
        try:
            return parse_json(await self._bounded_body(request, limit))
        except InboundError as exc:
            raise invalid(str(exc)) from exc

    @staticmethod
    def _preconditions(request: Request) -> dict[str, str]:
        return {name: value for name in PRECONDITIONS if (value := request.headers.get(name))}
