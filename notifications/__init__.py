"""Notices to patients (e-mail over SMTP; text messages through a pluggable notifier) from a durable outbox.

Producers call `await notifications.notify(to, kind, link, key=...)`: it only queues (Redis stream, idempotent
on the key). A sender in each app process delivers the queue with retry and back-off (notifications/delivery.py).
Notices never carry PHI: a fixed "you have something new" per kind and a link into the portal.
"""

from mappers.notices import CHOOSABLE, KINDS, Kind, Message, compose

from .notifier import Notifier, PermanentFailure, TemporaryFailure
from .recipients import AccountRecipients, Recipient
from .service import Notifications
from .settings import NotificationSettings

__all__ = [
    "CHOOSABLE",
    "KINDS",
    "AccountRecipients",
    "Kind",
    "Message",
    "NotificationSettings",
    "Notifications",
    "Notifier",
    "PermanentFailure",
    "Recipient",
    "TemporaryFailure",
    "compose",
]
