"""Files are what their bytes say they are."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from mappers.attachments import AttachmentError, checked_file, decoded, safe_title, sniff
from mappers.inbound import message_files, message_receipt
from mappers.validation import InboundError

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 16
PDF = b"%PDF-1.7\n"


def test_the_kind_comes_from_the_content() -> None:
    assert [sniff(x) for x in (PNG, JPEG, PDF, b"GIF89a", b"MZ")] == [
        "image/png", "image/jpeg", "application/pdf", None, None]
    with pytest.raises(AttachmentError, match="not a PDF, JPEG or PNG"):
        checked_file(b"<html><script>")
    with pytest.raises(AttachmentError, match="up to 10 MB"):
        checked_file(PNG + b"\0" * (10 * 1024 * 1024))
    assert checked_file(PNG + b"\0" * (10 * 1024 * 1024 - len(PNG))) == "image/png"  # exactly 10 MB is fine
    with pytest.raises(AttachmentError, match="empty"):
        checked_file(b"")
    with pytest.raises(AttachmentError):
        decoded("not base64!!")


def test_names_keep_the_persons_words_and_take_the_real_extension() -> None:
    assert safe_title("Rash photo.jpeg", "image/png") == "Rash photo.png"
    assert safe_title("../../etc/passwd", "application/pdf") == "passwd.pdf"
    assert safe_title('"><script>.pdf', "application/pdf") == "script.pdf"
    assert safe_title(None, "image/jpeg") == "attachment.jpg"


def _message(*attachments: dict) -> dict:
    return {"resourceType": "Communication", "status": "completed",
            "payload": [{"contentString": "hi"}, *({"contentAttachment": a} for a in attachments)]}


def test_message_files_must_carry_their_data_and_be_allowed_kinds() -> None:
    files = message_files(_message({"contentType": "image/png", "title": "a.png",
                                    "data": base64.b64encode(PDF).decode()}))
    assert files == [(PDF, "application/pdf", "a.pdf")]
    with pytest.raises(InboundError, match="as data"):
        message_files(_message({"contentType": "application/pdf", "url": "Binary/someone-elses"}))
    with pytest.raises(InboundError, match="not a PDF"):
        message_files(_message({"contentType": "application/pdf", "data": base64.b64encode(b"MZ").decode()}))


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TO_ME = {"resourceType": "Communication", "id": "c1", "meta": {"versionId": "2"}, "status": "completed",
         "recipient": [{"reference": "Patient/p1"}], "sender": {"reference": "Practitioner/d"},
         "payload": [{"contentString": "hello"}]}


def test_the_read_mark_is_the_only_change_and_only_on_messages_to_the_reader() -> None:
    marked = message_receipt(TO_ME, {**TO_ME, "received": "2001-01-01"}, readers={"Patient/p1"}, now=NOW)
    assert marked is not None and marked["received"] == "2026-11-30T12:00:00+00:00" and "meta" not in marked
    assert message_receipt({**TO_ME, "received": "2026-11-01"}, {**TO_ME, "received": "2026-11-30"},
                           readers={"Patient/p1"}, now=NOW) is None
    with pytest.raises(InboundError, match="payload"):
        message_receipt(TO_ME, {**TO_ME, "received": "2026-11-30", "payload": [{"contentString": "edited"}]},
                        readers={"Patient/p1"}, now=NOW)
    with pytest.raises(InboundError, match="sent to you"):
        message_receipt(TO_ME, {**TO_ME, "received": "2026-11-30"}, readers={"Patient/p2"}, now=NOW)
    with pytest.raises(InboundError, match="unread"):
        message_receipt(TO_ME, dict(TO_ME), readers={"Patient/p1"}, now=NOW)
