"""`Notifications`: the one object the rest of the app holds. Producers call `notify(...)` (enqueue only);
the lifespan runs the sender in the background with `running()`."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from mappers.notices import KINDS, link_problem, released_results

from .delivery import NoticeDelivery, Recipients
from .notice import TARGET, Notice, key_digest
from .notifier import Notifier
from .outbox import Outbox
from .reminders import AppointmentSource, VisitReminders
from .settings import NotificationSettings
from .sms import load_sms_notifier
from .smtp import SmtpNotifier

log = logging.getLogger("notifications")


class Notifications:
    def __init__(self, redis: Any, settings: NotificationSettings, recipients: Recipients, *,
                 notifiers: Mapping[str, Notifier] | None = None, ehr: AppointmentSource | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.recipients = recipients
        self.notifiers = dict(notifiers) if notifiers is not None else {
            "email": SmtpNotifier(settings), "sms": load_sms_notifier(settings)}
        self.outbox = Outbox(redis, key_ttl=settings.notice_key_ttl)
        self.queued = collections.Counter[str]()  # "new" / "repeat" per notify() call, for /metrics
        self._senders: list[NoticeDelivery] = []
        self.reminders = (VisitReminders(ehr, self, redis, hours=settings.notice_reminder_hours,
                                         interval=settings.notice_reminder_interval)
                          if ehr is not None and settings.notice_reminder_hours else None)

    async def notify(self, to: str, kind: str, link: str, *, key: str | None = None) -> bool:
        """Queue one notice; True when queued, False when the same key was queued before.

        `to`: "Patient/<id>" (that patient's own account), "account:<id>", or "mailto:<address>" (someone
        without an account yet: an invitation). `link`: a path on the portal ("/portal/messages/<id>").
        `key`: what makes two calls the same notice (e.g. "reply:<Communication id>"); without one, the same
        person, kind and link count as the same notice for PORTAL_NOTICE_KEY_TTL seconds.
        Raises ValueError for an unknown kind, target or link (a programming error, not a delivery one)."""
        if kind not in KINDS:
            raise ValueError(f"unknown notice kind {kind!r}")
        if not TARGET.fullmatch(to):
            raise ValueError("a notice goes to Patient/<id>, account:<id> or mailto:<address>")
        problem = link_problem(link)
        if problem:
            raise ValueError(problem)
        digest = key_digest(f"{kind}|{key}" if key else f"{kind}|{to}|{link}")
        notice = Notice(digest, to, kind, link, time.time())
        queued = await self.outbox.put(digest, notice.to_json())
        self.queued["new" if queued else "repeat"] += 1
        if queued:
            log.info("notice %s (%s) queued", digest, kind)
        return queued

    async def results_released(self, changed: list[dict[str, Any]]) -> None:
        """Subscribed to the EHR change feed: "a new result is ready" to each patient with a result made final,
        at most once a day (the key), and never what the result is."""
        now = datetime.now(UTC)
        for patient_id in released_results(changed, now):
            await self.notify(f"Patient/{patient_id}", "result", "/portal/results",
                              key=f"result:{patient_id}:{now.date()}")

    def delivery(self, consumer: str | None = None, **overrides: Any) -> NoticeDelivery:
        s = self.settings
        name = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        options: dict[str, Any] = {"backoff_initial": s.notice_backoff_initial, "backoff_max": s.notice_backoff_max,
                                   "public_url": s.public_url, "portal_name": s.portal_name, **overrides}
        sender = NoticeDelivery(self.redis, consumer=name, notifiers=self.notifiers, recipients=self.recipients,
                                **options)
        self._senders.append(sender)
        return sender

    def outcomes(self) -> collections.Counter[str]:
        """What this process's senders did with the notices they settled (see NoticeDelivery.outcomes)."""
        total: collections.Counter[str] = collections.Counter()
        for sender in self._senders:
            total.update(sender.outcomes)
        return total

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Send queued notices, and look for visits to remind of, in the background while the app runs (when
        PORTAL_NOTICE_SEND is on)."""
        if not self.settings.notice_send:
            yield
            return
        stop = asyncio.Event()
        tasks = [asyncio.create_task(self.delivery().run(stop), name="notice-delivery")]
        if self.reminders is not None:
            tasks.append(asyncio.create_task(self.reminders.run(stop), name="visit-reminders"))
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks), 10)
