"""The browser address the portal vouches for: believed only with a valid, fresh signature for this request."""

from __future__ import annotations

from fhir_gateway.client_address import sign, verify

SECRET = b"k" * 32
NOW = 1_800_000_000.0


def test_a_signed_address_is_believed_for_its_own_request() -> None:
    header = sign(SECRET, "203.0.113.7", "req-1", now=NOW)
    assert verify(SECRET, header, "req-1", now=NOW + 5) == "203.0.113.7"
    assert verify(SECRET, sign(SECRET, "2001:db8::1", "r", now=NOW), "r", now=NOW) == "2001:db8::1"


def test_anything_else_falls_back_to_the_socket() -> None:
    header = sign(SECRET, "203.0.113.7", "req-1", now=NOW)
    assert verify(SECRET, header, "req-2", now=NOW) is None  # replayed on another request
    assert verify(b"x" * 32, header, "req-1", now=NOW) is None  # signed by someone else
    assert verify(SECRET, header, "req-1", now=NOW + 61) is None  # too old
    assert verify(SECRET, header.replace("203.0.113.7", "203.0.113.8"), "req-1", now=NOW) is None  # edited
    assert verify(SECRET, None, "req-1", now=NOW) is None
    assert verify(SECRET, header, None, now=NOW) is None
    assert verify(SECRET, "not-an-ip; ts=1; sig=x", "req-1", now=NOW) is None
    assert verify(SECRET, sign(SECRET, "evil<script>", "req-1", now=NOW), "req-1", now=NOW) is None
    assert verify(SECRET, "garbage", "req-1", now=NOW) is None
