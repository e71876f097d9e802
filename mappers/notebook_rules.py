"""What the gateway accepts as a health-notebook entry from a patient or their caregiver (pure functions).

An entry is rebuilt from what was sent, field by field, so what reaches the EHR is exactly what was checked:
the notebook's own category and codes, the patient as subject, the writer as performer, the patient's words,
a day that is not in the future, a severity for symptoms and side effects, the medicine (already checked
to be the patient's own, named as the EHR names it) and the visit a question is for. Nothing a clinician
records (interpretation, reference ranges, method, an encounter) can come in this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .notebook import (
    CATEGORIES,
    CHANGED_AFTER_SHARING,
    IDENTIFIER_SYSTEM,
    KIND_CODES,
    MEDICINE_EXTENSION,
    PRIVATE,
    QUESTION,
    SEVERITIES,
    SEVERITY_CODE,
    SHARED,
    SIDE_EFFECT,
    SNOMED,
    TEXT_MAX,
    VISIT_EXTENSION,
    entry_kind,
    is_notebook_entry,
)
from .validation import InboundError, plain_reference, validate

NOT_A_NOTEBOOK_ENTRY = "Patients may add Observations only as entries of their health notebook"
NOT_YOURS = "You can only change entries in your own health notebook"
STAYS_SHARED = "This entry is already shared with your care team, so it can't be made private again"
# Elements the notebook rebuilds itself or that a patient may send back unchanged from a read.
ALLOWED = frozenset({"resourceType", "id", "meta", "text", "identifier", "status", "category", "code", "subject",
                     "performer", "valueString", "effectiveDateTime", "issued", "component", "extension"})


def _ref(value: Any) -> str | None:
    return value.get("reference") if isinstance(value, Mapping) and isinstance(value.get("reference"), str) else None


def _extension_ref(proposed: Mapping[str, Any], url: str) -> str | None:
    """The reference an extension of `url` carries ('' when it is there but carries none), None when absent."""
    found = [e for e in proposed.get("extension") or [] if isinstance(e, Mapping) and e.get("url") == url]
    if len(found) > 1:
        raise InboundError("An entry can name only one medicine and one visit")
    return (_ref(found[0].get("valueReference")) or "") if found else None


def entry_medicine(proposed: Mapping[str, Any]) -> str | None:
    """The id of the MedicationRequest a side effect names (None: names none); InboundError if malformed."""
    ref = _extension_ref(proposed, MEDICINE_EXTENSION)
    if ref is None:
        return None
    rx = plain_reference(ref, "MedicationRequest")
    if rx is None:
        raise InboundError("Please pick the medicine from your list")
    return rx


def entry_visit(proposed: Mapping[str, Any]) -> str | None:
    """The id of the Appointment a question is for (None: the next visit); InboundError if malformed."""
    ref = _extension_ref(proposed, VISIT_EXTENSION)
    if ref is None:
        return None
    visit = plain_reference(ref, "Appointment")
    if visit is None:
        raise InboundError("Please pick one of your visits")
    return visit


def editable(current: Mapping[str, Any], *, writers: set[str]) -> bool:
    """May a caller whose references are `writers` change `current`? Only a notebook entry, and only one
    written by the patient or by this caller (never what the clinic recorded)."""
    if not is_notebook_entry(current) or entry_kind(current) is None:
        return False
    performers = {_ref(p) for p in current.get("performer") or []}
    return bool(performers) and performers <= writers


def _severity(proposed: Mapping[str, Any]) -> str:
    def codes_of(concept: Any) -> set[tuple[Any, Any]]:
        codings = concept.get("coding") if isinstance(concept, Mapping) else None
        return {(x.get("system"), x.get("code")) for x in codings or [] if isinstance(x, Mapping)}

    values = [c.get("valueCodeableConcept") for c in proposed.get("component") or [] if isinstance(c, Mapping)
              and (SNOMED, "246112005") in codes_of(c.get("code"))]
    codes = {code for v in values for code in codes_of(v)}
    found = [name for name, (code, _) in SEVERITIES.items() if (SNOMED, code) in codes]
    if len(values) != 1 or len(found) != 1 or len(codes) != 1:
        raise InboundError("Say how bad it is: one severity, mild, moderate or severe")
    return found[0]


def notebook_write(proposed: Any, current: Mapping[str, Any] | None, *, patient_ref: str, author_ref: str,
                   medicine: Mapping[str, Any] | None, medicine_name: str | None, visit_ref: str | None,
                   now: datetime) -> dict[str, Any]:
    """The entry to store. `current` is the stored entry an update replaces (already checked `editable`);
    `medicine` the caller's own MedicationRequest the entry names and `visit_ref` their own Appointment,
    both already read and checked by the gateway."""
    validate(proposed, "Observation")
    if not is_notebook_entry(proposed):
        raise InboundError(NOT_A_NOTEBOOK_ENTRY + " (category health-notebook)")
    kind = entry_kind(proposed)
    if kind is None:
        raise InboundError("Say what kind of entry this is: a symptom, a side effect or a question")
    if current is not None and kind != entry_kind(current):
        raise InboundError("An entry can't be turned into a different kind of entry")
    if extra := sorted(set(proposed) - ALLOWED):
        raise InboundError(f"{', '.join(extra)}: not part of a health notebook entry; leave it out")
    if _ref(proposed.get("subject")) != patient_ref:
        raise InboundError("A notebook entry can only be about your own record")
    for performer in proposed.get("performer") or []:
        if _ref(performer) not in (patient_ref, author_ref):
            raise InboundError("A notebook entry is written by you (performer must be you)")
    status = proposed.get("status")
    was_shared = current is not None and current.get("status") in (SHARED, CHANGED_AFTER_SHARING)
    if status not in (PRIVATE, SHARED, CHANGED_AFTER_SHARING) or (current is None and status == CHANGED_AFTER_SHARING):
        raise InboundError("An entry is private (preliminary) or shared with your care team (final)")
    if was_shared and status == PRIVATE:
        raise InboundError(STAYS_SHARED)
    text = " ".join(str(proposed.get("valueString") or "").split())
    if not text:
        raise InboundError("Write something in the entry (valueString)")
    if len(text) > TEXT_MAX:
        raise InboundError(f"Keep an entry to {TEXT_MAX} characters or fewer")
    day = proposed.get("effectiveDateTime")
    if not isinstance(day, str) or len(day) != 10:
        raise InboundError("Give the day as a date (effectiveDateTime, YYYY-MM-DD)")
    # A day ahead of the gateway's UTC date is still today somewhere east of here.
    if day > (now + timedelta(days=1)).date().isoformat():
        raise InboundError("The day can't be in the future")
    if kind == SIDE_EFFECT and medicine is None:
        raise InboundError("Please pick the medicine from your list")
    if kind != SIDE_EFFECT and entry_medicine(proposed) is not None:
        raise InboundError("Only a side effect names a medicine")
    if kind != QUESTION and entry_visit(proposed) is not None:
        raise InboundError("Only a question is for a visit")
    shaped: dict[str, Any] = {"resourceType": "Observation"}
    if current is not None:
        shaped["id"] = current["id"]
        identifiers = current.get("identifier")
    else:
        identifiers = [i for i in proposed.get("identifier") or [] if isinstance(i, Mapping)
                       and i.get("system") == IDENTIFIER_SYSTEM and isinstance(i.get("value"), str)][:1]
    if identifiers:
        shaped["identifier"] = identifiers
    extensions = []
    if medicine is not None:
        extensions.append({"url": MEDICINE_EXTENSION, "valueReference": {
            "reference": f"MedicationRequest/{medicine['id']}", "display": medicine_name or "A medicine"}})
    if visit_ref:
        extensions.append({"url": VISIT_EXTENSION, "valueReference": {"reference": visit_ref}})
    if extensions:
        shaped["extension"] = extensions
    if was_shared and status == SHARED and _content(proposed, kind) != _content(current or {}, kind):
        status = CHANGED_AFTER_SHARING  # changed after the care team may have read it
    shaped |= {
        "status": status,
        "category": CATEGORIES,
        "code": KIND_CODES[kind],
        "subject": {"reference": patient_ref},
        "effectiveDateTime": day,
        "issued": now.isoformat(timespec="seconds"),
        "performer": (current or {}).get("performer") or [{"reference": author_ref}],
        "valueString": text,
    }
    if kind != QUESTION:
        code, display = SEVERITIES[_severity(proposed)]
        shaped["component"] = [{"code": SEVERITY_CODE, "valueCodeableConcept": {
            "coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}}]
    elif proposed.get("component"):
        raise InboundError("A question has no severity")
    return validate(shaped, "Observation")


def _content(resource: Mapping[str, Any], kind: str) -> tuple[Any, ...]:
    """What the patient wrote, to tell a real change from sharing alone."""
    severity = _severity(resource) if kind != QUESTION and resource.get("component") else None
    return (" ".join(str(resource.get("valueString") or "").split()), resource.get("effectiveDateTime"), severity,
            _extension_ref(resource, MEDICINE_EXTENSION), _extension_ref(resource, VISIT_EXTENSION))
