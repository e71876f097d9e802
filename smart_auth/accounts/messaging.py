"""How one-time codes and invitations reach people. The default writes to an outbox file for demos/tests."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Literal, Protocol

Channel = Literal["email", "sms"]


class MessageSender(Protocol):
    async def send(self, channel: Channel, to: str, subject: str, body: str, *, purpose: str) -> None: ...


class NoticeSink(Protocol):
    """The app's notice queue (notifications.Notifications): queues a PHI-free "something happened" notice
    with a link; the accounts call it for security notices (new device, sign-in settings changed)."""

    async def notify(self, to: str, kind: str, link: str, *, key: str | None = None) -> bool: ...


class OutboxSender:
    """Appends one JSON line per message to `<state_dir>/outbox.jsonl` (a stand-in for email/SMS)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    async def send(self, channel: Channel, to: str, subject: str, body: str, *, purpose: str) -> None:
        line = json.dumps(
            {"ts": time.time(), "channel": channel, "to": to, "subject": subject, "body": body, "purpose": purpose}
        )
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: the outbox holds live one-time codes.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
