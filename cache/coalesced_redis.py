"""A Redis client that sends the commands of concurrent requests together, in one pipeline.

On the request path every command costs the gateway a socket write and a read, plus redis-py's own
per-command work; on a busy gateway several requests wait on Redis at once (a cache read, a revocation
look-up, an audit record). `CoalescedRedis` queues each command and, once per event-loop turn, sends
whatever is queued as one non-transactional pipeline: one write, one read, each caller gets its own
reply or its own error. With one request in flight it sends a single command as usual.

What stays the same for callers: every command is still sent once, replies keep their types (the
pipeline parses each reply as the command would), and a connection that fails takes the whole batch
with it, each caller seeing the failure (so a write that may have landed is treated as such, exactly
like a lone command that failed on the wire). Commands from one caller stay in order, since a caller
awaits each reply before its next command; commands of different callers were never ordered.

Blocking commands (BLPOP, XREADGROUP ... BLOCK, WAIT...) go alone, on a connection of their own: in a
batch they would hold every other caller's reply.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

_BLOCKING = frozenset({"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP",
                       "WAIT", "WAITAOF"})


def _blocks(args: tuple[Any, ...]) -> bool:
    name = str(args[0]).upper()
    return name in _BLOCKING or (name in ("XREAD", "XREADGROUP") and any(str(a).upper() == "BLOCK" for a in args))


Queued = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class CoalescedRedis(Redis):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[Queued] = []
        self._sender: asyncio.Task[None] | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _blocks(args):
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
                replies = await self._send(batch)
                for (_, _, waiter), reply in zip(batch, replies, strict=True):
                    _settle(waiter, reply)
        finally:
            self._sender = None
            # Only when this task itself was cancelled (the client closing): nobody is left waiting.
            for _, _, waiter in [*batch, *self._queued]:
                _settle(waiter, RedisConnectionError("the Redis client is closing"))
            self._queued = []

    async def _send(self, batch: list[Queued]) -> list[Any]:
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
