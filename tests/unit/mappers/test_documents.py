"""Clinical notes read as plain text: base64 decoded, HTML reduced to words, never passed through."""

from __future__ import annotations

import base64

from mappers.documents import composition_text, decode_attachment, document_text, html_to_text, narrative_text

from .conftest import all_of_type, assert_readable


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode()


def test_plain_text_attachment_decodes() -> None:
    text = decode_attachment({"contentType": "text/plain", "data": b64("Visit summary\r\n\r\n\r\nTemp 36.8 °C\n")})
    assert text == "Visit summary\n\nTemp 36.8 °C"


def test_html_is_stripped_to_text_and_scripts_vanish() -> None:
    html = ("<html><head><title>x</title><style>p{color:red}</style></head><body>"
            "<h1>Plan</h1><p>Drink&nbsp;water &amp; rest.</p><script>alert('x')</script>"
            "<ul><li>Ibuprofen</li><li>Sleep</li></ul><p onclick='x()'>Call us<br/>any time</p>"
            "<img src=x onerror=alert(1)></body></html>")
    text = decode_attachment({"contentType": "text/html; charset=utf-8", "data": b64(html)})
    assert text == "Plan\n\nDrink water & rest.\n\n• Ibuprofen\n\n• Sleep\n\nCall us\nany time"
    assert "<" not in text and "alert" not in text and "color" not in text


def test_charset_is_honoured() -> None:
    data = b64("Café visit", "latin-1")
    assert decode_attachment({"contentType": "text/plain; charset=ISO-8859-1", "data": data}) == "Café visit"
    assert decode_attachment({"contentType": "text/plain; charset=nonsense", "data": b64("ok")}) == "ok"


def test_what_cannot_be_read_gives_none() -> None:
    assert decode_attachment({"contentType": "application/pdf", "data": b64("%PDF")}) is None
    assert decode_attachment({"contentType": "text/plain", "data": "%%% not base64"}) is None
    assert decode_attachment({"contentType": "text/plain", "url": "http://elsewhere/doc"}) is None
    assert decode_attachment(None) is None
    assert html_to_text(None) == "" and html_to_text("<p") == ""
    assert document_text({"resourceType": "DocumentReference", "content": [{"attachment": {"data": 5}}]}) is None


def test_document_prefers_plain_text_then_narrative() -> None:
    doc = {"resourceType": "DocumentReference",
           "content": [{"attachment": {"contentType": "text/html", "data": b64("<p>HTML copy</p>")}},
                       {"attachment": {"contentType": "text/plain", "data": b64("Plain copy")}}]}
    assert document_text(doc) == "Plain copy"
    only_narrative = {"resourceType": "DocumentReference", "content": [],
                      "text": {"div": "<div xmlns='http://www.w3.org/1999/xhtml'><p>Narrative</p></div>"}}
    assert document_text(only_narrative) == narrative_text(only_narrative) == "Narrative"


def test_composition_sections_in_order() -> None:
    composition = {"resourceType": "Composition", "section": [
        {"title": "Reason for visit", "text": {"div": "<div>Cough for <b>3</b> days</div>"}},
        {"title": "Plan", "section": [{"title": "Medicines", "text": {"div": "<div><ul><li>Rest</li></ul></div>"}}]},
        "junk",
    ]}
    assert composition_text(composition) == "Reason for visit\nCough for 3 days\n\nPlan\nMedicines\n• Rest"
    assert document_text(composition) == composition_text(composition)


def test_every_demo_visit_summary_reads_as_text(records: dict) -> None:
    for doc in all_of_type(records, "DocumentReference"):
        text = document_text(doc)
        assert text and "Visit type:" in text, doc["id"]
    for report in all_of_type(records, "DiagnosticReport"):
        if report.get("presentedForm"):
            assert_readable(document_text(report))
