"""The sending side of the outbox: one member of the `senders` consumer group (any number of processes may
run one). It is audit/consumer.py's StreamConsumer - pending re-delivery after a crash or restart, take-over
of a dead member's entries, capped jittered back-off while the destination is down - with "deliver" meaning
"send by e-mail or text message".

Exactly once: a notice is acked (and deleted from the stream) only after its channel took it, and a
`notices:sent:<key>` marker is written between the two, so an entry delivered again (a member that died
after sending, before acking; the same entry claimed by two members) is acked without a second send. The
only window left is a process dying between the mail server's "250 OK" and that marker; the Message-ID is
the notice key, so even then a mail system can recognise the repeat.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag

from audit.consumer import DeliveryFailed, Entry, StreamConsumer
from mappers.notices import KINDS, compose

from .notice import Notice
from .notifier import Notifier, PermanentFailure, TemporaryFailure
from .outbox import DEAD, GROUP, STREAM, sent_key
from .recipients import Recipient, route

log = logging.getLogger("notifications")


class Recipients(Protocol):
    async def resolve(self, to: str) -> Recipient | None: ...


class NoticeDelivery(StreamConsumer):
    label = "notice"

    def __init__(self, redis: Any, *, consumer: str, notifiers: Mapping[str, Notifier], recipients: Recipients,
                 public_url: str, portal_name: str = "patient portal", sent_ttl: int = 7 * 86_400,
                 stream: str = STREAM, batch_size: int = 20, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0, idle_interval: float = 0.5, heartbeat_ttl: float = 3.0) -> None:
        super().__init__(redis, stream=stream, group=GROUP, consumer=consumer, batch_size=batch_size,
                         heartbeat_ttl=heartbeat_ttl, idle_interval=idle_interval, backoff_initial=backoff_initial,
                         backoff_max=backoff_max, dead_stream=DEAD if stream == STREAM else f"{stream}:dead")
        self.notifiers = notifiers
        self.recipients = recipients
        self.public_url = public_url
        self.portal_name = portal_name
        self.sent_ttl = sent_ttl
        # What became of each notice this member settled ("sent:email", "skipped", "refused", "retry", ...)
        self.outcomes: Counter[str] = Counter()

    async def deliver(self, batch: list[Entry]) -> int:
        settled = 0
        for entry in batch:
            try:
                notice = Notice.from_json(entry.payload)
                known = notice.kind in KINDS
            except (KeyError, ValueError, TypeError):
                known = False
            if not known:
                await self.refused(entry, 0, "unreadable notice")
                self.outcomes["refused"] += 1
                continue
            if await self.redis.exists(sent_key(notice.key)):
                await self.accepted([entry])  # sent before; this is a repeat delivery of the same entry
                self.outcomes["repeat"] += 1
                settled += 1
                continue
            try:
                recipient = await self.recipients.resolve(notice.to)
            except InvalidTag:
                # The account record is sealed with a key this process does not hold (moved, or a rotated
                # key): no one to send to. Dead-lettered, so one bad record never holds up everyone's notices.
                await self.refused(entry, 0, "the recipient's account record cannot be opened")
                self.outcomes["refused"] += 1
                continue
            where = route(recipient, notice.kind)
            notifier = self.notifiers.get(where.channel) if where else None
            if where is None or notifier is None:
                log.info("notice %s (%s) not sent: no address, no channel or switched off", notice.key, notice.kind)
                await self.accepted([entry])
                self.outcomes["skipped"] += 1
                settled += 1
                continue
            message = compose(notice.kind, notice.link, notice.key, public_url=self.public_url,
                              portal_name=self.portal_name, locale=recipient.lang if recipient else "en")
            try:
                await notifier.send(where.address, message)
            except PermanentFailure as exc:
                await self.refused(entry, exc.code, str(exc))
                self.outcomes["refused"] += 1
                continue
            except TemporaryFailure as exc:
                # What was settled so far stays settled; this one and the rest are tried again with back-off.
                self.outcomes["retry"] += 1
                raise DeliveryFailed(str(exc)) from exc
            await self.redis.set(sent_key(notice.key), "1", ex=self.sent_ttl)
            await self.accepted([entry])
            self.outcomes[f"sent:{where.channel}"] += 1
            settled += 1
        return settled
