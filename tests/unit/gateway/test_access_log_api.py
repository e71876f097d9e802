"""GET /portal/api/access-log: who may see which log, the plain words, paging, errors; respx is the EHR."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI

from audit.access_log import describe
from audit.events import auth_event, rest_event
from fhir_gateway.access import AccessChecker
from fhir_gateway.access_log_api import build_access_log_router
from fhir_gateway.caller import TokenVerifier
from fhir_gateway.errors import FHIRError
from fhir_gateway.pipeline import AccessRecord
from fhir_gateway.request_context import install_request_context
from fhir_gateway.upstream import Upstream, make_client
from smart_auth.keys import KeyStore

from .conftest import AUD, EHR, PUBLIC

URL = "/portal/api/access-log"
PT, OTHER = "pt-0001", "pt-0002"
PATIENT_SCOPES = "openid fhirUser launch/patient patient/*.rs"
T0 = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)


@dataclass
class FakeClient:
    client_name: str


class Clients:
    def __init__(self, names: dict[str, str], *, broken: bool = False) -> None:
        self.names = names
        self.broken = broken

    async def get(self, client_id: str | None) -> FakeClient | None:
        if self.broken:
            raise ConnectionError("registry down")
        name = self.names.get(client_id or "")
        return FakeClient(name) if name else None


class Api:
    def __init__(self, tmp_path: Path, *, clients: Clients | None = None, audit_fails: bool = False,
                 revocation_down: bool = False, source: Any = None) -> None:
        self.keys = KeyStore.load_or_create(tmp_path / "k.pem")
        self.audit: list[AccessRecord] = []

        async def sink(record: AccessRecord) -> None:
            if audit_fails:
                raise FHIRError(503, "transient", "The audit trail is unavailable; please try again shortly")
            self.audit.append(record)

        async def revoked(claims: Any) -> bool:
            if revocation_down:
                from redis.exceptions import ConnectionError as RedisConnectionError

                raise RedisConnectionError("down")
            return False

        client = make_client(EHR, connect_timeout=1, read_timeout=2, max_connections=10, transport="httpx")  # respx
        self.upstream = Upstream(client, EHR, retries=0)
        self.app = FastAPI()
        install_request_context(self.app, ["*"])
        self.app.include_router(build_access_log_router(
            verifier=TokenVerifier(self.keys.verification_keys(), revoked, issuer=PUBLIC, audience=AUD),
            checker=AccessChecker(), ehr=self.upstream, audit=sink,
            clients=clients if clients is not None else Clients({"portal-web": "the portal"}), source=source,
        ))

    def token(self, scope: str = PATIENT_SCOPES, *, patient: str | None = PT, fhir_user: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": PUBLIC, "sub": "acct-1", "aud": AUD, "exp": now + 600, "iat": now,
                                  "jti": uuid.uuid4().hex, "client_id": "portal-web", "scope": scope}
        if patient:
            claims["patient"] = patient
        if fhir_user or patient:
            claims["fhirUser"] = f"{AUD}/{fhir_user or f'Patient/{patient}'}"
        return self.keys.sign(claims)

    async def get(self, token: str | None, params: Any = None, path: str = URL) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC) as client:
            return await client.get(path, params=params, headers=headers)


@pytest.fixture
def api(tmp_path: Path, ehr: respx.MockRouter) -> Api:
    return Api(tmp_path)


def event(minutes: int = 0, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        interaction="search-type", outcome="0", action="E", entity_refs=["Observation/o-1"],
        patient_refs=[f"Patient/{PT}"], account_ref="Practitioner/prac-01", account_id="acct-9",
        client_id="portal-web", on_behalf_of=None, source_ip="203.0.113.9", request_id="r-1",
        query=f"patient=Patient/{PT}&category=laboratory", recorded=T0 - timedelta(minutes=minutes),
    )
    args.update(overrides)
    return rest_event(**args)


def searchset(*events: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": e, "search": {"mode": "match"}} for e in events]}


def practitioner(pid: str, given: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": pid,
            "name": [{"use": "official", "prefix": ["Dr."], "given": [given], "family": family, "suffix": ["MD"]}]}


def assert_error(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["error"] == error and body["error_description"]
    assert "resourceType" not in body
    return body


async def test_patient_sees_their_log_in_plain_words(api: Api, ehr: respx.MockRouter) -> None:
    search = ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset(event())))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(200, json=practitioner("prac-01", "Ana", "Ruiz")))
    r = await api.get(api.token())
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["patient"] == f"Patient/{PT}" and "next" not in body
    (entry,) = body["entries"]
    assert entry["text"] == "Dr. Ana Ruiz looked through your lab results via the portal on 1 June 2024 at 09:30 UTC"
    assert (entry["who"], entry["what"], entry["app"], entry["outcome"]) == (
        "Dr. Ana Ruiz", "looked through your lab results", "the portal", "success")
    assert "from" not in entry  # a staff member's network address is not shown to the patient
    sent = search.calls.last.request
    assert sent.url.params["entity"] == f"Patient/{PT}" and sent.url.params["_sort"] == "-date"
    assert sent.url.params["_count"] == "51"  # one more than shown tells whether there is a next page
    assert sent.headers["cache-control"] == "no-cache"


async def test_viewing_the_log_is_itself_audited_as_an_auditevent_search(api: Api, ehr: respx.MockRouter) -> None:
    shown = event()
    ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset(shown)))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(404))
    r = await api.get(api.token(), {"count": "10", "since": "2024-01-01"}, )
    assert r.status_code == 200
    (record,) = api.audit
    assert (record.interaction, record.outcome) == ("search-type", "0")
    assert record.patient_refs == [f"Patient/{PT}"]
    assert record.entity_refs == [f"AuditEvent/{shown['id']}"]
    assert record.caller is not None and record.caller.patient_id == PT
    assert record.request_id == r.headers["x-request-id"]
    assert record.query == f"patient=Patient%2F{PT}&_sort=-date&_count=10&date=ge2024-01-01"
    # ... and reads, in the log, as the patient looking at their access history
    audit_event = rest_event(interaction=record.interaction, outcome=record.outcome, action=record.action,
                             entity_refs=record.entity_refs, patient_refs=record.patient_refs,
                             account_ref=f"Patient/{PT}", account_id="acct-1", client_id="portal-web",
                             on_behalf_of=None, source_ip=None, request_id=record.request_id, query=record.query)
    assert describe(audit_event, {}, patient=PT)["what"] == "looked through your access history"


async def test_an_ehr_that_ignores_the_patient_filter_still_shows_only_their_events(
    api: Api, ehr: respx.MockRouter
) -> None:
    mine = event(1)
    theirs = event(0, patient_refs=[f"Patient/{OTHER}"])
    ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset(theirs, mine)))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(404))
    body = (await api.get(api.token())).json()
    assert [e["id"] for e in body["entries"]] == [mine["id"]]


async def test_caregiver_sees_the_patients_log_from_their_own_side(api: Api, ehr: respx.MockRouter) -> None:
    by_patient = event(0, account_ref=f"Patient/{PT}", source_ip="198.51.100.4")
    by_caregiver = event(1, account_ref="RelatedPerson/rp-7", on_behalf_of=f"Patient/{PT}",
                         source_ip="198.51.100.5", entity_refs=["MedicationRequest/m-1"], query=None,
                         interaction="read", action="R")
    by_doctor = event(2)
    by_other_caregiver = event(3, account_ref="RelatedPerson/rp-8", on_behalf_of=f"Patient/{PT}")
    search = ehr.get("/AuditEvent").mock(
        return_value=httpx.Response(200, json=searchset(by_patient, by_caregiver, by_doctor, by_other_caregiver)))
    ehr.get("/RelatedPerson/rp-8").mock(return_value=httpx.Response(200, json={
        "resourceType": "RelatedPerson", "id": "rp-8", "name": [{"text": "Kim Park"}]}))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(200, json=practitioner("prac-01", "A", "Ruiz")))
    ehr.get("/RelatedPerson/rp-7").mock(return_value=httpx.Response(200, json={
        "resourceType": "RelatedPerson", "id": "rp-7", "name": [{"given": ["Sam"], "family": "Lee"}]}))
    caregiver = api.token(fhir_user="RelatedPerson/rp-7")
    r = await api.get(caregiver)
    assert r.status_code == 200, r.text
    assert search.calls.last.request.url.params["entity"] == f"Patient/{PT}"
    assert [(e["who"], e["what"]) for e in r.json()["entries"]] == [
        ("The patient", "looked through their lab results"),
        ("You", "viewed the patient's medications"),
        ("Dr. A Ruiz", "looked through the patient's lab results"),
        ("The patient's caregiver Kim Park", "looked through the patient's lab results"),
    ]
    assert [e.get("from") for e in r.json()["entries"]] == [None, "198.51.100.5", None, None]
    record = api.audit[-1]
    assert record.caller is not None and record.caller.on_behalf_of == f"Patient/{PT}"
    # the caregivers' names shown come from the patient's record: the access says so
    assert {"RelatedPerson/rp-7", "RelatedPerson/rp-8"} <= set(record.entity_refs)

    # the patient sees the same events from their side
    mine = (await api.get(api.token())).json()["entries"]
    assert [e["who"] for e in mine] == ["You", "Your caregiver Sam Lee", "Dr. A Ruiz", "Your caregiver Kim Park"]
    assert mine[0]["from"] == "198.51.100.4"


@pytest.mark.parametrize(("scope", "fhir_user", "patient"), [
    ("openid fhirUser user/*.rs", "Practitioner/prac-01", None),
    ("openid fhirUser user/*.rs launch", "Practitioner/prac-01", PT),  # staff with a patient in context
    ("system/*.rs", None, None),
], ids=["staff", "staff-in-patient-context", "backend-service"])
async def test_tokens_not_acting_for_a_patient_get_403(api: Api, ehr: respx.MockRouter, scope: str,
                                                       fhir_user: str | None, patient: str | None) -> None:
    search = ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset()))
    r = await api.get(api.token(scope, patient=patient, fhir_user=fhir_user), {"patient": PT})
    assert_error(r, 403, "access_denied")
    assert not search.called
    assert [(a.interaction, a.outcome, a.patient_refs) for a in api.audit] == [("search-type", "4", [])]


@pytest.mark.parametrize("scope", ["openid launch/patient patient/Observation.rs",
                                   "launch/patient patient/AuditEvent.rs?type=rest"])
async def test_scopes_must_allow_the_whole_access_log(api: Api, ehr: respx.MockRouter, scope: str) -> None:
    search = ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset()))
    r = await api.get(api.token(scope))
    assert_error(r, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert not search.called


@pytest.mark.parametrize("scope", ["launch/patient patient/AuditEvent.rs", "launch/patient patient/*.read",
                                   "launch/patient patient/AuditEvent.s"])
async def test_auditevent_or_wildcard_scopes_are_enough(api: Api, ehr: respx.MockRouter, scope: str) -> None:
    ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset()))
    r = await api.get(api.token(scope))
    assert r.status_code == 200, r.text
    assert r.json() == {"patient": f"Patient/{PT}", "entries": []}


async def test_another_patients_log_looks_like_an_unknown_patient(api: Api, ehr: respx.MockRouter) -> None:
    search = ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset(event())))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(404))
    other = await api.get(api.token(), {"patient": OTHER})
    unknown = await api.get(api.token(), {"patient": "no-such-patient"})
    assert assert_error(other, 404, "not_found") == assert_error(unknown, 404, "not_found")
    assert not search.called
    assert [a.outcome for a in api.audit] == ["4", "4"]
    # the refused attempt names the other patient only logically: it must not land in their own log
    assert all(a.patient_refs == [] for a in api.audit)
    for asked in (PT, f"Patient/{PT}"):
        own = await api.get(api.token(), {"patient": asked})
        assert own.status_code == 200 and len(own.json()["entries"]) == 1


@pytest.mark.parametrize(("auth", "error"), [(None, "invalid_request"), ("not-a-jwt", "invalid_token")])
async def test_missing_or_bad_token_is_401_with_bearer_challenge(api: Api, auth: str | None, error: str) -> None:
    r = await api.get(auth)
    assert_error(r, 401, error)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert api.audit == []


async def test_ehr_down_is_503_with_a_clear_message_and_audited(api: Api, ehr: respx.MockRouter) -> None:
    ehr.get("/AuditEvent").mock(side_effect=httpx.ConnectError("refused"))
    r = await api.get(api.token())
    body = assert_error(r, 503, "temporarily_unavailable")
    assert "not reachable" in body["error_description"]
    assert [(a.outcome, a.patient_refs) for a in api.audit] == [("8", [f"Patient/{PT}"])]


async def test_unrecordable_access_is_refused(tmp_path: Path, ehr: respx.MockRouter) -> None:
    api = Api(tmp_path, audit_fails=True)
    ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset(event())))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(404))
    r = await api.get(api.token())
    body = assert_error(r, 503, "temporarily_unavailable")
    assert "entries" not in body and "audit" in body["error_description"]


async def test_revocation_unknown_is_503(tmp_path: Path, ehr: respx.MockRouter) -> None:
    api = Api(tmp_path, revocation_down=True)
    assert_error(await api.get(api.token()), 503, "temporarily_unavailable")


@pytest.mark.parametrize("params", [{"count": "many"}, {"count": "0"}, {"since": "yesterday"},
                                    {"since": "2024-13-45"}, {"cursor": "bm9wZQ"}, {"cursor": "%%%"}])
async def test_bad_query_parameters_are_400(api: Api, ehr: respx.MockRouter, params: dict[str, str]) -> None:
    search = ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset()))
    assert_error(await api.get(api.token(), params), 400, "invalid_request")
    assert not search.called


async def test_count_is_capped_and_since_is_passed_on(api: Api, ehr: respx.MockRouter) -> None:
    search = ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset()))
    await api.get(api.token(), {"count": "5000", "since": "2024-05-01T10:00:00+02:00"})
    params = search.calls.last.request.url.params
    assert params["_count"] == "201"
    assert params.get_list("date") == ["ge2024-05-01T08:00:00.000+00:00"]


async def test_names_fall_back_when_lookups_fail(tmp_path: Path, ehr: respx.MockRouter) -> None:
    api = Api(tmp_path, clients=Clients({}, broken=True))
    ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset(event())))
    ehr.get("/Practitioner/prac-01").mock(side_effect=httpx.ConnectError("refused"))
    (entry,) = (await api.get(api.token())).json()["entries"]
    assert (entry["who"], entry["app"]) == ("A member of your care team", "portal-web")


async def test_security_events_read_plainly(api: Api, ehr: respx.MockRouter) -> None:
    signin = auth_event("login", "failure", fhir_user=f"Patient/{PT}", patient_id=PT, client_id="portal-web",
                        source_ip="192.0.2.1", recorded=T0)
    ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset(signin)))
    (entry,) = (await api.get(api.token())).json()["entries"]
    assert entry["text"] == "You tried but failed: signed in to the portal via the portal on 1 June 2024 at 09:30 UTC"
    assert entry["from"] == "192.0.2.1"


def _cursor(next_url: str) -> str:
    return httpx.URL(next_url).params["cursor"]


def tiny_ehr(events: list[dict[str, Any]], max_page: int = 500) -> Any:
    """An EHR's AuditEvent search: date filters, newest first, `_count` up to its own maximum page size."""

    def answer(request: httpx.Request) -> httpx.Response:
        found = list(events)
        for value in request.url.params.get_list("date"):
            op, instant = value[:2], datetime.fromisoformat(value[2:])
            keep = {"ge": lambda t, i=instant: t >= i, "le": lambda t, i=instant: t <= i,
                    "lt": lambda t, i=instant: t < i}[op]
            found = [e for e in found if keep(datetime.fromisoformat(e["recorded"]))]
        found.sort(key=lambda e: e["recorded"], reverse=True)
        size = min(int(request.url.params["_count"]), max_page)
        bundle = searchset(*found[:size])
        if len(found) > size:
            bundle["link"] = [{"relation": "next", "url": f"{EHR}?_getpages=x&_getpagesoffset={size}"}]
        return httpx.Response(200, json=bundle)

    return answer


