"""The writes a practitioner makes from the staff area, each checked by its own rule.

Every staff write is about a patient on the practitioner's care team (or one opened by break-the-glass):
anything else is refused with the care-team answer before the EHR is asked. Two writes have rules of
their own (mappers/inbox.py):
- a reply (Communication create): in an existing patient conversation, from the practitioner, to that
  patient, with the conversation's topic; written once per identifier (a retried send finds the first);
- a work item (Task create/update, code answer-message): one per conversation (its identifier), owned by
  someone on the patient's care team or by nobody, status requested / in-progress / completed; an update
  needs If-Match and changes only status and owner.
Other types are validated and forwarded as before, held to the care team; request-specific rules (refill,
referral, allergy and insurance decisions) are added beside these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from mappers import inbox
from mappers.messages import IDENTIFIER_SYSTEM, thread_id
from mappers.validation import InboundError, is_fhir_id, plain_reference, validate

from .caller import Caller
from .care_teams import outside_care_team
from .compartment import patients_of
from .errors import FHIRError
from .upstream import Upstream, json_object
from .write_result import WriteResult, etag_of


def _unprocessable(exc: InboundError) -> FHIRError:
    return FHIRError(422, "business-rule", str(exc))


class StaffWrites:
    def __init__(self, upstream: Upstream, clock: Callable[[], datetime] | None = None) -> None:
        self.upstream = upstream
        self.clock = clock or (lambda: datetime.now(UTC))

    @staticmethod
    def applies_to(caller: Caller) -> bool:
        return caller.care_team is not None

    def _within_reach(self, caller: Caller, resource: Mapping[str, Any]) -> None:
        patients = patients_of(dict(resource))
        if not patients or not patients <= caller.reach:
            raise outside_care_team()

    async def _thread_start(self, caller: Caller, reference: Any, request_id: str | None) -> dict[str, Any]:
        """The first message of the conversation a staff write names, within the practitioner's reach."""
        ref = reference.get("reference") if isinstance(reference, Mapping) else None
        message_id = plain_reference(ref, "Communication") if isinstance(ref, str) else None
        message = await self.upstream.read("Communication", message_id, request_id) \
            if message_id and is_fhir_id(message_id) else None
        if message is None or message.get("resourceType") != "Communication":
            raise FHIRError(422, "business-rule", "That conversation is not known")
        self._within_reach(caller, message)
        if thread_id(message) != message.get("id"):
            start = await self.upstream.read("Communication", thread_id(message), request_id)
            if start is None:
                raise FHIRError(422, "business-rule", "That conversation is not known")
            message = start
        return message

    async def create(self, caller: Caller, resource_type: str, body: Any, request_id: str | None,
                     forward: Callable[[], Awaitable[WriteResult]]) -> WriteResult:
        try:
            validate(body, resource_type)
            if resource_type == "Communication":
                return await self._reply(caller, body, request_id)
            if resource_type == "Task":
                return await self._work_item(caller, body, None, None, request_id)
        except InboundError as exc:
            raise _unprocessable(exc) from exc
        self._within_reach(caller, body)
        return await forward()

    async def update(self, caller: Caller, resource_type: str, resource_id: str, body: Any, if_match: str | None,
                     request_id: str | None, forward: Callable[[], Awaitable[WriteResult]]) -> WriteResult:
        current = await self.upstream.read(resource_type, resource_id, request_id) if is_fhir_id(resource_id) else None
        if current is None:
            raise FHIRError(404, "not-found", f"Resource {resource_type}/{resource_id} is not known")
        self._within_reach(caller, current)
        try:
            validate(body, resource_type)
            if resource_type == "Task":
                return await self._work_item(caller, body, current, if_match, request_id)
        except InboundError as exc:
            raise _unprocessable(exc) from exc
        if resource_type == "Communication":
            raise FHIRError(403, "forbidden", "A message that was sent is not changed; reply instead")
        self._within_reach(caller, body)
        return await forward()

    # -- the rules -----------------------------------------------------------------------------
    async def _reply(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> WriteResult:
        parts = body.get("partOf") or []
        if len(parts) != 1:
            raise InboundError("A reply names the conversation's first message in partOf")
        start = await self._thread_start(caller, parts[0], request_id)
        reply = inbox.checked_reply(body, start, practitioner=caller.fhir_user or "", now=self.clock())
        for earlier in reply.get("inResponseTo") or []:
            answered = await self._thread_start(caller, earlier, request_id)
            if answered.get("id") != start.get("id"):
                raise InboundError("A reply answers a message of its own conversation")
        identifier = next(i for i in reply["identifier"] if i.get("system") == IDENTIFIER_SYSTEM)
        patient = reply["subject"]["reference"]
        headers = {"Prefer": "return=representation",
                   "If-None-Exist": f"identifier={identifier['system']}|{identifier['value']}&subject={patient}"}
        response = await self.upstream.request("POST", "Communication", json=reply, headers=headers,
                                               request_id=request_id)
        if response.status_code >= 400:
            raise self.upstream.refusal(response, "The EHR refused the reply", status=422)
        written = json_object(response)
        return WriteResult(response.status_code, written, [f"Communication/{written.get('id')}"])

    async def _care_team_members(self, patient_ref: str, request_id: str | None) -> set[str]:
        bundle = await self.upstream.search("CareTeam", [("subject", patient_ref), ("status", "active"),
                                                         ("_count", "20")], request_id)
        members: set[str] = set()
        for entry in bundle.get("entry") or []:
            team = entry.get("resource") if isinstance(entry, dict) else None
            for participant in (team or {}).get("participant") or []:
                ref = ((participant or {}).get("member") or {}).get("reference")
                if isinstance(ref, str) and ref.startswith("Practitioner/"):
                    members.add(ref)
        return members

    async def _work_item(self, caller: Caller, body: dict[str, Any], current: dict[str, Any] | None,
                         if_match: str | None, request_id: str | None) -> WriteResult:
        if current is not None and not inbox.is_work_item(current):
            raise InboundError("Only inbox work items can be changed here")
        start = await self._thread_start(caller, body.get("focus"), request_id)
        owners = await self._care_team_members(start["subject"]["reference"], request_id)
        task = inbox.checked_work_item(body, start, current=current, allowed_owners=owners,
                                       requester=caller.fhir_user or "", now=self.clock())
        if current is None:
            ident = task["identifier"][0]
            headers = {"Prefer": "return=representation",
                       "If-None-Exist": f"identifier={ident['system']}|{ident['value']}"}
            response = await self.upstream.request("POST", "Task", json=task, headers=headers, request_id=request_id)
        else:
            if not if_match:
                raise FHIRError(428, "business-rule", "Changing a work item needs If-Match (the version you saw)")
            if if_match != etag_of(current):
                raise FHIRError(412, "conflict", "Someone changed this conversation's work meanwhile; reload it")
            response = await self.upstream.request("PUT", f"Task/{current['id']}", json=task, request_id=request_id,
                                                   headers={"If-Match": if_match, "Prefer": "return=representation"})
        if response.status_code in (409, 412):
            raise FHIRError(412, "conflict", "Someone changed this conversation's work meanwhile; reload it")
        if response.status_code >= 400:
            raise self.upstream.refusal(response, "The EHR refused the change", status=422)
        written = json_object(response)
        return WriteResult(response.status_code, written, [f"Task/{written.get('id')}"])
