"""Files a patient attaches to a message: what they are is decided by their first bytes, never by the
name or the type the browser claimed (pure functions)."""

from __future__ import annotations

import base64
import binascii
import hashlib

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
# (content type, magic bytes at the start of the file, plain name)
KINDS: tuple[tuple[str, bytes, str], ...] = (
    ("application/pdf", b"%PDF-", "PDF"),
    ("image/jpeg", b"\xff\xd8\xff", "JPEG picture"),
    ("image/png", b"\x89PNG\r\n\x1a\n", "PNG picture"),
)
ALLOWED_TYPES = frozenset(kind for kind, _, _ in KINDS)
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
TOO_BIG = "The file is too big. Files can be up to 10 MB."
WRONG_KIND = "This file is not a PDF, JPEG or PNG. Only those kinds of file can be sent."
EMPTY = "The file is empty."


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
        raise AttachmentError("The file could not be read. Please try again.") from exc


def safe_title(name: str | None, kind: str) -> str:
    """A file name to show and to save as: the person's own name with anything odd dropped, and the
    extension of what the file really is."""
    stem = (name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].rsplit(".", 1)[0]
    stem = "".join(ch for ch in stem if ch.isalnum() or ch in " -_")[:80].strip() or "attachment"
    return f"{stem}.{EXTENSIONS[kind]}"


def sha1_base64(data: bytes) -> str:
    """Attachment.hash: the SHA-1 of the data, base64 (as FHIR R4 defines it)."""
    return base64.b64encode(hashlib.sha1(data).digest()).decode()  # noqa: S324 - FHIR R4 names SHA-1


def kind_words(content_type: str | None) -> str:
    for kind, _, words in KINDS:
        if kind == content_type:
            return words
    return "file"


def size_words(size: int | None) -> str:
    if not size:
        return ""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"