async def read_all_pages(api: Api, count: int) -> list[list[str]]:
    token = api.token()
    pages: list[list[str]] = []
    params = {"count": str(count)}
    for _ in range(20):
        body = (await api.get(token, params)).json()
        pages.append([e["id"] for e in body["entries"]])
        if "next" not in body:
            return pages
        params = {"count": str(count), "cursor": _cursor(body["next"])}
    raise AssertionError("paging did not end")


async def test_paging_works_when_the_ehr_caps_its_pages(api: Api, ehr: respx.MockRouter) -> None:
    events = [event(n) for n in range(7)]
    ehr.get("/AuditEvent").mock(side_effect=tiny_ehr(events, max_page=3))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(404))
    pages = await read_all_pages(api, 5)  # asks the EHR for 6 at a time, gets 3 and a next link
    assert [i for page in pages for i in page] == [e["id"] for e in events]
    assert [len(p) for p in pages] == [2, 2, 3]


async def test_paging_shows_every_event_once_even_when_several_share_a_millisecond(
    api: Api, ehr: respx.MockRouter
) -> None:
    # e0 newest; e2, e3, e4 recorded in the same millisecond
    events = [event(0), event(1), event(2), event(2), event(2), event(3)]
    by_id = {e["id"]: e for e in events}
    ehr.get("/AuditEvent").mock(side_effect=tiny_ehr(events))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(404))
    token = api.token()
    pages: list[list[str]] = []
    params: dict[str, str] = {"count": "3"}
    for _ in range(6):
        body = (await api.get(token, params)).json()
        pages.append([e["id"] for e in body["entries"]])
        if "next" not in body:
            break
        assert httpx.URL(body["next"]).path == URL
        params = {"count": "3", "cursor": _cursor(body["next"])}
    seen = [i for page in pages for i in page]
    assert sorted(seen) == sorted(by_id) and len(seen) == len(set(seen))
    assert [len(p) for p in pages] == [2, 3, 1]  # the shared millisecond is never split across pages

    # a page of 1 where a whole millisecond holds 3 events: that millisecond is shown whole, then the rest
    pages = []
    params = {"count": "1"}
    for _ in range(10):
        body = (await api.get(token, params)).json()
        pages.append([e["id"] for e in body["entries"]])
        if "next" not in body:
            break
        params = {"count": "1", "cursor": _cursor(body["next"])}
    seen = [i for page in pages for i in page]
    assert sorted(seen) == sorted(by_id) and len(seen) == len(set(seen))
    assert [len(p) for p in pages] == [1, 1, 3, 1]


