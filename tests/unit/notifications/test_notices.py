"""What a notice says and where it goes: pure wording, routing, the e-mail built, and refusals."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis

from devstack.procs import free_port
from mappers.notices import CHOOSABLE, KINDS, compose, link_problem, notice_email_problem, short_text
from notifications import Notifications, NotificationSettings, TemporaryFailure
from notifications.recipients import Recipient, Route, route
from notifications.sms import LoggingSmsNotifier, masked
from notifications.smtp import SmtpNotifier, email_message


def test_every_notice_is_a_fixed_text_and_our_own_link() -> None:
    for kind in KINDS:
        message = compose(kind, "/portal/messages/c-1", "k1", public_url="https://portal.example/")
        assert "https://portal.example/portal/messages/c-1" in message.text
        assert "no health information" in message.text
        assert message.subject == KINDS[kind].subject
    assert short_text(compose("message", "/portal/messages", "k", public_url="https://p.example")) == \
        "You have a new message in your patient portal. https://p.example/portal/messages"


@pytest.mark.parametrize("link", ["https://evil.example/x", "//evil.example/x", "portal/x", "javascript:alert(1)",
                                  "/portal/x\r\nBcc: a@b.c", ""])
def test_links_to_other_sites_or_with_breaks_are_refused(link: str) -> None:
    assert link_problem(link) is not None


def test_security_notices_cannot_be_switched_off() -> None:
    assert {k.name for k in CHOOSABLE} == {"message", "result", "request", "appointment", "reminder"}
    everything_off = Recipient("ana@example.org", frozenset(KINDS))
    assert route(everything_off, "message") is None
    assert route(everything_off, "new-device") == Route("email", "ana@example.org")
    assert route(everything_off, "sign-in-settings") == Route("email", "ana@example.org")


def test_a_phone_number_routes_to_text_messages_and_nothing_routes_nowhere() -> None:
    assert route(Recipient("+1 (217) 555-0100"), "message") == Route("sms", "+1 (217) 555-0100")
    assert route(Recipient("not a contact"), "message") is None
    assert route(None, "message") is None


def test_the_notice_email_address_is_checked() -> None:
    assert notice_email_problem("") is None and notice_email_problem("ana@example.org") is None
    for bad in ("ana", "ana@", "a b@example.org", "ana@example.org, eve@example.org", "<ana@example.org>"):
        assert notice_email_problem(bad)


def test_the_email_carries_a_message_id_from_the_notice_key() -> None:
    message = compose("result", "/portal/results", "abc123", public_url="https://p.example")
    mail = email_message(message, to="ana@example.org", sender="Clinic <no-reply@clinic.example>")
    assert mail["Message-ID"] == "<abc123@clinic.example>"
    assert mail["Auto-Submitted"] == "auto-generated" and mail["To"] == "ana@example.org"


async def test_an_smtp_server_that_is_not_there_is_a_temporary_failure() -> None:
    notifier = SmtpNotifier(NotificationSettings(smtp_port=free_port(), smtp_timeout=2))
    with pytest.raises(TemporaryFailure):
        await notifier.send("ana@example.org", compose("message", "/portal", "k", public_url="https://p.example"))


async def test_the_logging_sms_notifier_masks_the_number(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="notifications.sms")
    sms = LoggingSmsNotifier()
    await sms.send("+1 217 555 0142", compose("message", "/portal", "k9", public_url="https://p.example"))
    assert sms.sent == 1 and "...42" in caplog.text and "555" not in caplog.text and "/portal" not in caplog.text
    assert masked("217-555-0100") == "...00"


@pytest.mark.parametrize(("to", "kind", "link"), [
    ("Patient/pt-1", "gossip", "/portal"), ("pt-1", "message", "/portal"), ("Patient/../x", "message", "/portal"),
    ("Patient/pt-1", "message", "https://elsewhere.example/portal")])
async def test_a_notice_that_cannot_be_right_is_refused_before_redis_is_touched(to: str, kind: str, link: str) -> None:
    redis = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens: any use would fail
    notifications = Notifications(redis, NotificationSettings(), recipients=None, notifiers={})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await notifications.notify(to, kind, link)


def test_only_booked_visits_of_patients_are_reminded_of() -> None:
    from notifications.reminders import visits_to_remind

    def appointment(aid: str, status: str, *refs: str) -> dict:
        return {"resource": {"resourceType": "Appointment", "id": aid, "status": status,
                             "start": "2026-12-02T09:00:00Z",
                             "participant": [{"actor": {"reference": r}} for r in refs]}}

    bundle = {"entry": [appointment("a1", "booked", "Patient/p1", "Practitioner/d1"),
                        appointment("a2", "cancelled", "Patient/p2"), appointment("a3", "booked", "Location/l1"),
                        {"resource": {"resourceType": "OperationOutcome"}}]}
    assert visits_to_remind(bundle) == [("p1", "a1", "2026-12-02T09:00:00Z")]


def test_the_address_chosen_on_the_profile_wins_and_an_emptied_one_means_no_email() -> None:
    from notifications.recipients import notice_address
    from smart_auth.accounts.models import AccountRecord

    def record(contact: str | None, chosen: str | None) -> AccountRecord:
        return AccountRecord(id="a", username="u", kind="patient", fhir_user="Patient/p", patient_id="p",
                             password_hash="x", mfa_method="email", contact=contact, notice_email=chosen)

    assert notice_address(record("code@example.org", None)) == "code@example.org"  # not chosen yet
    assert notice_address(record("code@example.org", "news@example.org")) == "news@example.org"
    assert notice_address(record("code@example.org", "")) is None  # chose none
    assert notice_address(record("+1 217 555 0100", "")) == "+1 217 555 0100"  # texts still go
    assert notice_address(record(None, None)) is None
