"""Portal pages rendered from the demo data set without any server: a `Visit` whose FHIR client answers
from one demo patient's generated resources, so what a page says is checked against real-looking records."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from redis.asyncio import Redis
from starlette.requests import Request

from mappers.concepts import codes
from mappers.instants import first_time
from portal.core import Portal, PortalDeps, Visit
from portal.fhir import NotFound, NotSupported, RecordUnavailable, Refused, Staleness
from portal.sessions import PortalSession, Tokens
from portal.settings import PortalUiSettings

CODE_FIELDS = {"Immunization": "vaccineCode", "MedicationRequest": "medicationCodeableConcept"}
PATIENT_FIELDS = ("subject", "patient", "participant", "beneficiary", "for")
SHARED_TYPES = frozenset({"Questionnaire"})  # the clinic's, not any one patient's
WHEN_FIELDS = ("effectiveDateTime", "issued", "occurrenceDateTime", "performedDateTime", "start", "sent",
               "authoredOn", "date", "period")


def _about(resource: dict[str, Any], patient_id: str) -> bool:
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient_id
    return f"Patient/{patient_id}" in repr([resource.get(f) for f in PATIENT_FIELDS])


def _when(resource: dict[str, Any]) -> float:
    found = first_time(resource, *WHEN_FIELDS)
    return found.sort_key().timestamp() if found else 0.0


class RecordFhir:
    """Answers searches from a list of resources, honouring the few parameters the pages use (patient,
    status, code, date=ge) so that narrowing a search really narrows it. `down` lists types that fail."""

    def __init__(self, resources: Iterable[dict[str, Any]], patient_id: str, down: Iterable[str] = (),
                 summary: dict[str, Any] | Exception | None = None,
                 access_log: Iterable[dict[str, Any]] = ()) -> None:
        self.resources = list(resources)
        self.summary_answer = summary
        self.access_log = list(access_log)  # the gateway's access-log API entries (audit.access_log.describe)
        self.patient_id = patient_id
        self.down = set(down)
        self.staleness = Staleness()
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        self.calls.append((resource_type, [("_id", resource_id)]))
        if resource_type in self.down:
            raise RecordUnavailable(resource_type)
        for r in self.resources:
            if r.get("resourceType") == resource_type and r.get("id") == resource_id:
                return r
        raise NotFound(resource_type)

    async def get_json(self, path: str, params: Any = None, what: str = "") -> dict[str, Any]:
        """The portal's own JSON APIs; only the access log (one page, no more to follow) is answered."""
        self.calls.append((path, list((params or {}).items())))
        if "AuditEvent" in self.down:
            raise RecordUnavailable(what)
        return {"entries": self.access_log, "next": None}

    async def summary(self, patient_id: str) -> dict[str, Any]:
        self.calls.append(("$summary", [("patient", patient_id)]))
        if isinstance(self.summary_answer, Exception):
            raise self.summary_answer
        if self.summary_answer is None:
            raise NotSupported("summary")
        return self.summary_answer

    async def search(self, resource_type: str, params: list[tuple[str, str]] | None = None, *,
                     all_pages: bool = True, max_pages: int = 50) -> list[dict[str, Any]]:
        params = params or []
        self.calls.append((resource_type, params))
        if resource_type in self.down:
            raise RecordUnavailable(resource_type)
        found = [r for r in self.resources if r.get("resourceType") == resource_type
                 and (resource_type in SHARED_TYPES or _about(r, self.patient_id))]
        for name, value in params:
            if name == "status":
                found = [r for r in found if r.get("status") in value.split(",")]
            elif name == "code":
                if len(value.split(",")) > 20:  # the gateway's limit, as the real one answers it
                    raise Refused(f"{resource_type}: more than 20 codes")
                wanted = {tuple(v.split("|", 1)) for v in value.split(",")}
                field = CODE_FIELDS.get(resource_type, "code")
                found = [r for r in found if codes(r.get(field)) & wanted]
            elif name == "date" and value.startswith("ge"):
                found = [r for r in found if (t := first_time(r, "start")) and t.day.isoformat() >= value[2:]]
            elif name == "_sort":
                found.sort(key=lambda r: _when(r), reverse=value.startswith("-"))
        return found


class AccountChoices:
    """The account store's notice choices for the one demo account (kept in memory here, in Redis for real)."""

    def __init__(self) -> None:
        self.email: str | None = "demo@example.test"
        self.off: set[str] = set()

    async def notice_choices(self, account_id: str) -> tuple[str | None, set[str]]:
        return self.email, set(self.off)

    async def set_notice_choices(self, account_id: str, email: str | None, off: set[str]) -> None:
        self.email, self.off = email, set(off)


class KeptTemplates(BytecodeCache):
    """The portal's templates compiled once per test process. Each test builds its own Portal, and with it
    its own template environment (its own clock and settings); compiling the same templates again for every
    test was much of a page test's time. Jinja compiles a template again when its source changed."""

    def __init__(self) -> None:
        self._kept: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if (code := self._kept.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._kept[bucket.key] = bucket.bytecode_to_string()


KEPT_TEMPLATES = KeptTemplates()


def portal_for(deps: PortalDeps) -> Portal:
    """The Portal as the app builds it, sharing the test process's compiled templates (every Portal's
    environment is made the same way, so the same template compiles to the same code)."""
    portal = Portal(deps)
    portal.renderer.env.bytecode_cache = KEPT_TEMPLATES
    return portal


def demo_visit(tmp_path: Path, resources: list[dict[str, Any]], patient_id: str, today: datetime, *,
               down: Iterable[str] = (), previous_sign_in: float | None = None,
               summary: dict[str, Any] | Exception | None = None,
               access_log: Iterable[dict[str, Any]] = (), lang: str | None = None) -> Visit:
    settings = PortalUiSettings(state_dir=tmp_path)
    noon = today.replace(hour=18, tzinfo=UTC).timestamp()
    deps = PortalDeps(settings=settings, redis=Redis(port=1), clients=None, signins=None,  # type: ignore[arg-type]
                      accounts=AccountChoices(), app=object(), now=lambda: noon)  # type: ignore[arg-type]
    portal = portal_for(deps)
    session = PortalSession(id="s", account_id="a", fhir_user=f"Patient/{patient_id}", patient_id=patient_id,
                            patient_name="Demo Patient", tokens=Tokens("t", time.time() + 3600), csrf_token="c",
                            created=noon, last_seen=noon, previous_sign_in=previous_sign_in,
                            extra={"lang": lang} if lang else {})
    request = Request({"type": "http", "method": "GET", "path": "/portal/", "query_string": b"", "headers": [],
                       "client": ("203.0.113.7", 1234), "server": ("portal.test", 80), "scheme": "http"})
    fhir = RecordFhir(resources, patient_id, down, summary, access_log)
    return Visit(portal, request, session, fhir)  # type: ignore[arg-type]
