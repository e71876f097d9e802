"""Cache keys and tags as the gateway derives them: pure, so checked without Redis (the cache's client is
never connected)."""

from __future__ import annotations

import os

from redis.asyncio import Redis

from cache import ResponseCache
from cache.crypto import CacheCipher
from fhir_gateway.access import AccessChecker
from fhir_gateway.caching import GatewayCache, result_versions, search_etag
from fhir_gateway.caller import Caller
from smart_auth.scopes import ScopeSet

CHECKER = AccessChecker()
CACHE = GatewayCache(ResponseCache(Redis(), CacheCipher(os.urandom(32))))


def caller(scope: str, patient: str | None = None, fhir_user: str | None = None) -> Caller:
    return Caller(subject="s", client_id="app", scopes=ScopeSet.parse(scope), patient_id=patient,
                  fhir_user=fhir_user or (f"Patient/{patient}" if patient else None), jti="j", grant_id=None,
                  claims={})


def lookup(who: Caller, rtype: str, params: list[tuple[str, str]]):
    decision = CHECKER.authorize_search(who, rtype, params)
    return CACHE.for_search(who, decision.grant, decision.policy, rtype, decision.params)


def test_keys_differ_by_patient_and_by_scope_set_never_by_token() -> None:
    q = [("category", "laboratory")]
    a = lookup(caller("patient/*.rs", "pt-1"), "Observation", q)
    a_again = lookup(caller("patient/*.rs", "pt-1"), "Observation", q)  # another token, same rights
    b = lookup(caller("patient/*.rs", "pt-2"), "Observation", q)
    narrow = lookup(caller("patient/Observation.rs?category=laboratory", "pt-1"), "Observation", q)
    wider = lookup(caller("patient/*.rs patient/*.c", "pt-1"), "Observation", q)
    assert a.key == a_again.key
    assert len({a.key, b.key, narrow.key, wider.key}) == 4


def test_tags_follow_what_can_change_the_answer() -> None:
    patient = caller("patient/*.rs", "pt-1")
    assert lookup(patient, "Observation", []).tags_before == ("cmp:Patient/pt-1:Observation",)
    # Slots are shared: any slot change may alter a patient's slot search.
    assert lookup(patient, "Slot", [("status", "free")]).tags_before == ("cmp:*:Slot",)
    staff = caller("user/*.rs", fhir_user="Practitioner/prac-01")
    assert lookup(staff, "Observation", []).tags_before == ("cmp:*:Observation",)
    # A new Observation joins `Patient?_revinclude=Observation:patient` without the Patient changing.
    revinclude = lookup(patient, "Patient", [("_revinclude", "Observation:patient")])
    assert set(revinclude.tags_before) == {"cmp:Patient/pt-1:Patient", "cmp:Patient/pt-1:Observation"}


def test_search_etag_changes_exactly_when_a_result_changes() -> None:
    def bundle(*versions: tuple[str, str]) -> dict:
        return {"total": len(versions), "entry": [
            {"resource": {"resourceType": "Observation", "id": i, "meta": {"versionId": v}}} for i, v in versions]}

    same = search_etag(result_versions(bundle(("o1", "1"), ("o2", "3"))), 2)
    assert same == search_etag(result_versions(bundle(("o1", "1"), ("o2", "3"))), 2)
    assert same != search_etag(result_versions(bundle(("o1", "2"), ("o2", "3"))), 2)
    assert same != search_etag(result_versions(bundle(("o1", "1"))), 1)
    assert same.startswith('W/"')
