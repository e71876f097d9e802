"""One member of the Redis consumer group that moves the audit stream onward, with prompt take-over of
members that died.

Every process that moves audit events out of the stream (into the audit store, or straight to the audit
record repository) is one consumer of one group. A subclass says what delivering a batch means
(`deliver`); the rules around it are the same for every destination:

- an entry is XACKed, and then XDELed (the stream must not grow), only after the destination took its
  event; a destination that refuses one event on its own sends it to `<stream>:dead` with the reason,
  acked in the same MULTI (still in Redis, nothing is dropped);
- a destination that cannot take the batch now raises `DeliveryFailed`: nothing more is acked, the
  entries stay pending to this consumer, and the next round sends them again first, so a restart resumes
  where it stopped; `run()` retries with capped, jittered backoff;
- the same event twice in the stream (an ambiguous Redis timeout) is delivered once and acked twice.

Waiting: an idle consumer waits in a blocking XREADGROUP (at most `idle_interval`, and never past its next
take-over check), so the first entry after a quiet spell is moved on at once and an idle process wakes
about once a second rather than polling; after a round that moved less than a full batch it pauses
`idle_interval`, so a steady trickle still arrives in batches. Its own pending entries are looked for when
it starts and after a round that failed (the only ways it can hold some), and the last-resort claim runs
every tenth of `claim_idle` (at least once a take-over interval).

Take-over of a dead member: while `run()` runs, the consumer keeps a heartbeat key
`{<stream>}:alive:<group>:<consumer>` with a short TTL (`heartbeat_ttl`), refreshed three times per TTL by
its own task, so a slow destination does not make it look dead. About once a second each consumer looks
for members that hold pending entries but have no heartbeat, claims those entries (XPENDING of that
member, then XCLAIM) and delivers them. A crashed process is thus replaced `heartbeat_ttl` seconds
(default 3) after its last beat, and one that stops cleanly deletes its heartbeat, so its entries move at
once. A member that is gone and holds nothing is removed from the group (by a script that checks, in the
same step, that it still holds nothing). As a last resort, entries pending longer than `claim_idle` are
claimed from anyone (XAUTOCLAIM), so a member whose heartbeat lives on while its delivery is wedged
cannot keep them forever.

A claimed entry may already have reached the destination (its consumer died after sending, before
acking); every destination is idempotent on the event id (`PUT AuditEvent/<id>`, the audit store's key),
so it is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.exceptions import ResponseError

from .pacing import Pacing, repeat_until_stopped, wait_or_stop
from .recorder import REDIS_FAILURES

log = logging.getLogger("audit.consumer")

# Removes a member from the group only while it has no heartbeat and holds nothing: XGROUP DELCONSUMER
# would otherwise drop entries it read in the meantime from the group's pending list for good.
_FORGET_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


class DeliveryFailed(RuntimeError):
    """The destination cannot take the batch now (down, timeout, overloaded); it stays pending and is retried."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Entry:
    """One event read from the stream; `stream_ids` holds every stream entry that carried it."""

    event_id: str
    payload: str
    stream_ids: list[str] = field(default_factory=list)
    event: Any = None  # the payload parsed (once, when it was read), unless a destination needs no parse
    index: tuple[int, tuple[str, ...]] | None = None  # the store's index, when the entry carried it


