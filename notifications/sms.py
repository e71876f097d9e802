"""Text-message notices. No SMS provider is reachable from here, so the default notifier only logs that a
text would have gone out (to a masked number; never the text's link or anything about the person).

A real provider plugs in as any class with `channel = "sms"`, a constructor taking `NotificationSettings`,
and `async def send(self, to: str, message: Message) -> None` that posts `short_text(message)` to the
provider's API (an httpx.AsyncClient, its credentials from its own `PORTAL_SMS_*` environment variables),
raising `TemporaryFailure` when the provider is down or throttling (the notice stays queued and is retried
with back-off) and `PermanentFailure` for a number the provider rejects. Name it in
`PORTAL_SMS_NOTIFIER=package.module:ClassName`.
"""

from __future__ import annotations

import importlib
import logging

from mappers.notices import Message, short_text

from .notifier import Notifier
from .settings import NotificationSettings

log = logging.getLogger("notifications.sms")


def masked(number: str) -> str:
    digits = [c for c in number if c.isdigit()]
    return "..." + "".join(digits[-2:])


class LoggingSmsNotifier:
    channel = "sms"

    def __init__(self, settings: NotificationSettings | None = None) -> None:
        self.sent = 0

    async def send(self, to: str, message: Message) -> None:
        self.sent += 1
        log.info("text message %s to %s (%d characters, not sent: no SMS provider configured)", message.key,
                 masked(to), len(short_text(message)))


def load_sms_notifier(settings: NotificationSettings) -> Notifier:
    module, _, name = settings.sms_notifier.partition(":")
    cls = getattr(importlib.import_module(module), name)
    notifier: Notifier = cls(settings)
    return notifier
