"""How the gateway uses the response cache: what is cacheable, under which key, with which tags.

Access is always decided before anything here runs; a key is built from the caller's binding
(compartment + every scope it holds) and the scope grant in force, so an entry can only answer the
same compartment with the same rights. Entries are stored only after the result passed the
gateway's own checks (compartment, granular scopes, filtering), so a hit is exactly what a miss
would have answered.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cache import CachedResponse, ResponseCache, compartment_tag, read_key, resource_tag, search_key, type_tag
from cache.keys import scope_fingerprint
from smart_auth.scopes import Grant

from .caller import Caller
from .compartment import patients_of
from .policy import TypePolicy, policy_for

log = logging.getLogger("fhir_gateway.caching")

HIT, MISS, STALE, BYPASS = "HIT", "MISS", "STALE", "BYPASS"
# Upstream failures for which a kept (stale) entry may answer instead (EHR down, 5xx, timeout).
STALE_SERVABLE = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Lookup:
    """One cacheable request: where its entry lives and what the entry is tagged with."""

    key: str
    tags_before: tuple[str, ...]  # known before the fetch; their generations guard the put


# With no cache configured nothing reads a lookup; its key (a hash per request) is not worth making.
_NO_CACHE = Lookup("", ())


def _fingerprint(caller: Caller, grant: Grant) -> str:
    return _binding_fingerprint(caller.binding, grant)


@functools.lru_cache(maxsize=4096)
def _binding_fingerprint(binding: str, grant: Grant) -> str:
    # The same few (caller, grant) pairs ask again and again: computed once each (canonical JSON + SHA-256).
    return scope_fingerprint({"binding": binding, "grant": grant})


def _revincluded_types(params: Iterable[tuple[str, str]]) -> set[str]:
    # `_revinclude=Provenance:target`: a NEW Provenance can join the result without any resource
    # already in it changing, so the search must also hang on that type's tags.
    return {v.split(":", 1)[0] for k, v in params if k.startswith("_revinclude") and ":" in v}


class GatewayCache:
    """The gateway's side of caching; every method is safe to call when Redis is down (miss/no-op)."""

    def __init__(self, cache: ResponseCache | None, *, serve_stale: bool = True) -> None:
        self.cache = cache
        self.serve_stale = serve_stale

    @property
    def active(self) -> bool:
        return self.cache is not None and self.cache.available

    def miss_label(self) -> str:
        return MISS if self.active else BYPASS

    # -- keys and tags ---------------------------------------------------------------------------
    def for_read(self, caller: Caller, grant: Grant, rtype: str, resource_id: str, version_id: str | None) -> Lookup:
        if self.cache is None:
            return _NO_CACHE
        params = [("_history", version_id)] if version_id else None
        key = read_key(caller.compartment_key, _fingerprint(caller, grant), rtype, resource_id, params)
        return Lookup(key, (resource_tag(rtype, resource_id),))

    def for_search(self, caller: Caller, grant: Grant, policy: TypePolicy, rtype: str,
                   params: Sequence[tuple[str, str]]) -> Lookup:
        if self.cache is None:
            return _NO_CACHE
        key = search_key(caller.compartment_key, _fingerprint(caller, grant), rtype, params)
        types = {rtype} | _revincluded_types(params)
        tags: list[str] = []
        for t in sorted(types):
            # A search held to one patient's compartment changes when that compartment gains a
            # resource; any other search (staff, backend, shared types like Slot) when the type does.
            t_policy = policy if t == rtype else policy_for(t)
            if caller.bound_patient and t_policy is not None and not t_policy.shared:
                tags.append(compartment_tag(caller.compartment_key, t))
            else:
                tags.append(type_tag(t))
        return Lookup(key, tuple(tags))

    # -- read path -------------------------------------------------------------------------------
    async def fresh(self, lookup: Lookup) -> CachedResponse | None:
        if self.cache is None:
            return None
        return await self.cache.get(lookup.key)

    async def stale(self, lookup: Lookup, status: int) -> CachedResponse | None:
        """A kept entry to answer with while the EHR fails (`status`), when policy allows."""
        if self.cache is None or not self.serve_stale or status not in STALE_SERVABLE:
            return None
        return await self.cache.get_stale(lookup.key)

    async def generations(self, lookup: Lookup) -> dict[str, str] | None:
        if self.cache is None:
            return None
        return await self.cache.generations(lookup.tags_before)

    async def store(self, lookup: Lookup, generations: dict[str, str] | None, body: bytes, *,
                    etag: str | None, last_modified: str | None, entity_refs: list[str],
                    patient_refs: Iterable[str], version_ids: Sequence[str] = ()) -> None:
        if self.cache is None or generations is None:
            return
        tags = [*lookup.tags_before, *(resource_tag(*ref.split("/", 1)) for ref in entity_refs if "/" in ref)]
        entry = CachedResponse(
            status=200, body=body, etag=etag, last_modified=last_modified,
            content_type="application/fhir+json", stored_at=time.time(), version_ids=tuple(version_ids),
            extra={"e": entity_refs, "p": sorted(set(patient_refs))},
        )
        await self.cache.put(lookup.key, entry, tags, generations=generations)

    # -- writes ----------------------------------------------------------------------------------
    async def invalidate_write(self, caller: Caller, touched: Iterable[str], resource: dict[str, Any]) -> None:
        """Before a write's answer leaves: drop everything the write could have changed (read-your-writes).

        The written resource's old compartments need no tag: every entry that contained it hangs on
        its resource tag. Its new compartments (it may have joined their searches) and the caller's
        own compartment are invalidated for every type touched.
        """
        if self.cache is None:
            return
        compartments = set(patients_of(resource)) if resource else set()
        if caller.bound_patient:
            compartments.add(caller.compartment_key)
        tags: list[str] = []
        for ref in touched:
            if "/" not in ref:
                continue
            rtype, resource_id = ref.split("/", 1)
            tags += [resource_tag(rtype, resource_id), type_tag(rtype)]
            tags += [compartment_tag(c, rtype) for c in sorted(compartments)]
        if await self.cache.try_invalidate(tags) is None:
            # Redis is failing; when it is back the change feed replays this change from the EHR's
            # history (its cursor does not move while invalidations fail), so nothing stays stale.
            log.warning("cache invalidation after a write failed; the change feed will catch up")


def result_versions(bundle: dict[str, Any]) -> list[str]:
    """`Type/id/_history/versionId` of every resource in a search answer, in answer order."""
    out = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("id"):
            version = (resource.get("meta") or {}).get("versionId", "")
            out.append(f"{resource.get('resourceType')}/{resource['id']}/_history/{version}")
    return out


def search_etag(versions: Sequence[str], total: Any) -> str:
    """A weak validator for a search answer: same resources at the same versions (and total) → same tag,
    so a portal polling its dashboard gets 304s until something in it changes."""
    digest = hashlib.sha256(orjson.dumps([list(versions), total])).hexdigest()[:20]
    return f'W/"s-{digest}"'


def entity_refs_of(entry: CachedResponse) -> tuple[list[str], list[str]]:
    """(entity refs, patient refs) an audit record of a cache hit names: those of the original answer."""
    extra = entry.extra or {}
    return list(extra.get("e") or []), list(extra.get("p") or [])
