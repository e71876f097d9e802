"""Readable plain text from clinical documents: base64 attachments (text/plain, text/html) and narratives.

HTML is always reduced to text (the page escapes it like any other text): nothing of a document's markup,
scripts or styles ever reaches a page. Attachments given only by URL are not fetched (no I/O here).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

# A visit note is a few kilobytes; anything far larger is not shown inline.
MAX_DECODED_BYTES = 2_000_000
_BLOCK = frozenset({"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
                    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
                    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr",
                    "ul"})
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
        elif tag == "pre":
            self._pre += 1
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li" and not self._skipping:
            self.parts.append("• ")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self._skipping:
            self._skipping -= 1
        elif tag == "pre" and self._pre:
            self._pre -= 1
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def tidy_text(text: str) -> str:
    """Trim each line, keep at most one blank line in a row, and normalise line ends."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def html_to_text(html: Any) -> str:
    """The words of an HTML fragment as plain text, paragraphs and list items on their own lines."""
    if not isinstance(html, str) or not html.strip():
        return ""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        if parser.rawdata.startswith("<"):
            parser.rawdata = ""  # an unfinished tag at the end is markup, not words
        parser.close()
    except Exception:  # HTMLParser is lenient; anything it still rejects is shown as nothing, never raised
        return ""
    return tidy_text("".join(parser.parts).replace("\xa0", " "))


def _media_type(content_type: Any) -> tuple[str, str]:
    """(`text/html`, charset) from `text/html; charset=ISO-8859-1`."""
    if not isinstance(content_type, str):
        return "", "utf-8"
    kind, _, params = content_type.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return kind.strip().lower(), charset


def decode_attachment(attachment: Any) -> str | None:
    """The readable text of an Attachment with inline `data`: text/plain as is, text/html reduced to text.

    None when the attachment is another type, has no inline data, or its data does not decode.
    """
    if not isinstance(attachment, Mapping):
        return None
    kind, charset = _media_type(attachment.get("contentType"))
    data = attachment.get("data")
    if kind not in ("text/plain", "text/html", "application/xhtml+xml") or not isinstance(data, str):
        return None
    if len(data) > MAX_DECODED_BYTES * 4 // 3 + 4:
        return None
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        text = raw.decode("utf-8", errors="replace")
    text = text.lstrip("\ufeff")
    return html_to_text(text) if kind != "text/plain" else tidy_text(text)


def narrative_text(resource: Any) -> str | None:
    """A resource's human-readable narrative (`text.div`) as plain text; None when it has none."""
    if not isinstance(resource, Mapping) or not isinstance(resource.get("text"), Mapping):
        return None
    return html_to_text(resource["text"].get("div")) or None


def document_text(resource: Any) -> str | None:
    """The readable text of a DocumentReference (its first text content, plain text preferred), a
    Composition (section titles and narratives) or a DiagnosticReport's presentedForm."""
    if not isinstance(resource, Mapping):
        return None
    rtype = resource.get("resourceType")
    if rtype == "Composition":
        return composition_text(resource)
    if rtype == "DiagnosticReport":
        attachments = resource.get("presentedForm") or []
    else:
        attachments = [c.get("attachment") for c in resource.get("content") or [] if isinstance(c, Mapping)]
    attachments = [a for a in attachments if isinstance(a, Mapping)]
    attachments.sort(key=lambda a: _media_type(a.get("contentType"))[0] != "text/plain")
    for attachment in attachments:
        text = decode_attachment(attachment)
        if text:
            return text
    return narrative_text(resource)


def _section_lines(section: Mapping[str, Any], depth: int) -> list[str]:
    lines: list[str] = []
    title = section.get("title")
    if isinstance(title, str) and title.strip():
        lines.append(title.strip())
    body = narrative_text(section)
    if body:
        lines.append(body)
    for inner in section.get("section") or []:
        if isinstance(inner, Mapping) and depth < 5:
            lines.extend(_section_lines(inner, depth + 1))
    if lines:
        lines.append("")
    return lines


def composition_text(composition: Any) -> str | None:
    """A Composition as text: each section's title followed by its narrative."""
    if not isinstance(composition, Mapping):
        return None
    lines: list[str] = []
    for section in composition.get("section") or []:
        if isinstance(section, Mapping):
            lines.extend(_section_lines(section, 0))
    text = tidy_text("\n".join(lines))
    return text or narrative_text(composition)
