"""Notices through the real outbox (Redis stream) to the real SMTP catch-all."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest

from notifications.catchall import body_of
from notifications.notice import key_digest
from notifications.outbox import DEAD, GROUP, STREAM

from .conftest import PUBLIC_URL, NoticeEnv

pytestmark = pytest.mark.integration


def address() -> str:
    return f"p-{uuid.uuid4().hex[:10]}@example.test"


async def settle(env: NoticeEnv, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while await env.notifications.outbox.backlog() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert await env.notifications.outbox.backlog() == 0


async def test_a_notice_arrives_by_email_with_its_link_and_nothing_else(notice_env: NoticeEnv) -> None:
    to = address()
    record = await notice_env.patient(to)
    assert await notice_env.notifications.notify(f"Patient/{record.patient_id}", "message",
                                                 "/portal/messages/abc", key="reply:abc")
    async with notice_env.sending():
        [mail] = await asyncio.to_thread(notice_env.mail.wait_for, to)
    assert mail["Subject"] == "You have a new message"
    body = body_of(mail)
    assert f"{PUBLIC_URL}/portal/messages/abc" in body
    assert "no health information" in body
    assert record.patient_id not in body and record.username not in body  # nothing that names the person
    assert mail["Message-ID"] == f"<{key_digest('message|reply:abc')}@portal.localhost>"


async def test_the_same_notice_twice_is_sent_once(notice_env: NoticeEnv) -> None:
    to = address()
    record = await notice_env.patient(to)
    n = notice_env.notifications
    first = await n.notify(f"account:{record.id}", "request", "/portal/medications", key="refill:1")
    again = await asyncio.gather(*(n.notify(f"account:{record.id}", "request", "/portal/medications",
                                            key="refill:1") for _ in range(5)))
    other = await n.notify(f"account:{record.id}", "request", "/portal/medications", key="refill:2")
    assert (first, set(again), other) == (True, {False}, True)
    async with notice_env.sending():
        await asyncio.to_thread(notice_env.mail.wait_for, to, 2)
        await settle(notice_env)
        await asyncio.sleep(1.0)  # a late duplicate would show up by now
    assert len(notice_env.mail.to(to)) == 2
    assert n.queued == {"new": 2, "repeat": 5} and n.outcomes()["sent:email"] == 2


async def test_a_kind_switched_off_is_not_sent_but_security_notices_always_are(notice_env: NoticeEnv) -> None:
    to = address()
    record = await notice_env.patient(to, off=("appointment", "new-device"))
    n = notice_env.notifications
    await n.notify(f"account:{record.id}", "appointment", "/portal/appointments/1", key="book:1")
    await n.notify(f"account:{record.id}", "new-device", "/auth/account/security", key="device:1")
    async with notice_env.sending():
        await settle(notice_env)
        [mail] = await asyncio.to_thread(notice_env.mail.wait_for, to)
    assert mail["Subject"] == "A new sign-in to your account"
    # Switched on again, the next appointment notice is sent.
    await notice_env.store.set_notice_choices(record.id, to, set())
    await n.notify(f"account:{record.id}", "appointment", "/portal/appointments/1", key="book:2")
    async with notice_env.sending():
        mails = await asyncio.to_thread(notice_env.mail.wait_for, to, 2)
    assert mails[-1]["Subject"] == "Your appointments changed"


async def test_an_invitation_goes_to_an_address_without_an_account(notice_env: NoticeEnv) -> None:
    to = address()
    await notice_env.notifications.notify(f"mailto:{to}", "invitation", "/auth/enrol?code=XYZ", key="inv:1")
    async with notice_env.sending():
        [mail] = await asyncio.to_thread(notice_env.mail.wait_for, to)
    assert f"{PUBLIC_URL}/auth/enrol?code=XYZ" in body_of(mail)


async def test_a_phone_number_gets_a_text_message_through_the_sms_notifier(
        notice_env: NoticeEnv, caplog: pytest.LogCaptureFixture) -> None:
    record = await notice_env.patient("+1 555 010 2299")
    caplog.set_level(logging.INFO, logger="notifications.sms")
    await notice_env.notifications.notify(f"account:{record.id}", "result", "/portal/results", key="res:1")
    async with notice_env.sending():
        await settle(notice_env)
    sms = notice_env.notifications.notifiers["sms"]
    assert sms.sent == 1  # type: ignore[attr-defined]
    logged = caplog.text
    assert "...99" in logged and "555" not in logged  # the number is masked in the log


async def test_bad_requests_are_refused_before_anything_is_queued(notice_env: NoticeEnv) -> None:
    n = notice_env.notifications
    for to, kind, link in (("Patient/1", "gossip", "/portal"), ("someone", "message", "/portal"),
                           ("Patient/1", "message", "https://evil.example/portal"),
                           ("Patient/1", "message", "//evil.example/x")):
        with pytest.raises(ValueError):
            await n.notify(to, kind, link)
    assert await n.outbox.backlog() == 0


async def test_a_notice_a_dead_sender_held_is_taken_over_and_sent_once(notice_env: NoticeEnv) -> None:
    """A process read a notice and died before sending: another one sends it. A process that sent and died
    before acking: the notice is not sent again."""
    to = address()
    record = await notice_env.patient(to)
    n, redis = notice_env.notifications, notice_env.redis
    await n.notify(f"account:{record.id}", "message", "/portal/messages/1", key="crash:1")
    await n.notify(f"account:{record.id}", "message", "/portal/messages/2", key="crash:2")
    # The dead member: read both (they are now pending to it) and "sent" the second before dying.
    dead = n.delivery("crashed-member")
    await dead.ensure_group()
    await redis.xreadgroup(GROUP, "crashed-member", {STREAM: ">"}, count=10)
    await redis.set(f"notices:sent:{key_digest('message|crash:2')}", "1")
    async with notice_env.sending():
        await settle(notice_env)
        await asyncio.sleep(1.0)
    mails = notice_env.mail.to(to)
    assert [m["Message-ID"] for m in mails] == [f"<{key_digest('message|crash:1')}@portal.localhost>"]
    assert not (await redis.xpending(STREAM, GROUP))["pending"]


async def test_a_refused_address_goes_to_the_dead_letters_not_round_and_round(notice_env: NoticeEnv) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    class RefusingHandler:
        async def handle_RCPT(self, server: SMTP, session: object, envelope: object, address: str,
                              options: list[str]) -> str:
            return "550 5.1.1 No such user here"

    from devstack.procs import free_port

    port = free_port()
    refusing = Controller(RefusingHandler(), hostname="127.0.0.1", port=port)
    refusing.start()
    try:
        n = notice_env.notifications
        n.settings.smtp_port = port  # this app's relay refuses the address for good
        await n.notify(f"mailto:{address()}", "invitation", "/auth/enrol", key="refused:1")
        async with notice_env.sending():
            await settle(notice_env)
    finally:
        refusing.stop()
    [(_, fields)] = await notice_env.redis.xrange(DEAD)
    assert fields[b"status"] == b"550"


async def test_an_account_record_that_cannot_be_opened_is_dead_lettered_and_holds_up_no_one(
        notice_env: NoticeEnv) -> None:
    broken = await notice_env.patient(address())
    # Sealed with another key (moved from another deployment, or a lost key): this store cannot open it.
    key = f"auth:account:{broken.id}"
    raw = (await notice_env.redis.get(key)).decode()
    await notice_env.redis.set(key, raw[:-8] + ("A" if raw[-8] != "A" else "B") + raw[-7:])
    to = address()
    fine = await notice_env.patient(to)
    n = notice_env.notifications
    await n.notify(f"account:{broken.id}", "message", "/portal/messages/x", key=f"broken:{broken.id}")
    await n.notify(f"account:{fine.id}", "message", "/portal/messages/y", key=f"fine:{fine.id}")
    async with notice_env.sending():
        [mail] = await asyncio.to_thread(notice_env.mail.wait_for, to)
        await settle(notice_env)
    assert "/portal/messages/y" in body_of(mail)
    dead = await notice_env.redis.xrange(DEAD)
    assert any(b"cannot be opened" in value for _, fields in dead for value in fields.values())
