"""The encrypted read-through response cache on its own Redis.

Data model (all keys carry a TTL; names hash every id, see keys.py):
- ``cache:e:<Type>:<sha>``  hash: ``b`` = sealed entry, ``k`` = its generation keys, ``g`` = their tokens
  when it was stored. TTL = ttl + stale_ttl (fresh for ``ttl``, then servable only via ``get_stale``).
- ``cache:t:<sha(tag)>``    set of entry keys carrying the tag (TTL ≥ its entries').
- ``cache:g:<sha(tag)>``    the tag's generation: a random token replaced on every invalidation.

Invalidation replaces the generation and deletes the tagged entries in one Lua script. A put checks,
in the same atomic script, that every generation still equals what the caller read BEFORE its upstream
fetch, so a stale body fetched before a concurrent write cannot land after that write's invalidation.
A get re-checks the generations too, which keeps invalidation correct even if LRU eviction dropped a
tag set. Any Redis failure is logged (no PHI) and turns into a miss / no-op; after a failure Redis is
skipped for ``retry_after`` seconds, then tried again, so an outage costs nothing and recovery is automatic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis

from .crypto import CacheCipher
from .keys import GEN_PREFIX, compartment_tag, generation_key, resource_tag, tag_set_key

__all__ = ["CacheStats", "CachedResponse", "Generations", "ResponseCache", "compartment_tag", "resource_tag"]

log = logging.getLogger("cache.store")

T = TypeVar("T")
Generations = dict[str, str]
GLOBAL_GENERATION = GEN_PREFIX + "all"  # replaced by invalidate_all(): every entry becomes a miss
_ABSENT = "0"  # generation of a tag never invalidated (or whose generation key expired)

# KEYS[1] entry, KEYS[2..1+n] generation keys, KEYS[2+n..] tag sets.
# ARGV: blob, ttl, n, generation keys (json), expected tokens (json; '' = take the current one) or ''
# to take every current one.
_PUT = """
local n = tonumber(ARGV[3])
local ttl = tonumber(ARGV[2])
local tokens = {}
local expected = nil
if ARGV[5] ~= '' then expected = cjson.decode(ARGV[5]) end
for i = 1, n do
  local cur = redis.call('GET', KEYS[1 + i]) or '0'
  if expected and expected[i] ~= '' and cur ~= expected[i] then return 0 end
  tokens[i] = cur
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'b', ARGV[1], 'k', ARGV[4], 'g', cjson.encode(tokens))
redis.call('EXPIRE', KEYS[1], ttl)
for i = 1, n do
  local left = redis.call('TTL', KEYS[1 + i])
  if left >= 0 and left < ttl then redis.call('EXPIRE', KEYS[1 + i], ttl) end
end
for i = 2 + n, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
end
return 1
"""

# KEYS[1] entry. Returns the sealed blob, or nil when absent or any generation moved.
_GET = """
local v = redis.call('HMGET', KEYS[1], 'b', 'k', 'g')
if not v[1] then return false end
local keys = cjson.decode(v[2])
local tokens = cjson.decode(v[3])
for i, k in ipairs(keys) do
  local cur = redis.call('GET', k) or '0'
  if cur ~= tokens[i] then
    redis.call('DEL', KEYS[1])
    return false
  end
end
return v[1]
"""

# KEYS: (generation key, tag set) pairs. ARGV: new token, generation ttl. Returns entries deleted.
_INVALIDATE = """
local deleted = 0
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2])
  local members = redis.call('SMEMBERS', KEYS[i + 1])
  for _, m in ipairs(members) do deleted = deleted + redis.call('DEL', m) end
  redis.call('DEL', KEYS[i + 1])
