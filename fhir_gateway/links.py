"""Rewrites the EHR's URLs to our public base and binds paging links to the caller who searched.

HAPI's paging links (`?_getpages=<search id>`) name a cached search; we sign each one together
with the caller's binding so nobody can page through a search made with someone else's token.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

SIG_PARAM = "_page_sig"


class LinkRewriter:
    def __init__(self, ehr_base: str, public_base: str, secret: bytes) -> None:
        self.ehr_base = ehr_base.rstrip("/")
        self.public_base = public_base.rstrip("/")
        self._secret = secret

    def to_public(self, url: str) -> str:
        if url.startswith(self.ehr_base):
            return self.public_base + url[len(self.ehr_base):]
        return url

    def _sign(self, search_id: str, binding: str) -> str:
        return hmac.new(self._secret, f"{search_id}|{binding}".encode(), hashlib.sha256).hexdigest()[:40]

    def page_link(self, url: str, binding: str) -> str:
        public = self.to_public(url)
        parts = urlsplit(public)
        query = parse_qsl(parts.query, keep_blank_values=True)
        search_id = dict(query).get("_getpages")
        if not search_id:
            return public
        query = [(k, v) for k, v in query if k not in (SIG_PARAM, "_pretty", "_format")]
        query.append((SIG_PARAM, self._sign(search_id, binding)))
        return f"{self.public_base}?{urlencode(query)}"

    def verify_page(self, params: list[tuple[str, str]], binding: str) -> list[tuple[str, str]] | None:
        """The EHR paging parameters to forward, or None when the link was not issued to this caller."""
        values = dict(params)
        search_id, sig = values.get("_getpages"), values.get(SIG_PARAM)
        if not search_id or not sig or not hmac.compare_digest(sig.encode(), self._sign(search_id, binding).encode()):
            return None
        return [(k, v) for k, v in params if k != SIG_PARAM]

    def rewrite_bundle(self, bundle: dict[str, Any], binding: str) -> dict[str, Any]:
        for link in bundle.get("link", []) or []:
            if isinstance(link.get("url"), str):
                link["url"] = self.page_link(link["url"], binding)
        for entry in bundle.get("entry", []) or []:
            if isinstance(entry.get("fullUrl"), str):
                entry["fullUrl"] = self.to_public(entry["fullUrl"])
            response = entry.get("response")
            if isinstance(response, dict) and isinstance(response.get("location"), str):
                response["location"] = self.to_public(response["location"])
        return bundle