async def test_a_forged_cursor_cannot_widen_the_log(api: Api, ehr: respx.MockRouter) -> None:
    search = ehr.get("/AuditEvent").mock(return_value=httpx.Response(200, json=searchset()))
    forged = base64.urlsafe_b64encode(b'{"le":"2024-01-01T00:00:00Z","patient":"pt-0002"}').decode().rstrip("=")
    assert_error(await api.get(api.token(), {"cursor": forged}), 400, "invalid_request")
    injected = base64.urlsafe_b64encode(b'{"le":"2024&entity=Patient/pt-0002"}').decode().rstrip("=")
    assert_error(await api.get(api.token(), {"cursor": injected}), 400, "invalid_request")
    assert not search.called


# -- served from the audit store -------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    from audit.sqlite_store import SqliteAuditStore

    s = SqliteAuditStore(tmp_path / "audit.sqlite3")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def put(store: Any, *events: dict[str, Any]) -> None:
    import json

    from audit.store import StoredEvent

    await store.add([StoredEvent.from_payload(e["id"], json.dumps(e)) for e in events], export=False)


async def test_from_the_store_the_log_reads_the_same_and_never_searches_the_ehr(
    tmp_path: Path, ehr: respx.MockRouter, store: Any
) -> None:
    api = Api(tmp_path, source=store)
    search = ehr.get("/AuditEvent").mock(return_value=httpx.Response(500))
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(200, json=practitioner("prac-01", "Ana", "Ruiz")))
    by_doctor = event(1)
    by_patient = event(0, account_ref=f"Patient/{PT}", source_ip="198.51.100.4")
    theirs = event(0, patient_refs=[f"Patient/{OTHER}"], entity_refs=["Observation/o-2"])
    await put(store, by_doctor, by_patient, theirs)
    body = (await api.get(api.token())).json()
    assert [(e["id"], e["who"], e["what"]) for e in body["entries"]] == [
        (by_patient["id"], "You", "looked through your lab results"),
        (by_doctor["id"], "Dr. Ana Ruiz", "looked through your lab results"),
    ]
    assert body["entries"][1]["text"] == ("Dr. Ana Ruiz looked through your lab results via the portal on "
                                          "1 June 2024 at 09:29 UTC")
    assert not search.called
    assert [e["id"] for e in (await api.get(api.token(patient=OTHER))).json()["entries"]] == [theirs["id"]]
    assert api.audit[0].entity_refs == [f"AuditEvent/{by_patient['id']}", f"AuditEvent/{by_doctor['id']}"]


