"""The `Notifier` seam: one class per channel (e-mail, text message) that sends one composed notice.

A notifier says how a failure should be treated by the exception it raises: `TemporaryFailure` (server
down, timeout, a 4xx answer) keeps the notice queued and it is tried again with back-off; `PermanentFailure`
(a 5xx answer: no such mailbox, refused) moves it to the dead-letter stream, where it stays for a person to
look at. Anything a notifier returns normally counts as sent.
"""

from __future__ import annotations

from typing import Protocol

from mappers.notices import Message


class TemporaryFailure(Exception):
    """The channel cannot take the notice now; it stays queued."""


class PermanentFailure(Exception):
    """The channel will never take this notice (e.g. the address does not exist)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class Notifier(Protocol):
    channel: str  # "email" or "sms"

    async def send(self, to: str, message: Message) -> None: ...
