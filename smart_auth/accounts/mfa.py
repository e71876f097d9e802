"""Second factors: TOTP (RFC 6238), recovery codes and one-time codes sent by message."""

from __future__ import annotations

import base64
import io
import re
import secrets

import pyotp
import qrcode
import qrcode.image.svg

RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)
TOTP_PERIOD = 30


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account_name: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """An inline SVG QR code (no JavaScript, no external request) for an <img src=...>."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buf = io.BytesIO()
    image.save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def clean_code(code: str | None) -> str:
    return re.sub(r"[\s\-]", "", code or "").lower()


def totp_step(secret: str, code: str, at: float, window: int = 1) -> int | None:
    """The time step the code belongs to (±window steps for clock drift), or None. The caller stores the
    step it accepted so the same code cannot be replayed."""
    code = clean_code(code)
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    current = int(at // TOTP_PERIOD)
    for step in range(current - window, current + window + 1):
        if secrets.compare_digest(totp.at(step * TOTP_PERIOD), code):
            return step
    return None


def new_recovery_codes(count: int = 10) -> list[str]:
    """Codes like 'k7mq-x3tz-9wbn' (~60 bits each); shown once, stored hashed."""
    def one() -> str:
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(12))
        return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"

    return [one() for _ in range(count)]


def new_letter_code() -> str:
    """An invitation code for a printed letter, typed by hand: 'k7mq-x3tz-9wbn-4hfp' (~79 bits, no
    look-alikes); stored as the digest of its cleaned form."""
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def looks_like_recovery_code(code: str | None) -> bool:
    return len(clean_code(code)) == 12


def new_otp() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"
