"""Pure key derivation: compartments, scope fingerprints, canonical queries, no PHI in key names."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from cache.keys import (
    canonical_params,
    compartment_tag,
    read_key,
    resource_tag,
    scope_fingerprint,
    search_key,
    type_tag,
)
from cache.server import redis_server_args


@dataclass(frozen=True)
class Grant:  # the shape of smart_auth.scopes.Grant
    allowed: bool
    constraint_sets: tuple[tuple[tuple[str, str], ...], ...] = ()
    unconstrained: bool = False


FULL = scope_fingerprint(Grant(True, (), True))
LAB_ONLY = scope_fingerprint(Grant(True, ((("category", "laboratory"),),), False))


def test_compartment_is_part_of_the_key() -> None:
    params = [("name", "Smith")]
    a = search_key("Patient/pt-0001", FULL, "Observation", params)
    b = search_key("Patient/pt-0002", FULL, "Observation", params)
    user = search_key("user:Practitioner/prac-01", FULL, "Observation", params)
    assert len({a, b, user}) == 3


def test_narrower_scope_gets_a_different_key() -> None:
    assert FULL != LAB_ONLY
    assert search_key("Patient/pt-0001", FULL, "Observation", []) != search_key(
        "Patient/pt-0001", LAB_ONLY, "Observation", []
    )


def test_scope_fingerprint_ignores_set_order() -> None:
    assert scope_fingerprint({"patient/Observation.rs", "launch/patient"}) == scope_fingerprint(
        {"launch/patient", "patient/Observation.rs"}
    )


def test_read_and_search_and_types_never_collide() -> None:
    read = read_key("Patient/pt-0001", FULL, "Observation", "obs-1")
    search = search_key("Patient/pt-0001", FULL, "Observation", [("_id", "obs-1")])
    other_type = read_key("Patient/pt-0001", FULL, "Condition", "obs-1")
    assert len({read, search, other_type}) == 3


def test_param_order_is_canonical_but_repeats_keep_their_order() -> None:
    a = search_key("Patient/pt-0001", FULL, "Observation", [("code", "x"), ("date", "ge2020"), ("date", "le2021")])
    b = search_key("Patient/pt-0001", FULL, "Observation", [("date", "ge2020"), ("code", "x"), ("date", "le2021")])
    c = search_key("Patient/pt-0001", FULL, "Observation", {"date": ["ge2020", "le2021"], "code": "x"})
    assert a == b == c
    assert canonical_params([("date", "le2021"), ("date", "ge2020")]) == [("date", "le2021"), ("date", "ge2020")]


def test_format_spellings_are_one_key() -> None:
    plain = search_key("Patient/pt-0001", FULL, "Observation", [("code", "x")])
    for fmt in ("json", "application/fhir+json", "application/json", "application/fhir+json; charset=utf-8"):
        assert search_key("Patient/pt-0001", FULL, "Observation", [("code", "x"), ("_format", fmt)]) == plain
    assert search_key("Patient/pt-0001", FULL, "Observation", [("code", "x"), ("_format", "xml")]) != plain
    assert canonical_params([("_pretty", "false")]) == []


def test_no_phi_in_key_names_and_namespaced() -> None:
    key = search_key("Patient/pt-0001", FULL, "Patient", [("name", "Smithson"), ("birthdate", "1970-01-01")])
    assert key.startswith("cache:e:Patient:")
    for secret in ("Smithson", "1970", "pt-0001"):
        assert secret not in key


def test_tags() -> None:
    assert resource_tag("Observation", "obs-1") != resource_tag("Observation", "obs-2")
    assert compartment_tag("Patient/pt-0001", "Observation") != compartment_tag("Patient/pt-0002", "Observation")
    assert type_tag("Observation") != compartment_tag("Patient/pt-0001", "Observation")


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "code", "_format"]), st.text(max_size=5)), max_size=6),
    st.randoms(),
)
def test_shuffling_distinct_names_never_changes_the_key(pairs: list[tuple[str, str]], rnd) -> None:
    # Group by name (relative order within a name is meaningful), shuffle the groups.
    names = list(dict.fromkeys(n for n, _ in pairs))
    rnd.shuffle(names)
    shuffled = [p for n in names for p in pairs if p[0] == n]
    assert search_key("c", FULL, "Observation", pairs) == search_key("c", FULL, "Observation", shuffled)


def test_redis_server_args_make_an_evicting_cache_instance() -> None:
    args = redis_server_args("128mb", port=6380)
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--maxmemory"] == "128mb"
    assert pairs["--maxmemory-policy"] == "allkeys-lru"
    assert pairs["--port"] == "6380"
    assert pairs["--appendonly"] == "no"
