"""The care-team rule's facts: which patients a practitioner cares for, and a break-the-glass request.

A practitioner (a staff token: `user/` scopes, fhirUser Practitioner/...) may see a patient's compartment
only when they are a participant of that patient's active CareTeam in the EHR. Outside it they may open
one patient's record by breaking the glass: the request names the patient and gives a reason, and its
audit event says so (purposeOfUse BTG, the reason in the record). Anything else is refused.

The EHR is asked once per practitioner per `ttl` seconds (a short, per-replica memo): a change to a care
team shows within that time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import unquote

from mappers.references import local_reference
from mappers.validation import is_fhir_id

from .caller import BreakGlass
from .errors import FHIRError, invalid

BREAK_GLASS_REASON = "x-break-glass-reason"  # URL-encoded words, 1..200 characters
BREAK_GLASS_PATIENT = "x-break-glass-patient"  # the patient id
MAX_REASON = 200
PAGE_SIZE = 1000


class EhrSearch(Protocol):
    def search(self, resource_type: str, params: Any, request_id: str | None = None) -> Awaitable[dict]: ...


def outside_care_team() -> FHIRError:
    # `security`: the staff pages offer break-the-glass on exactly this answer.
    return FHIRError(403, "security", "You are not on this patient's care team. Open the record by breaking the "
                                      "glass (with a reason, recorded) if you must.")


def break_glass_of(headers: Mapping[str, str]) -> BreakGlass | None:
    """The break-the-glass request in a request's headers, or None; a half or malformed one is refused."""
    reason, patient = headers.get(BREAK_GLASS_REASON), headers.get(BREAK_GLASS_PATIENT)
    if reason is None and patient is None:
        return None
    words = " ".join(unquote(reason or "").split())
    if not patient or not is_fhir_id(patient):
        raise invalid("Break-the-glass access names one patient (X-Break-Glass-Patient: <id>)")
    if not words or len(words) > MAX_REASON or any(ord(c) < 32 for c in words):
        raise invalid(f"Break-the-glass access needs a reason of 1 to {MAX_REASON} characters")
    return BreakGlass(f"Patient/{patient}", words)


def _subjects(bundle: Mapping[str, Any]) -> set[str]:
    found = set()
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        ref = ((resource or {}).get("subject") or {}).get("reference")
        if isinstance(ref, str) and local_reference(ref).startswith("Patient/"):
            found.add(local_reference(ref))
    return found


class CareTeams:
    def __init__(self, ehr: EhrSearch, *, ttl: float = 30.0, max_entries: int = 4096,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.ehr = ehr
        self.ttl = ttl
        self.max_entries = max_entries
        self.now = now
        self._memo: OrderedDict[str, tuple[float, frozenset[str]]] = OrderedDict()

    async def patients_of(self, practitioner: str, request_id: str | None = None) -> frozenset[str]:
        """Every patient (`Patient/<id>`) on whose active CareTeam ``practitioner`` takes part."""
        kept = self._memo.get(practitioner)
        if kept is not None and self.now() - kept[0] < self.ttl:
            return kept[1]
        # One page: a practitioner's panel is far below the page size; a larger one is cut short, which
        # only ever hides patients (deny by default), never shows more.
        bundle = await self.ehr.search("CareTeam", [("participant", practitioner), ("status", "active"),
                                                    ("_elements", "subject"), ("_count", str(PAGE_SIZE))],
                                       request_id)
        found = frozenset(_subjects(bundle))
        self._memo[practitioner] = (self.now(), found)
        self._memo.move_to_end(practitioner)
        while len(self._memo) > self.max_entries:
            self._memo.popitem(last=False)
        return found
