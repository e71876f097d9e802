"""One path for every /fhir interaction: authenticate, check the URL, answer, and record ONE audit event.

A route hands `Pipeline.run` what the request asks for (`Asked`) and the handler that answers it. The
pipeline verifies the token, checks the names and ids in the URL, runs the handler and then, however the
request ended (an answer, a refusal, an EHR failure, an unexpected exception), records exactly one
`AccessRecord` before anything leaves. If the record cannot be written, the answer is 503 instead: no
answer leaves unaudited. A handler cannot forget the audit, nor record twice: it only says what its
answer disclosed (`Interaction.answered`).

The outcome comes from how the request ended: 0 an answer (including a 304, a cache hit and a stale
answer while the EHR is down), 4 a refusal or the caller's error (4xx), 8 a failure on our side or the
EHR's (5xx, unexpected exceptions).

Who and what a record names:
- the caller once their token's signature and claims verified (even when the revocation look-up then
  refuses it); no caller when the request carried no usable token;
- on an answer, every resource and patient the answer disclosed;
- on a failure, what the URL asked for (only names that passed the edge check), and the caller's own
  patient only where the failure cannot concern anyone else's record: the access policy refused this
  kind of request for this caller, or a patient-bound caller's create (always about their own record).

Revocation: read-only interactions overlap the revocation look-up with their own work; writes wait for
it first (nothing is written for a revoked token). Either way it is settled before the record is
written, so nothing is answered to a revoked token, and a revoked token's refusal replaces any answer.

`/fhir/metadata` does not come through here: it touches no patient data and needs no audit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from mappers.validation import RESOURCE_TYPE, is_fhir_id

from .caller import Caller, TokenVerifier
from .client_address import source_address
from .errors import FHIRError, PolicyRefusal, forbidden, invalid
from .policy import CREATE, HISTORY_INSTANCE, READ, SEARCH, UPDATE, VREAD

ACTION = {READ: "R", VREAD: "R", HISTORY_INSTANCE: "R", SEARCH: "E", CREATE: "C", UPDATE: "U",
          "operation": "E", "capabilities": "R", "delete": "D", "patch": "U"}
WRITES = frozenset({CREATE, UPDATE, "delete", "patch", "batch", "transaction"})


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


@dataclass(frozen=True)
class Asked:
    """What a request asks for, as its route read the URL; `check` is the edge check of every name in it."""

    interaction: str
    resource_type: str | None = None
    resource_id: str | None = None
    version_id: str | None = None

    def check(self) -> None:
        for name in (self.resource_type, self.resource_id):
            if name is not None and name.startswith(("$", "_")):
                raise forbidden(f"'{name[:64]}' is not supported at this level (no system-wide operations, "
                                "history or GraphQL)")
        if self.resource_type is not None and not RESOURCE_TYPE.fullmatch(self.resource_type):
            raise FHIRError(404, "not-supported", "That is not a resource type served here")
        for value in (self.resource_id, self.version_id):
            if value is not None and not is_fhir_id(value):
                raise invalid("Ids are 1 to 64 letters, digits, '-' and '.' (FHIR id); this one is not")

    @property
    def refs(self) -> list[str]:
        """What was asked for, as audit entity references: only names that pass the edge check."""
        rtype = self.resource_type
        if rtype is None or not RESOURCE_TYPE.fullmatch(rtype):
            return []
        if self.resource_id is not None and is_fhir_id(self.resource_id):
            return [f"{rtype}/{self.resource_id}"]
        return [rtype]


class Interaction:
    """One request on its way through the pipeline, as handlers see it."""

    def __init__(self, request: Request, asked: Asked) -> None:
        self.request = request
        self.asked = asked
        self.interaction = asked.interaction  # a repeated write is answered (and recorded) as a vread
        self.request_id: str | None = getattr(request.state, "request_id", None)
        # The query string as the request sent it, without building the whole URL as `request.url` does.
        raw_query: bytes = request.scope.get("query_string", b"")
        self.query: str | None = raw_query.decode(errors="replace").partition("#")[0] or None
        self.known_caller: Caller | None = None
        self._disclosed: tuple[list[str], list[str]] | None = None
        self._failure_patients: list[str] = []

    @property
    def caller(self) -> Caller:
        """The verified caller (handlers only run once there is one)."""
        if self.known_caller is None:
            raise RuntimeError("no caller before authentication")
        return self.known_caller

    def answered(self, entity_refs: list[str], patient_refs: set[str] | list[str]) -> None:
        """What the answer discloses: the resources it carries and the patients whose data they are."""
        self._disclosed = (list(entity_refs), sorted(set(patient_refs)))

    def about_own_patient(self) -> None:
        """A failure from here on names the caller's own patient (see the module docstring)."""
        self._failure_patients = self.caller.own_patient_refs

    def refused_token(self) -> None:
        """The token itself was refused (revoked, or its status unknown): no record was looked into."""
        self._failure_patients = []

    def record(self, outcome: str) -> AccessRecord:
        if outcome == "0" and self._disclosed is not None:
            entities, patients = self._disclosed
        else:
            entities, patients = self.asked.refs, (self._failure_patients if outcome != "0" else [])
        return AccessRecord(interaction=self.interaction, outcome=outcome, entity_refs=entities,
                            patient_refs=patients, caller=self.known_caller, source_ip=source_address(self.request),
                            request_id=self.request_id, query=self.query)


Handler = Callable[[Interaction], Awaitable[Response]]


def outcome_of(status: int) -> str:
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


# Completes a verified caller with what the access checker needs to know per request (a practitioner's
# care teams and break-the-glass request); may refuse (e.g. a malformed break-the-glass request).
CallerContext = Callable[[Caller, Mapping[str, str], str | None], Awaitable[Caller]]


class Pipeline:
    def __init__(self, verifier: TokenVerifier, audit: AccessAudit, context: CallerContext | None = None) -> None:
        self.verifier = verifier
        self.audit = audit
        self.context = context

    async def run(self, request: Request, asked: Asked, handler: Handler) -> Response:
        ix = Interaction(request, asked)
        try:
            response = await self._answer(ix, handler)
        except (Exception, asyncio.CancelledError) as exc:
            status = exc.status if isinstance(exc, FHIRError) else 500
            await self.audit(ix.record(outcome_of(status)))
            raise
        await self.audit(ix.record(outcome_of(response.status_code)))
        return response

    async def _answer(self, ix: Interaction, handler: Handler) -> Response:
        caller = ix.known_caller = self.verifier.authenticate(ix.request.headers.get("authorization"))
        if ix.interaction in WRITES:
            await self._revocation(ix, self.verifier.check_revocation(caller))
            return await self._handle(ix, handler)
        pending = asyncio.ensure_future(self.verifier.check_revocation(caller))
        try:
            return await self._handle(ix, handler)
        finally:
            await self._revocation(ix, pending)

    async def _revocation(self, ix: Interaction, check: Awaitable[None]) -> None:
        try:
            await check
        except FHIRError:
            ix.refused_token()
            raise

    async def _handle(self, ix: Interaction, handler: Handler) -> Response:
        try:
            ix.asked.check()
            if self.context is not None:
                ix.known_caller = await self.context(ix.caller, ix.request.headers, ix.request_id)
            return await handler(ix)
        except PolicyRefusal:
            ix.about_own_patient()
            raise
