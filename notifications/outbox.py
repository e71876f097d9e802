"""The outbox: notices wait in a Redis stream until a sender delivers them.

`enqueue` is the whole API of the producing side, and it only writes to Redis (never waits for a mail
server). In one Lua step it claims the notice's key (SET NX with a TTL) and appends the notice, so a notice
asked for twice (a retried request, two replicas reacting to the same event) is queued once, and a key is
never claimed without its notice being queued.
"""

from __future__ import annotations

from typing import Any

STREAM = "notices:outbox"
DEAD = "notices:outbox:dead"
GROUP = "senders"


def claimed_key(digest: str) -> str:
    return f"notices:key:{digest}"


def sent_key(digest: str) -> str:
    return f"notices:sent:{digest}"


_ENQUEUE_LUA = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'event', ARGV[3])
  return 1
end
return 0
"""


class Outbox:
    def __init__(self, redis: Any, *, key_ttl: int, stream: str = STREAM) -> None:
        self.redis = redis
        self.stream = stream
        self.key_ttl = key_ttl
        self._enqueue = redis.register_script(_ENQUEUE_LUA)

    async def put(self, digest: str, payload: str) -> bool:
        """Queue `payload` under the key `digest`; False when that key was queued before (within the TTL)."""
        added = await self._enqueue(keys=[claimed_key(digest), self.stream], args=[self.key_ttl, digest, payload])
        return bool(added)

    async def backlog(self) -> int:
        return int(await self.redis.xlen(self.stream))