async def test_from_the_store_paging_never_splits_a_millisecond(tmp_path: Path, ehr: respx.MockRouter,
                                                                 store: Any) -> None:
    api = Api(tmp_path, source=store)
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(404))
    events = [event(0), event(1), event(2), event(2), event(2), event(3)]
    await put(store, *events)
    for count, sizes in ((3, [2, 3, 1]), (1, [1, 1, 3, 1]), (50, [6])):
        pages = await read_all_pages(api, count)
        seen = [i for page in pages for i in page]
        assert sorted(seen) == sorted(e["id"] for e in events) and len(seen) == len(set(seen))
        assert [len(p) for p in pages] == sizes


async def test_from_the_store_since_is_honoured(tmp_path: Path, ehr: respx.MockRouter, store: Any) -> None:
    api = Api(tmp_path, source=store)
    ehr.get("/Practitioner/prac-01").mock(return_value=httpx.Response(404))
    events = [event(m) for m in range(5)]  # 09:30, 09:29, ... 09:26
    await put(store, *events)
    body = (await api.get(api.token(), {"since": "2024-06-01T11:28:00+02:00"})).json()
    assert [e["id"] for e in body["entries"]] == [e["id"] for e in events[:3]]


async def test_store_unavailable_is_503_and_audited(tmp_path: Path, ehr: respx.MockRouter) -> None:
    from audit.sqlite_store import SqliteAuditStore

    api = Api(tmp_path, source=SqliteAuditStore(tmp_path / "never-opened.sqlite3"))
    body = assert_error(await api.get(api.token()), 503, "temporarily_unavailable")
    assert "try again" in body["error_description"]
    assert [(a.outcome, a.patient_refs) for a in api.audit] == [("8", [f"Patient/{PT}"])]


async def test_names_are_looked_up_once_per_few_minutes_not_per_view(tmp_path: Path, ehr: respx.MockRouter,
                                                                     store: Any) -> None:
    from fhir_gateway.access_log_api import RecentNames

    api = Api(tmp_path, source=store)
    doctor = ehr.get("/Practitioner/prac-01").mock(
        return_value=httpx.Response(200, json=practitioner("prac-01", "Ana", "Ruiz")))
    await put(store, event(0), event(1))
    for _ in range(3):
        assert (await api.get(api.token())).json()["entries"][0]["who"] == "Dr. Ana Ruiz"
    assert doctor.call_count == 1

    now = [0.0]
    names = RecentNames(300, size=2, clock=lambda: now[0])
    names.put("Practitioner/a", "A")
    names.put("Practitioner/b", None)  # "no name" is worth remembering too
    assert names.get("Practitioner/a") == (True, "A") and names.get("Practitioner/b") == (True, None)
    names.put("Practitioner/c", "C")  # bounded: the oldest goes
    assert names.get("Practitioner/a") == (False, None)
    now[0] = 301  # and nothing is kept longer than its time
    assert names.get("Practitioner/c") == (False, None)
