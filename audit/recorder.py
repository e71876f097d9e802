"""Durable recording of audit events: a Redis stream first, a local append-only spool when Redis fails.

`record()` returns only once the event is durable somewhere (stream entry, or fsynced spool line); when
neither is possible it raises `AuditUnavailable` and the caller must refuse the request (503).

Spool layout (all next to `spool_path`, mode 0600):
- `<spool>`           one JSON event per line, appended with O_APPEND + one write() + fsync.
- `<spool>.lock`      flock: writers hold it shared while appending, the replayer exclusively while it
                      renames the spool away, so no line is ever written into a file already being replayed.
- `<spool>.replaying` the batch being replayed; it survives a crash and is finished on the next replay.
- `<spool>.replayer`  flock held for a whole replay, so only one process replays at a time.
- `<spool>.corrupt`   lines that were not valid JSON (e.g. torn by a power cut) - kept, never dropped.

A spool line is `{"event": {...}, "window": [from_ms, to_ms] | null}`. `window` is set when the event was
spooled after a Redis call that failed once sent (a timeout or a dropped connection may hide a write
Redis did apply); it brackets when that write could have landed.

Replay is exactly-once into the stream: each line goes through one Lua script that checks a dedupe marker
`{<stream>}:seen:<event id>` (TTL `seen_ttl`; it lives in the stream's hash slot), for lines with a window
also looks for the event id among the stream entries of that window (stream ids are timestamps), and only
then adds the entry and sets the marker - atomically, so a replay that crashed half-way can simply run
again. The markers only guard the replay; the audit data itself never has a TTL.

Residual case: if the exporter already exported and deleted the hidden write before the replay, the
event is added once more; both copies carry the same event id and the exporter's `PUT AuditEvent/<id>`
collapses them, so the EHR still holds it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from redis.exceptions import RedisError

from .store import index_of

log = logging.getLogger("audit.recorder")

# Errors that mean "Redis did not take it": connection/timeout/OOM (noeviction) and socket errors.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

_REPLAY_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if ARGV[4] ~= '' then
  local entries = redis.call('XRANGE', KEYS[1], ARGV[4], ARGV[5], 'COUNT', 100000)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'id' and fields[i + 1] == ARGV[1] then
        redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
        return 0
      end
    end
  end
end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'event', ARGV[2])
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
return 1
"""

# With a length cap the stream refuses (and the event is spooled) instead of trimming unexported entries.
# ARGV: the cap, then the entry's field/value pairs.
_CAPPED_XADD_LUA = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
"""


# Stream ids come from the Redis server's clock; allow for it differing from ours.
CLOCK_SKEW_MS = 5_000


def stream_fields(event_id: str, payload: str, event: dict[str, Any]) -> dict[str, str]:
    """One stream entry: the event's JSON and, beside it, what the audit store indexes it by (its recorded
    time in ms, the patients it concerns), so the feeder does not parse every event again to find them."""
    fields = {"id": event_id, "event": payload}
    try:
        recorded_ms, patients = index_of(event)
    except ValueError:
        return fields  # the feeder parses it, and sets aside what it cannot index
    fields["at"] = str(recorded_ms)
    fields["patients"] = orjson.dumps(patients).decode()
    return fields


class AuditUnavailable(RuntimeError):
    """Neither Redis nor the local spool could store the event; the access must not proceed."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _seen(future: asyncio.Future[None]) -> None:
    future.exception()


