"""E-mail notices over SMTP (aiosmtplib), one connection per notice."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

import aiosmtplib

from mappers.notices import Message

from .notifier import PermanentFailure, TemporaryFailure
from .settings import NotificationSettings


def email_message(message: Message, *, to: str, sender: str) -> EmailMessage:
    out = EmailMessage()
    out["From"] = sender
    out["To"] = to
    out["Subject"] = message.subject
    out["Date"] = email.utils.formatdate(usegmt=True)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "portal.localhost"
    # The same notice always has the same Message-ID: a mail system that sees it twice can drop the repeat.
    out["Message-ID"] = f"<{message.key}@{domain}>"
    out["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to these
    out.set_content(message.text)
    return out


class SmtpNotifier:
    channel = "email"

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    async def send(self, to: str, message: Message) -> None:
        s = self.settings
        tls = {"auto": {"start_tls": None}, "starttls": {"start_tls": True}, "tls": {"use_tls": True},
               "none": {"start_tls": False}}[s.smtp_tls]
        try:
            await aiosmtplib.send(
                email_message(message, to=to, sender=s.smtp_from), hostname=s.smtp_host, port=s.smtp_port,
                username=s.smtp_username, password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                timeout=s.smtp_timeout, **tls)  # type: ignore[arg-type]
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(code >= 500 for code in codes):
                raise PermanentFailure(max(codes), "the mail server refused the address") from exc
            raise TemporaryFailure("the mail server refused the address for now") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500 and not isinstance(exc, aiosmtplib.SMTPServerDisconnected):
                raise PermanentFailure(exc.code, f"the mail server refused the message ({exc.code})") from exc
            raise TemporaryFailure(f"the mail server answered {exc.code}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryFailure(f"the mail server is not reachable ({type(exc).__name__})") from exc
