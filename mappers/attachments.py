"""Files a patient attaches to a message: what they are is decided by their first bytes, never by the
name or the type the browser claimed (pure functions). An AttachmentError's message is the English text
of a catalogue message (`N_`): a page shows it translated (`gettext_in(locale, str(error))`)."""

from __future__ import annotations

import base64
import binascii
import hashlib

from babel.numbers import format_decimal

from locales import ENGLISH, N_, gettext_in, ngettext_in

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
# (content type, magic bytes at the start of the file, plain name)
KINDS: tuple[tuple[str, bytes, str], ...] = (
    ("application/pdf", b"%PDF-", N_("PDF")),
    ("image/jpeg", b"\xff\xd8\xff", N_("JPEG picture")),
    ("image/png", b"\x89PNG\r\n\x1a\n", N_("PNG picture")),
)
ALLOWED_TYPES = frozenset(kind for kind, _, _ in KINDS)
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
TOO_BIG = N_("The file is too big. Files can be up to 10 MB.")
WRONG_KIND = N_("This file is not a PDF, JPEG or PNG. Only those kinds of file can be sent.")
EMPTY = N_("The file is empty.")
UNREADABLE = N_("The file could not be read. Please try again.")


class AttachmentError(ValueError):
    """A file that cannot be sent; the message is safe to show to the person."""


def sniff(data: bytes) -> str | None:
    """The content type the bytes really are (PDF, JPEG or PNG), or None."""
    for kind, magic, _ in KINDS:
        if data.startswith(magic):
            return kind
    return None


def checked_file(data: bytes) -> str:
    """The file's real content type, or AttachmentError saying why it cannot be sent."""
    if not data:
        raise AttachmentError(EMPTY)
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise AttachmentError(TOO_BIG)
    kind = sniff(data)
    if kind is None:
        raise AttachmentError(WRONG_KIND)
    return kind


def decoded(data_b64: str) -> bytes:
    """The bytes of an Attachment's base64 `data`; a malformed value is an AttachmentError."""
    if len(data_b64) > (MAX_ATTACHMENT_BYTES * 4) // 3 + 8:
        raise AttachmentError(TOO_BIG)
    try:
        return base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttachmentError(UNREADABLE) from exc


def safe_title(name: str | None, kind: str) -> str:
    """A file name to show and to save as: the person's own name with anything odd dropped, and the
    extension of what the file really is."""
    stem = (name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].rsplit(".", 1)[0]
    stem = "".join(ch for ch in stem if ch.isalnum() or ch in " -_")[:80].strip() or "attachment"
    return f"{stem}.{EXTENSIONS[kind]}"


def sha1_base64(data: bytes) -> str:
    """Attachment.hash: the SHA-1 of the data, base64 (as FHIR R4 defines it)."""
    return base64.b64encode(hashlib.sha1(data).digest()).decode()  # noqa: S324 - FHIR R4 names SHA-1


def kind_words(content_type: str | None, locale: str = ENGLISH) -> str:
    for kind, _, words in KINDS:
        if kind == content_type:
            return gettext_in(locale, words)
    return gettext_in(locale, "file")


def size_words(size: int | None, locale: str = ENGLISH) -> str:
    """`512 bytes`, `12 KB`, `1.5 MB` (the decimal mark as `locale` writes it)."""
    if not size:
        return ""
    if size < 1024:
        return ngettext_in(locale, "%(num)s byte", "%(num)s bytes", size) % {"num": size}
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    if locale.replace("-", "_").split("_")[0].lower() == ENGLISH:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{format_decimal(size / (1024 * 1024), format='0.0', locale=locale.replace('-', '_'))} MB"
