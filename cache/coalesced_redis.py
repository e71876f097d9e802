"""A Redis client that sends the commands of concurrent requests together, in one pipeline.

On the request path every command costs the gateway a socket write and a read, plus redis-py's own
per-command work; on a busy gateway several requests wait on Redis at once (a cache read, a revocation
look-up, an audit record). `CoalescedRedis` queues each command and, once per event-loop turn, sends
whatever is queued as one non-transactional pipeline: one write, one read, each caller gets its own
reply or its own error. With one request in flight the pipeline holds a single command.

What stays the same for callers: every command is still sent once, replies keep their types (the
pipeline parses each reply as the command would), and a connection that fails takes the whole batch
with it, each caller seeing the failure (so a write that may have landed is treated as such, exactly
like a lone command that failed on the wire). Commands from one caller stay in order, since a caller
awaits each reply before its next command; commands of different callers were never ordered.

The batches go on one pipelined connection of the client's own (`redis_wire.RedisWire`), which costs the
gateway a fraction of redis-py's per-command CPU; replies are shaped by the client's usual response
callbacks, so callers see the same values. A client the wire does not serve (TLS, a credential provider,
decoded replies) keeps redis-py's pipeline for the batches.

Blocking commands (BLPOP, XREADGROUP ... BLOCK, WAIT...) go alone, on a connection of their own: in a
batch they would hold every other caller's reply. So do the commands that change a connection's state
(SELECT, AUTH, MULTI, WATCH, SUBSCRIBE, ...): on the shared connection they would change it for everyone.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from redis.asyncio import Redis
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

from .redis_wire import RedisWire, pack_command, target_of

_BLOCKING = frozenset({"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP",
                       "WAIT", "WAITAOF"})
_CONNECTION_STATE = frozenset({"SELECT", "AUTH", "HELLO", "RESET", "QUIT", "MULTI", "EXEC", "DISCARD", "WATCH",
                               "UNWATCH", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
                               "SUNSUBSCRIBE", "MONITOR", "CLIENT", "READONLY", "READWRITE"})
_NOT_FOR_CALLBACKS = (NEVER_DECODE, EMPTY_RESPONSE, "keys")


def _word(arg: Any) -> str:
    # redis-py writes some keywords as bytes (XREADGROUP's b"BLOCK"): str(b"BLOCK") would be "b'BLOCK'".
    return (arg.decode("latin-1") if isinstance(arg, bytes | bytearray) else str(arg)).upper()


def _alone(args: tuple[Any, ...]) -> bool:
    """Commands that must not share a batch (or the shared connection) with others."""
    name = _word(args[0])
    return (name in _BLOCKING or name.split(" ", 1)[0] in _CONNECTION_STATE
            or (name in ("XREAD", "XREADGROUP") and any(_word(a) == "BLOCK" for a in args[1:])))


Queued = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class CoalescedRedis(Redis):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[Queued] = []
        self._sender: asyncio.Task[None] | None = None
        target = target_of(self.connection_pool)
        self._wire = RedisWire(target) if target is not None else None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._wire is not None:
            self._wire.close()
        await super().aclose(close_connection_pool)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _alone(args):
            return await super().execute_command(*args, **options)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((args, options, waiter))
        if self._sender is None:
            # Starts on the next turn of the loop: every command queued during this one goes with it.
            self._sender = asyncio.ensure_future(self._send_queued())
        return await waiter

    async def _send_queued(self) -> None:
        batch: list[Queued] = []
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                batch = [item for item in batch if not item[2].done()]  # a caller that gave up (timeout)
                if not batch:
                    continue
                replies = await self._send(batch)
                for (_, _, waiter), reply in zip(batch, replies, strict=True):
                    _settle(waiter, reply)
        finally:
            self._sender = None
            # Only when this task itself was cancelled (the client closing): nobody is left waiting.
            left = [waiter for _, _, waiter in [*batch, *self._queued] if not waiter.done()]
            if left:
                closing = RedisConnectionError("the Redis client is closing")
                for waiter in left:
                    _settle(waiter, closing)
            self._queued = []

    async def _send(self, batch: list[Queued]) -> list[Any]:
        if self._wire is None:
            return await self._send_through_redis_py(batch)
        # A command with an argument redis-py would refuse gets its own error; the others still go.
        outcomes: list[Any] = []
        packed: list[bytes] = []
        for args, _, _ in batch:
            try:
                packed.append(pack_command(args))
                outcomes.append(None)
            except (DataError, UnicodeError) as exc:
                outcomes.append(exc)
        if not packed:
            return outcomes
        try:
            replies = iter(await self._wire.send(packed))
        except Exception as exc:  # the connection failed: every caller whose command went sees it
            return [refused or exc for refused in outcomes]
        return [refused or await self._shaped(args[0], next(replies), options)
                for (args, options, _), refused in zip(batch, outcomes, strict=True)]

    async def _shaped(self, command_name: Any, reply: Any, options: dict[str, Any]) -> Any:
        """A reply as redis-py's `parse_response` would hand it to the caller (its response callback)."""
        if isinstance(reply, Exception):
            if isinstance(reply, ResponseError) and EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            return reply
        callback = self.response_callbacks.get(command_name)
        if callback is None:
            return reply
        try:
            shaped = callback(reply, **{k: v for k, v in options.items() if k not in _NOT_FOR_CALLBACKS})
            return await shaped if inspect.isawaitable(shaped) else shaped
        except Exception as exc:  # handed to its caller, who decides
            return exc

    async def _send_through_redis_py(self, batch: list[Queued]) -> list[Any]:
        if len(batch) == 1:
            args, options, _ = batch[0]
            try:
                return [await super().execute_command(*args, **options)]
            except Exception as exc:  # handed to its caller, who decides
                return [exc]
        pipe = self.pipeline(transaction=False)
        for args, options, _ in batch:
            pipe.execute_command(*args, **options)
        try:
            return list(await pipe.execute(raise_on_error=False))
        except Exception as exc:  # the connection failed: every caller in the batch sees it
            return [exc] * len(batch)


def _settle(waiter: asyncio.Future[Any], reply: Any) -> None:
    if waiter.done():
        return
    if isinstance(reply, BaseException):
        waiter.set_exception(reply)
    else:
        waiter.set_result(reply)
