"""Bounded staleness for changes made directly in the EHR: poll system ``_history?_since=``.

One replica at a time polls (a leader lock in the cache Redis, renewed every round); the cursor
(`_since`) lives in Redis too, so a new leader carries on where the old one stopped. The cursor is
the EHR's own clock (Bundle.meta.lastUpdated, else the Date header) minus a small overlap, never our
clock, so skew between hosts cannot lose changes. The cursor only advances once every invalidation
of a round went through. See cache/README.md for why polling rather than a FHIR Subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import orjson

from .keys import PREFIX, compartment_tag, resource_tag, type_tag
from .store import ResponseCache

log = logging.getLogger("cache.changefeed")

LEADER_KEY = PREFIX + "feed:leader"
CURSOR_KEY = PREFIX + "feed:since"
CURSOR_TTL = 86_400
_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([^/?#]+))?/?(?:[?#].*)?$")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class HTTPRequester(Protocol):
    """httpx.AsyncClient (with base_url = the EHR's FHIR base) or fhir_gateway's Upstream."""

    async def request(self, method: str, url: str, /, *, params: Any = None, headers: Any = None) -> httpx.Response: ...


class FeedError(Exception):
    """A history page could not be fetched or understood; the round is retried."""


def parse_instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else None


def server_time(bundle: dict[str, Any], response: httpx.Response) -> datetime | None:
    """The EHR's clock at the time of the answer."""
    stamp = parse_instant((bundle.get("meta") or {}).get("lastUpdated"))
    if stamp is not None:
        return stamp
    date = response.headers.get("Date")
    if date:
        try:
            return parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return None
    return None


def format_instant(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def changed_reference(entry: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """(type, id, versionId) of a history entry, also for deletes (which carry no resource)."""
    resource = entry.get("resource")
    if isinstance(resource, dict) and resource.get("resourceType") and resource.get("id"):
        version = (resource.get("meta") or {}).get("versionId")
        return str(resource["resourceType"]), str(resource["id"]), version
    for url in ((entry.get("request") or {}).get("url"), entry.get("fullUrl")):
        if url and (match := _REF.search(str(url))):
            return match.group(1), match.group(2), match.group(3)
    return None


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


class ChangeFeed:
    """Invalidate cache entries for resources changed directly in the EHR, within ~interval + 1 round."""

    def __init__(
        self,
        http: HTTPRequester,
        cache: ResponseCache,
        *,
        interval: float = 1.0,
        compartments_of: Callable[[dict[str, Any]], Iterable[str]],
        page_size: int = 200,
        overlap: float = 2.0,
        max_pages: int = 20,
        lock_ttl: float | None = None,
        history_path: str = "_history",
        instance_id: str | None = None,
    ) -> None:
        self.http = http
        self.cache = cache
        self.redis = cache.redis
        self.interval = interval
        self.compartments_of = compartments_of
        self.page_size = page_size
        self.overlap = timedelta(seconds=overlap)
        self.max_pages = max_pages
        self.lock_ttl = lock_ttl if lock_ttl is not None else max(3 * interval, 3.0)
        self.history_path = history_path
        self.instance_id = instance_id or uuid.uuid4().hex
        self.is_leader = False
        self.last_success: float | None = None  # time.time() of the last complete round
        self.rounds = 0
        self.changes_seen = 0
        # (type, id, version) already invalidated, so the overlap window does not re-invalidate them.
        self._seen: dict[tuple[str, str, str], float] = {}
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[list[dict[str, Any]]], Awaitable[Any]]] = []
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)

    def subscribe(self, listener: Callable[[list[dict[str, Any]]], Awaitable[Any]]) -> None:
        """Also hand each round's newly changed resources to `listener` (after the cache has dropped them), on
        the leader only, so one replica reacts to each change. A failing listener is logged; the feed goes on."""
        self._listeners.append(listener)

    async def _tell_listeners(self, resources: list[dict[str, Any]]) -> None:
        for listener in self._listeners if resources else ():
            try:
                await listener(resources)
            except Exception as exc:
                log.warning("change feed: a listener failed (%s)", type(exc).__name__)

    # --- Redis-side state (lock, cursor) -------------------------------------------------------

    async def _redis(self, what: str, call: Any, default: Any) -> Any:
        try:
            async with asyncio.timeout(self.cache.op_timeout):
                return await call
        except Exception as exc:  # Redis down: nobody can invalidate anyway; try again next round
            log.warning("change feed: %s failed (%s)", what, type(exc).__name__)
            return default

    async def acquire_leadership(self) -> bool:
        ttl_ms = int(self.lock_ttl * 1000)
        if self.is_leader:
            renewed = await self._redis(
                "lock renew", self._renew(keys=[LEADER_KEY], args=[self.instance_id, ttl_ms], client=self.redis), 0
            )
            if renewed:
                return True
        acquired = await self._redis("lock", self.redis.set(LEADER_KEY, self.instance_id, nx=True, px=ttl_ms), None)
        if not acquired and self.is_leader:
            log.info("change feed: leadership lost")
        self.is_leader = bool(acquired)
        return self.is_leader

    async def release_leadership(self) -> None:
        if self.is_leader:
            await self._redis(
                "lock release", self._release(keys=[LEADER_KEY], args=[self.instance_id], client=self.redis), 0
            )
        self.is_leader = False

    async def _load_cursor(self) -> datetime | None:
        raw = await self._redis("cursor read", self.redis.get(CURSOR_KEY), None)
        return parse_instant(raw.decode() if isinstance(raw, bytes) else raw)

    async def _save_cursor(self, cursor: datetime) -> None:
        await self._redis("cursor write", self.redis.set(CURSOR_KEY, format_instant(cursor), ex=CURSOR_TTL), None)

    # --- EHR side ------------------------------------------------------------------------------

    async def _get(self, url: str, params: dict[str, Any] | None) -> tuple[dict[str, Any], httpx.Response]:
        try:
            response = await self.http.request(
                "GET", url, params=params, headers={"Accept": "application/fhir+json", "Cache-Control": "no-cache"}
            )
        except Exception as exc:  # httpx errors, or the gateway's FHIRError from Upstream
            raise FeedError(f"history fetch failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise FeedError(f"history fetch answered HTTP {response.status_code}")
        try:
            bundle = orjson.loads(response.content)  # every poll, whatever changed in the whole EHR: the fast parser
        except ValueError as exc:
            raise FeedError("history answer is not JSON") from exc
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise FeedError("history answer is not a Bundle")
        return bundle, response

    def _tags_for(self, entry: dict[str, Any]) -> list[str] | None:
        """Tags to invalidate for one history entry; None means 'cannot tell' (→ invalidate all)."""
        ref = changed_reference(entry)
        if ref is None:
            return None
        rtype, rid, _ = ref
        tags = [resource_tag(rtype, rid), type_tag(rtype)]
        resource = entry.get("resource")
        if isinstance(resource, dict):
            try:
                tags += [compartment_tag(c, rtype) for c in self.compartments_of(resource)]
            except Exception as exc:  # a mapping bug must not stall the feed; fall back to safe
                log.warning("change feed: compartments_of failed for %s (%s)", rtype, type(exc).__name__)
                return None
        # Deletes carry no resource: the resource tag still kills every entry that contained it
        # (reads, and searches tagged with their results' resource tags).
        return tags

    def _prune_seen(self) -> None:
        horizon = time.monotonic() - 4 * self.overlap.total_seconds() - 4 * self.interval
        for key in [k for k, t in self._seen.items() if t < horizon]:
            del self._seen[key]

    async def poll_once(self) -> int:
        """One round (call only as leader): fetch changes since the cursor and invalidate them.

        Returns the number of changed resource versions handled. Raises FeedError when the round
        could not complete (the cursor then stays where it was).
        """
        cursor = await self._load_cursor()
        if cursor is None:
            # No cursor (first start, or the cache Redis lost it): we cannot know what changed, so
            # everything cached so far is dropped and the feed starts from the EHR's "now".
            bundle, response = await self._get(self.history_path, {"_count": 1})
            now = server_time(bundle, response)
            if now is None:
                raise FeedError("the EHR gave no usable clock (no meta.lastUpdated nor Date)")
            if not await self.cache.invalidate_all():
                raise FeedError("could not invalidate the cache")
            await self._save_cursor(now - self.overlap)
            self.last_success = time.time()
            return 0

        bundle, response = await self._get(
            self.history_path, {"_since": format_instant(cursor), "_count": self.page_size}
        )
        now = server_time(bundle, response)
        tags: list[str] = []
        new_versions: list[tuple[str, str, str]] = []
        changed: list[dict[str, Any]] = []  # the new versions' resources, for listeners
        handled = 0
        give_up = False
        pages = 1
        while True:
            for entry in bundle.get("entry") or []:
                ref = changed_reference(entry)
                if ref and ref[2] is not None:
                    version_key = (ref[0], ref[1], str(ref[2]))
                    if version_key in self._seen:
                        continue
                    new_versions.append(version_key)
                    if isinstance(entry.get("resource"), dict):
                        changed.append(entry["resource"])
                entry_tags = self._tags_for(entry)
                if entry_tags is None:
                    give_up = True
                else:
                    tags += entry_tags
                handled += 1
            link = next_link(bundle)
            if link is None or give_up:
                break
            if pages >= self.max_pages:
                give_up = True  # a backlog this large: dropping everything is cheaper than replaying it
                break
            bundle, _ = await self._get(link, None)
            pages += 1

        if give_up:
            ok = await self.cache.invalidate_all()
        else:
            ok = await self.cache.try_invalidate(dict.fromkeys(tags)) is not None
        if not ok:
            raise FeedError("could not invalidate the cache; the round will be retried")
        stamp = time.monotonic()
        for key in new_versions:
            self._seen[key] = stamp
        self._prune_seen()
        if now is not None:
            await self._save_cursor(max(cursor, now - self.overlap))
        self.changes_seen += handled
        self.last_success = time.time()
        await self._tell_listeners(changed)
        return handled

    async def step(self) -> int | None:
        """One round if this replica is (or becomes) the leader; None when it is not."""
        if not await self.acquire_leadership():
            return None
        self.rounds += 1
        return await self.poll_once()

    async def run(self) -> None:
        """Poll forever; each failure is logged and retried on the next round."""
        while True:
            started = time.monotonic()
            try:
                await self.step()
            except FeedError as exc:
                log.warning("change feed: %s", exc)
            except Exception:  # never let the loop die: bounded staleness depends on it
                log.exception("change feed: unexpected error")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="cache-change-feed")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.release_leadership()

    def status(self) -> dict[str, Any]:
        """For /readyz or metrics: is this replica polling, and how long since the last good round."""
        return {
            "leader": self.is_leader,
            "rounds": self.rounds,
            "changes_seen": self.changes_seen,
            "seconds_since_success": None if self.last_success is None else round(time.time() - self.last_success, 3),
        }
