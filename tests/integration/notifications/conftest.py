"""A private Redis, the real SMTP catch-all, an account store in that Redis and the app's Notifications."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from notifications import AccountRecipients, Notifications, NotificationSettings
from smart_auth.accounts.models import AccountRecord
from smart_auth.accounts.secrets_box import SecretBox
from smart_auth.accounts.store import AccountStore
from tests.conftest import MailServer, RedisServer

PUBLIC_URL = "https://portal.example.test"
NOTICE_DB = 12


@dataclass
class NoticeEnv:
    redis: Any
    store: AccountStore
    notifications: Notifications
    mail: MailServer

    async def patient(self, contact: str, off: tuple[str, ...] = (), patient_id: str = "") -> AccountRecord:
        """A patient account (of its own made-up patient, unless `patient_id`) whose notices go to `contact`."""
        tag = uuid.uuid4().hex[:10]
        patient_id = patient_id or f"nt-{tag}"
        record = AccountRecord(id="", username=f"notice-{tag}", kind="patient", fhir_user=f"Patient/{patient_id}",
                               patient_id=patient_id, password_hash="x", mfa_method="totp", contact=contact,
                               notices_off=list(off))
        return await self.store.create(record)

    @contextlib.asynccontextmanager
    async def sending(self, consumers: int = 1, **overrides: Any) -> AsyncIterator[list[Any]]:
        """`consumers` senders running (as several app processes would) until the block ends."""
        stop = asyncio.Event()
        members = [self.notifications.delivery(**overrides) for _ in range(consumers)]
        tasks = [asyncio.create_task(m.run(stop)) for m in members]
        try:
            yield members
        finally:
            stop.set()
            await asyncio.gather(*tasks)


def settings_for(mail: MailServer, state_dir: Path) -> NotificationSettings:
    return NotificationSettings(public_url=PUBLIC_URL, state_dir=state_dir, smtp_host="127.0.0.1",
                                smtp_port=mail.port, smtp_tls="none", smtp_timeout=3.0, notice_backoff_initial=0.2,
                                notice_backoff_max=2.0)


@pytest.fixture
async def notice_env(redis_server: RedisServer, mail_server: MailServer, tmp_path: Path) -> AsyncIterator[NoticeEnv]:
    if not redis_server.running():
        redis_server.start()
    if mail_server.proc is None:
        mail_server.start()
    # Its own database: the session's app (tests/conftest.py `gateway`) sends from db 0 of the same server.
    redis = aioredis.from_url(f"redis://127.0.0.1:{redis_server.port}/{NOTICE_DB}", socket_timeout=5)
    # Each test its own outbox: the stream, the group and the keys start empty.
    await redis.delete("notices:outbox", "notices:outbox:dead")
    store = AccountStore(redis, SecretBox.load_or_create(tmp_path))
    notifications = Notifications(redis, settings_for(mail_server, tmp_path), AccountRecipients(store))
    try:
        yield NoticeEnv(redis, store, notifications, mail_server)
    finally:
        await redis.aclose()