def _settle(task: asyncio.Future[None], waiters: list[asyncio.Future[None]]) -> None:
    error = task.exception() if not task.cancelled() else asyncio.CancelledError()
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
            # Its request may be gone (cancelled, or the lock holder raising from the write itself): the error
            # counts as seen either way, so it is not logged again as "never retrieved" when collected.
            waiter.add_done_callback(_seen)


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class AuditRecorder:
    def __init__(
        self,
        redis: Any,
        spool_path: Path,
        *,
        stream: str = "audit:events",
        maxlen: int | None = None,
        redis_timeout: float = 2.0,
        retry_redis_after: float = 1.0,
        seen_ttl: int = 7 * 24 * 3600,
        replay_chunk: int = 200,
    ) -> None:
        self.redis = redis
        self.spool_path = Path(spool_path)
        self.stream = stream
        self.maxlen = maxlen
        self.redis_timeout = redis_timeout
        self.retry_redis_after = retry_redis_after
        self.seen_ttl = seen_ttl
        self.replay_chunk = replay_chunk
        self._spool_lock = asyncio.Lock()
        self._spool_queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._replay_lock = asyncio.Lock()
        # After a Redis failure, go straight to the spool for a moment instead of waiting on a dead server
        # for every request; the replayer (or the next attempt) finds Redis again.
        self._skip_redis_until = 0.0
        self._replay_script = redis.register_script(_REPLAY_LUA)
        self._capped_xadd = redis.register_script(_CAPPED_XADD_LUA)

    # -- paths ---------------------------------------------------------------------------------------------
    def _sibling(self, suffix: str) -> Path:
        return self.spool_path.with_name(self.spool_path.name + suffix)

    @property
    def replaying_path(self) -> Path:
        return self._sibling(".replaying")

    @property
    def corrupt_path(self) -> Path:
        return self._sibling(".corrupt")

    def spooled_bytes(self) -> int:
        """Bytes waiting in the spool (including a half-finished replay); 0 means nothing is pending."""
        total = 0
        for path in (self.spool_path, self.replaying_path):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def _seen_key(self, event_id: str) -> str:
        return f"{{{self.stream}}}:seen:{event_id}"

    # -- recording -----------------------------------------------------------------------------------------
    async def record(self, event: dict[str, Any]) -> None:
        """Store one event durably before the caller answers; raises AuditUnavailable when impossible."""
        event_id = event.get("id")
        if not event_id:
            raise ValueError("an audit event needs an id")
        # On the request path: orjson writes the same compact UTF-8 JSON as json.dumps(separators=(",", ":"),
        # ensure_ascii=False), several times faster.
        payload = orjson.dumps(event).decode()
        window: list[int] | None = None
        if time.monotonic() >= self._skip_redis_until:
            sent_ms = time.time_ns() // 1_000_000
            try:
                async with asyncio.timeout(self.redis_timeout):
                    if await self._add(stream_fields(str(event_id), payload, event)):
                        return
                log.warning("audit stream %s is at its cap (%s); spooling event %s", self.stream, self.maxlen,
                            event_id)
            except REDIS_FAILURES as exc:
                # Redis may have applied the write before failing: remember when, so replay can check.
                window = [sent_ms - CLOCK_SKEW_MS, time.time_ns() // 1_000_000 + CLOCK_SKEW_MS]
                self._skip_redis_until = time.monotonic() + self.retry_redis_after
                log.warning("audit stream unavailable (%s); spooling event %s", type(exc).__name__, event_id)
        try:
            line = f'{{"window":{json.dumps(window)},"event":{payload}}}\n'
            await self._spool(line.encode())
        except OSError as exc:
            log.error("audit spool %s not writable (%s); refusing", self.spool_path.name, type(exc).__name__)
            raise AuditUnavailable("audit trail unavailable: Redis and the local spool both failed") from exc

    async def _add(self, fields: dict[str, str]) -> bool:
        if self.maxlen is None:
            await self.redis.xadd(self.stream, fields)
            return True
        added = await self._capped_xadd(keys=[self.stream],
                                        args=[self.maxlen, *(part for pair in fields.items() for part in pair)])
        return added is not None

    async def _spool(self, line: bytes) -> None:
        """Group commit: whoever holds the lock writes every line queued so far with one write + fsync,
        so an outage costs one fsync per batch of concurrent requests instead of one per request."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._spool_queue.append((line, done))
        async with self._spool_lock:
            if not done.done():
                batch, self._spool_queue = self._spool_queue, []
                write = asyncio.get_running_loop().run_in_executor(
                    None, self._append_line, b"".join(b for b, _ in batch))
                write.add_done_callback(lambda task, batch=batch: _settle(task, [f for _, f in batch]))
                # Shielded: a cancelled request must not leave the other callers' lines unwritten.
                await asyncio.shield(write)
        await done

    def _append_line(self, line: bytes) -> None:
        directory = self.spool_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        with _flock(self._sibling(".lock"), fcntl.LOCK_SH):
            created = not self.spool_path.exists()
            fd = os.open(self.spool_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # One write() per batch of whole lines: O_APPEND keeps them whole across processes.
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write to audit spool ({written} of {len(line)} bytes)")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(directory)

    # -- replay --------------------------------------------------------------------------------------------
    async def replay_spool(self) -> int:
        """Move spooled events into the stream, oldest first, each exactly once. Returns how many were added.

        Raises the Redis error when Redis fails half-way; nothing is lost and the next call resumes.
        """
        async with self._replay_lock:
            replayer_lock = await asyncio.to_thread(self._try_replayer_lock)
            if replayer_lock is None:
                return 0  # another process is replaying right now
            try:
                added = 0
                while await asyncio.to_thread(self._claim_spool):
                    added += await self._replay_file(self.replaying_path)
                    await asyncio.to_thread(self._finish_replay)
                if added:
                    self._skip_redis_until = 0.0
                    log.info("replayed %d spooled audit events into %s", added, self.stream)
                return added
            finally:
                os.close(replayer_lock)

    def _try_replayer_lock(self) -> int | None:
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._sibling(".replayer"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _claim_spool(self) -> bool:
        """Make sure `.replaying` holds the next batch; False when there is nothing to replay."""
        if self.replaying_path.exists():
            return True  # a previous replay did not finish: complete it first
        with _flock(self._sibling(".lock"), fcntl.LOCK_EX):
            try:
                if self.spool_path.stat().st_size == 0:
                    return False
            except FileNotFoundError:
                return False
            os.replace(self.spool_path, self.replaying_path)
            _fsync_dir(self.spool_path.parent)
        return True

    def _finish_replay(self) -> None:
        self.replaying_path.unlink(missing_ok=True)
        _fsync_dir(self.spool_path.parent)

    def _read_lines(self, path: Path) -> list[tuple[str, str, list[int] | None]]:
        records: list[tuple[str, str, list[int] | None]] = []
        corrupt: list[bytes] = []
        with path.open("rb") as fh:
            for raw in fh:
                line = raw.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                    event = record["event"]
                    window = record.get("window")
                    payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
                    records.append((str(event["id"]), payload, window))
                except (ValueError, KeyError, TypeError):
                    corrupt.append(raw if raw.endswith(b"\n") else raw + b"\n")
        if corrupt:
            fd = os.open(self.corrupt_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"".join(corrupt))
                os.fsync(fd)
            finally:
                os.close(fd)
            log.error("%d unreadable audit spool lines kept in %s", len(corrupt), self.corrupt_path.name)
        return records

    async def _replay_file(self, path: Path) -> int:
        records = await asyncio.to_thread(self._read_lines, path)
        added = 0
        for start in range(0, len(records), self.replay_chunk):
            # A non-transactional pipeline still runs the scripts in order, one round trip per chunk.
            pipe = self.redis.pipeline(transaction=False)
            for event_id, payload, window in records[start : start + self.replay_chunk]:
                low, high = (str(window[0]), str(window[1])) if window else ("", "")
                await self._replay_script(
                    keys=[self.stream, self._seen_key(event_id)],
                    args=[event_id, payload, self.seen_ttl, low, high],
                    client=pipe,
                )
            results = await pipe.execute()
            added += sum(1 for r in results if int(r) == 1)
        return added

    async def run_replayer(self, interval: float) -> None:
        """Background task: every `interval` seconds, replay the spool if anything is waiting."""
        while True:
            await asyncio.sleep(interval)
            if not self.spooled_bytes():
                continue
            try:
                await self.replay_spool()
            except REDIS_FAILURES as exc:
                log.warning("audit spool replay postponed: %s", type(exc).__name__)