end
return deleted
"""


@dataclass(frozen=True)
class CachedResponse:
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str
    stored_at: float
    version_ids: tuple[str, ...] = ()
    stale: bool = False  # set by get_stale() when the entry is past its freshness
    # Opaque facts the caller keeps with the body (sealed with it), e.g. what an audit record of a
    # hit must name without parsing the body again.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.stored_at)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stale_hits: int = 0
    puts: int = 0
    refused_puts: int = 0
    invalidations: int = 0
    errors: int = 0
    errors_by_op: dict[str, int] = field(default_factory=dict)


def _encode(entry: CachedResponse) -> bytes:
    meta = json.dumps(
        {
            "s": entry.status,
            "e": entry.etag,
            "lm": entry.last_modified,
            "ct": entry.content_type,
            "t": entry.stored_at,
            "v": list(entry.version_ids),
            "x": dict(entry.extra),
        },
        separators=(",", ":"),
    ).encode()
    return struct.pack(">I", len(meta)) + meta + entry.body


def _decode(plain: bytes) -> CachedResponse | None:
    try:
        (size,) = struct.unpack(">I", plain[:4])
        meta = orjson.loads(plain[4 : 4 + size])
        return CachedResponse(
            status=int(meta["s"]),
            body=plain[4 + size :],
            etag=meta["e"],
            last_modified=meta["lm"],
            content_type=meta["ct"],
            stored_at=float(meta["t"]),
            version_ids=tuple(meta["v"]),
            extra=meta.get("x") or {},
        )
    except (struct.error, ValueError, KeyError, TypeError):
        return None


def _unique(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tags))


async def _bounded(call: Awaitable[T], seconds: float) -> T:
    async with asyncio.timeout(seconds):
        return await call


class ResponseCache:
    """Read-through response cache. Never raises for Redis trouble: a miss or a no-op instead.

    ``redis`` must be a ``redis.asyncio.Redis`` with ``decode_responses=False`` and short socket
    timeouts (see ``cache.server.make_cache_redis``). ``op_timeout`` bounds each operation; None leaves
    that to the client's own timeouts (``make_cache_redis``'s: one timer per batch of commands rather
    than one per operation, which costs a warm hit a few per cent of its CPU).
    """

    def __init__(
        self,
        redis: Redis,
        cipher: CacheCipher,
        *,
        ttl: int = 300,
        enabled: bool = True,
        stale_ttl: int = 3600,
        op_timeout: float | None = 1.0,
        retry_after: float = 1.0,
        max_entry_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.redis = redis
        self.cipher = cipher
        self.ttl = int(ttl)
        self.stale_ttl = int(stale_ttl)
        self.enabled = enabled
        self.op_timeout = op_timeout
        self.retry_after = retry_after
        self.max_entry_bytes = max_entry_bytes
        self.stats = CacheStats()
        self._skip_until = 0.0
        self._put_script = redis.register_script(_PUT)
        self._get_script = redis.register_script(_GET)
        self._invalidate_script = redis.register_script(_INVALIDATE)

    @property
    def entry_ttl(self) -> int:
        """How long an entry stays in Redis: fresh for ``ttl``, then stale-servable."""
        return self.ttl + self.stale_ttl

    @property
    def generation_ttl(self) -> int:
        # Outlive every entry that could have been stored against the old generation.
        return self.entry_ttl + 60

    @property
    def available(self) -> bool:
        """False while Redis is being skipped after a failure."""
        return self.enabled and time.monotonic() >= self._skip_until

    async def _guard(self, op: str, call: Callable[[], Awaitable[T]], default: T) -> T:
        if not self.available:
            return default
        try:
            result = await (call() if self.op_timeout is None else _bounded(call(), self.op_timeout))
        except Exception as exc:  # the cache must never fail a request; only the error type is logged
            self.stats.errors += 1
            self.stats.errors_by_op[op] = self.stats.errors_by_op.get(op, 0) + 1
            if time.monotonic() >= self._skip_until:
                log.warning(
                    "cache %s failed (%s); bypassing the cache for %.1fs", op, type(exc).__name__, self.retry_after
                )
            self._skip_until = time.monotonic() + self.retry_after
            return default
        return result

    # --- reads ---------------------------------------------------------------------------------

    async def _load(self, key: str) -> CachedResponse | None:
        async def call() -> Any:
            return await self._get_script(keys=[key], client=self.redis)

        blob = await self._guard("get", call, None)
        if not isinstance(blob, bytes) or not blob:
            return None  # absent, invalidated, or a client with decode_responses=True (misconfigured)
        plain = self.cipher.open(blob, key.encode())
        if plain is None:
            # sealed by a retired key, or copied under another key: a miss, not an error
            return None
        return _decode(plain)

    async def get(self, key: str) -> CachedResponse | None:
        """A fresh entry (younger than ``ttl``) or None."""
        entry = await self._load(key)
        if entry is None or entry.age() > self.ttl:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return entry

    async def get_stale(self, key: str) -> CachedResponse | None:
        """Any entry still kept (up to ttl + stale_ttl), ``stale=True`` when past freshness.

        For serving when the EHR is down; invalidated entries are never returned.
        """
        entry = await self._load(key)
        if entry is None:
            return None
        if entry.age() > self.ttl:
            self.stats.stale_hits += 1
            return replace(entry, stale=True)
        self.stats.hits += 1
        return entry

    # --- writes --------------------------------------------------------------------------------

    def _generation_keys(self, tags: list[str]) -> list[str]:
        return [GLOBAL_GENERATION, *(generation_key(t) for t in tags)]

    async def generations(self, tags: Iterable[str]) -> Generations:
        """Read the tags' generations; call BEFORE the upstream fetch and pass the result to put().

        On failure returns an empty mapping, which makes the later put() refuse (it cannot prove
        no invalidation happened in between).
        """
        gen_keys = self._generation_keys(_unique(tags))

        async def call() -> Generations:
            values = await self.redis.mget(gen_keys)
            return {
                k: (v.decode() if isinstance(v, bytes) else v) or _ABSENT for k, v in zip(gen_keys, values, strict=True)
            }

        return await self._guard("generations", call, {})

    async def put(
        self,
        key: str,
        entry: CachedResponse,
        tags: Iterable[str],
        *,
        generations: Mapping[str, str] | None = None,
    ) -> bool:
        """Store ``entry`` under ``key`` tagged with ``tags``. Returns True when stored.

        With ``generations`` (from ``generations(before)`` read before the fetch) the put is refused if
        any of those tags was invalidated since. ``tags`` may add tags learnt only from the answer (the
        resources a search returned): their current generations are taken, which is safe as long as
        ``before`` holds a tag every relevant write also invalidates (its compartment or type tag).
        An empty ``generations`` (the read failed) refuses the put. Without it the current
        generations of every tag are taken.
        """
        tag_list = _unique(tags)
        if not self.enabled or len(entry.body) > self.max_entry_bytes:
            return False
        gen_keys = self._generation_keys(tag_list)
        expected = ""
        if generations is not None:
            if GLOBAL_GENERATION not in generations:
                self.stats.refused_puts += 1
                return False
            expected = json.dumps([generations.get(k, "") for k in gen_keys])
        blob = self.cipher.seal(_encode(entry), key.encode())
        keys = [key, *gen_keys, *(tag_set_key(t) for t in tag_list)]
        args = [blob, self.entry_ttl, len(gen_keys), json.dumps(gen_keys), expected]

        async def call() -> Any:
            return await self._put_script(keys=keys, args=args, client=self.redis)

        stored = bool(await self._guard("put", call, 0))
        if stored:
            self.stats.puts += 1
        else:
            self.stats.refused_puts += 1
        return stored

    async def invalidate(self, tags: Iterable[str]) -> int:
        """Invalidate every entry carrying any of ``tags``; returns how many entries were deleted."""
        return await self.try_invalidate(tags) or 0

    async def try_invalidate(self, tags: Iterable[str]) -> int | None:
        """Like invalidate(), but None when Redis failed (the change feed must then retry)."""
        tag_list = _unique(tags)
        if not tag_list or not self.enabled:
            return 0
        keys: list[str] = []
        for tag in tag_list:
            keys += [generation_key(tag), tag_set_key(tag)]

        async def call() -> Any:
            return await self._invalidate_script(
                keys=keys, args=[uuid.uuid4().hex, self.generation_ttl], client=self.redis
            )

        self.stats.invalidations += 1
        deleted = await self._guard("invalidate", call, None)
        return None if deleted is None else int(deleted)

    async def invalidate_all(self) -> bool:
        """Make every current entry a miss (they expire on their own TTL). True when done."""
        if not self.enabled:
            return False

        async def call() -> bool:
            return bool(await self.redis.set(GLOBAL_GENERATION, uuid.uuid4().hex, ex=self.generation_ttl))

        return await self._guard("invalidate_all", call, False)