class StreamConsumer:
    """Reads the audit stream as `consumer` in `group` and hands batches to `deliver` (see module doc).

    Other durable queues (the notification outbox) subclass it too; `label` names the queue in logs."""

    label = "audit"

    def __init__(
        self,
        redis: Any,
        *,
        stream: str = "audit:events",
        group: str = "exporter",
        consumer: str,
        batch_size: int = 100,
        heartbeat_ttl: float = 3.0,
        claim_idle: float = 300.0,
        idle_interval: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        dead_stream: str | None = None,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.batch_size = batch_size
        self.heartbeat_ttl = heartbeat_ttl
        self.claim_idle_ms = int(claim_idle * 1000)
        self.idle_interval = idle_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.dead_stream = dead_stream or f"{stream}:dead"
        # How often members are checked for a missing heartbeat, and how long an entry of a dead member must
        # have been idle before it is claimed (one beat: a member that just read it would have beaten since).
        self.takeover_interval = min(1.0, heartbeat_ttl / 3)
        # The last resort waits `claim_idle` anyway: looking every tenth of it adds at most 10 % to that.
        self.autoclaim_interval = max(self.takeover_interval, claim_idle / 10)
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._next_takeover_check = 0.0
        self._next_autoclaim = 0.0
        # Entries this consumer read and never acked: possible at start (a crash, a restart) and after a round
        # that failed; a successful round settles everything it read, so there is nothing to look for then.
        self._may_hold_own = True
        self._stop: asyncio.Event | None = None  # set while run() runs: ends a blocking read at once
        # A blocking read that outlived the client's socket timeout would be taken for a dead connection.
        # (A client without a single pool, such as a cluster client, says nothing about it.)
        pool = getattr(redis, "connection_pool", None)
        timeout = getattr(pool, "connection_kwargs", {}).get("socket_timeout")
        self._longest_block = timeout / 2 if timeout else float("inf")
        self._forget = redis.register_script(_FORGET_LUA)

    # -- what a subclass provides ---------------------------------------------------------------------------
    async def deliver(self, batch: list[Entry]) -> int:
        """Hand `batch` to the destination, calling `accepted`/`refused` as the destination answers (so what
        it took is acked even when the rest fails); return how many it took, or raise DeliveryFailed when it
        cannot take (the rest of) the batch now."""
        raise NotImplementedError

    # -- the group ------------------------------------------------------------------------------------------
    async def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # id=0: a new group starts with everything already in the stream, nothing recorded is skipped.
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def backlog(self) -> int:
        """Entries in the stream not yet moved on (acked entries are deleted)."""
        return int(await self.redis.xlen(self.stream))

    def heartbeat_key(self, consumer: str | None = None) -> str:
        # The stream's name as hash tag: the same cluster slot as the stream, so one script can read both.
        return f"{{{self.stream}}}:alive:{self.group}:{consumer or self.consumer}"

    async def beat(self) -> None:
        await self.redis.set(self.heartbeat_key(), str(time.time_ns() // 1_000_000),
                             px=max(1, int(self.heartbeat_ttl * 1000)))

    async def retire(self) -> None:
        """Stop heart-beating now, so the others take over what this consumer still holds at once."""
        with contextlib.suppress(*REDIS_FAILURES):
            await self.redis.delete(self.heartbeat_key())

    # -- reading --------------------------------------------------------------------------------------------
    @staticmethod
    def _entries(reply: Any) -> list[tuple[str, dict[Any, Any] | None]]:
        if not reply:
            return []
        streams = reply.items() if isinstance(reply, dict) else reply  # RESP3 dict or RESP2 list
        return [(_text(message[0]), message[1]) for _name, messages in streams for message in messages]

    async def _members(self) -> list[tuple[str, int, int]]:
        """(name, pending, idle ms) of every other member of the group."""
        out = []
        for info in await self.redis.xinfo_consumers(self.stream, self.group):
            data = {_text(k): v for k, v in info.items()}
            name = _text(data["name"])
            if name != self.consumer:
                out.append((name, int(data.get("pending") or 0), int(data.get("idle") or 0)))
        return out

    async def _take_over_dead_members(self) -> list[tuple[str, dict[Any, Any] | None]]:
        now = time.monotonic()
        if now < self._next_takeover_check:
            return []
        self._next_takeover_check = now + self.takeover_interval
        # Only members that hold entries (or have been silent long enough to be forgotten) need a heartbeat
        # check; the usual idle group has none, and costs one XINFO.
        forget_after_ms = 10 * self.heartbeat_ttl * 1000
        members = [m for m in await self._members() if m[1] or m[2] > forget_after_ms]
        if not members:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for name, _pending, _idle in members:
            pipe.exists(self.heartbeat_key(name))
        alive = await pipe.execute()
        min_idle_ms = int(self.takeover_interval * 1000)
        taken: list[tuple[str, dict[Any, Any] | None]] = []
        for (name, pending, idle_ms), beating in zip(members, alive, strict=True):
            if beating:
                continue
            if not pending:
                if idle_ms > forget_after_ms:
                    await self._forget(keys=[self.stream, self.heartbeat_key(name)], args=[self.group, name])
                continue
            room = self.batch_size - len(taken)
            if room <= 0:
                break
            held = await self.redis.xpending_range(self.stream, self.group, min="-", max="+", count=room,
                                                   consumername=name, idle=min_idle_ms)
            ids = [_text(p["message_id"]) for p in held]
            if not ids:
                continue
            claimed = await self.redis.xclaim(self.stream, self.group, self.consumer, min_idle_time=min_idle_ms,
                                              message_ids=ids)
            log.warning("%s consumer %s took over %d entries of %s (no heartbeat)", self.label, self.consumer,
                        len(claimed), name)
            taken += [(_text(mid), fields) for mid, fields in claimed if mid]
        if taken:
            self._next_takeover_check = 0.0  # a dead member may hold more: look again at once
        return taken

    async def _next_batch(self, block: float = 0.0) -> list[tuple[str, dict[Any, Any] | None]]:
        # 1. our own pending entries (read earlier, never acked: crash, destination down, restart)
        if self._may_hold_own:
            own = self._entries(await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=self.batch_size))
            if own:
                return own
            self._may_hold_own = False
        # 2. entries of members that stopped heart-beating (their process died)
        taken = await self._take_over_dead_members()
        if taken:
            return taken
        # 3. last resort: entries anyone has held for very long
        stale = await self._claim_long_pending()
        if stale:
            return stale
        # 4. new entries, waiting up to `block` seconds for one
        return await self._read_new(block)

    async def _claim_long_pending(self) -> list[tuple[str, dict[Any, Any] | None]]:
        now = time.monotonic()
        if self._claim_cursor == "0-0" and now < self._next_autoclaim:
            return []
        claimed = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=self.claim_idle_ms,
            start_id=self._claim_cursor, count=self.batch_size,
        )
        self._claim_cursor = _text(claimed[0]) if claimed and claimed[0] else "0-0"
        if self._claim_cursor == "0-0":  # a full pass over the pending list: the next one in a while
            self._next_autoclaim = now + self.autoclaim_interval
        return [(_text(mid), fields) for mid, fields in (claimed[1] if claimed else []) if mid]

    async def _read_new(self, block: float) -> list[tuple[str, dict[Any, Any] | None]]:
        # Never past the next take-over check, and well inside the client's socket timeout.
        block_ms = int(min(block, self._longest_block, self._next_takeover_check - time.monotonic()) * 1000)
        read = asyncio.ensure_future(self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=self.batch_size,
            block=block_ms if block_ms > 0 else None))
        try:
            if block_ms > 0 and self._stop is not None:
                stopped = asyncio.ensure_future(self._stop.wait())
                try:
                    await asyncio.wait((read, stopped), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopped.cancel()
                if not read.done():
                    return []
            return self._entries(await read)
        finally:
            if not read.done():
                # Told to stop while waiting: the read is abandoned (redis-py drops its connection), and
                # anything the server handed over meanwhile stays pending to us, so it is looked for first.
                self._may_hold_own = True
                read.cancel()
                await asyncio.gather(read, return_exceptions=True)

    # -- settling -------------------------------------------------------------------------------------------
    async def _ack(self, stream_ids: Sequence[str]) -> None:
        if not stream_ids:
            return
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, *stream_ids)
        pipe.xdel(self.stream, *stream_ids)  # only acked entries are ever deleted
        await pipe.execute()

    async def _dead_letter(self, event_id: str, payload: str, stream_ids: Sequence[str], status: int,
                           reason: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.dead_stream, {"id": event_id, "event": payload, "status": str(status), "reason": reason,
                                     "stream_ids": ",".join(stream_ids)})
        pipe.xack(self.stream, self.group, *stream_ids)
        pipe.xdel(self.stream, *stream_ids)
        await pipe.execute()
        log.error("%s entry %s refused (%s: %s); moved to %s", self.label, event_id or "?", status, reason,
                  self.dead_stream)

    async def accepted(self, entries: Sequence[Entry]) -> None:
        await self._ack([sid for entry in entries for sid in entry.stream_ids])

    async def refused(self, entry: Entry, status: int, reason: str) -> None:
        await self._dead_letter(entry.event_id, entry.payload, entry.stream_ids, status, reason)

    def read_entry(self, data: dict[str, str]) -> Entry:
        """One stream entry's event; raises KeyError, ValueError or TypeError for an unreadable entry."""
        payload = data["event"]
        event = orjson.loads(payload)  # parsed once, by the fast parser: this runs for every event
        return Entry(data.get("id") or str(event["id"]), payload, event=event)

    # -- one round ------------------------------------------------------------------------------------------
    async def process_once(self, block: float = 0.0) -> int:
        """Move one batch on; returns how many events the destination took (0: nothing to do). With `block`,
        an idle stream is waited on for up to that many seconds before the round gives up.

        Raises DeliveryFailed when the destination cannot take it now, or a Redis error when Redis is down.
        """
        try:
            return await self._round(block)
        except BaseException:
            self._may_hold_own = True  # whatever it read may be unacked now: look first next time
            raise

    async def _round(self, block: float) -> int:
        await self.ensure_group()
        try:
            entries = await self._next_batch(block)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream (and with it the group) was deleted since we created it: start over.
            self._group_ready = False
            self._may_hold_own = True
            await self.ensure_group()
            entries = await self._next_batch()
        if not entries:
            return 0
        events: dict[str, Entry] = {}
        for stream_id, fields in entries:
            if not fields:
                await self._ack([stream_id])  # deleted while pending: nothing left to deliver
                continue
            data = {_text(k): _text(v) for k, v in fields.items()}
            try:
                entry = self.read_entry(data)
            except (KeyError, ValueError, TypeError):
                await self._dead_letter("", json.dumps(data), [stream_id], 0, "unreadable stream entry")
                continue
            events.setdefault(entry.event_id, entry).stream_ids.append(stream_id)
        batch = list(events.values())
        if not batch:
            return 0
        return await self.deliver(batch)

    # -- background task ------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Move the stream on until `stop` is set: one round after another, an idle one waiting in a blocking
        read (up to `idle_interval`) that a new entry or `stop` ends; meanwhile a second task keeps this
        consumer's heartbeat."""
        done = asyncio.Event()
        heart = asyncio.create_task(self._keep_beating(done), name=f"{self.label}-heartbeat-{self.group}")
        try:
            await self._loop(stop)
        finally:
            # Told to finish rather than cancelled: a cancelled beat may already be on the wire and land
            # after the retirement below, announcing a consumer that has left.
            done.set()
            await heart
            await self.retire()

    async def _keep_beating(self, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                await self.beat()
            except REDIS_FAILURES as exc:
                log.warning("%s heartbeat not stored: %s", self.label, type(exc).__name__)
            await wait_or_stop(done, self.heartbeat_ttl / 3)

    async def _loop(self, stop: asyncio.Event) -> None:
        async def step() -> bool:
            moved = await self.process_once(block=self.idle_interval)
            # Nothing came: the round has waited in its blocking read already, wait again at once. A full
            # batch: more is waiting. Anything else pauses `idle_interval`, so that under a steady trickle
            # the destination gets a batch a second rather than one event at a time (a commit each).
            return moved == 0 or moved >= self.batch_size

        self._stop = stop

        pacing = Pacing(self.idle_interval, self.backoff_initial, self.backoff_max)
        await repeat_until_stopped(step, stop, pacing, expected=(DeliveryFailed, *REDIS_FAILURES),
                                   what=f"{self.label} delivery")
