"""Checking and sending second factors for an existing account (sign-in, password reset, sign-in settings)."""

from __future__ import annotations

import re

from web.i18n import gettext as _
from web.i18n import ngettext

from .context import Ctx, log
from .mfa import clean_code, looks_like_recovery_code, new_otp, totp_step
from .models import AccountRecord

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9]{7,15}$")


def valid_contact(channel: str, address: str) -> bool:
    if channel == "email":
        return bool(EMAIL_RE.match(address)) and len(address) <= 254
    if channel == "sms":
        return bool(PHONE_RE.match(re.sub(r"[\s().-]", "", address)))
    return False


async def send_code(ctx: Ctx, slot: str, channel: str, address: str, purpose: str) -> None:
    """A new one-time code to `address`, in the language of the page that asked for it (the person is reading
    that page, waiting for the code)."""
    code = new_otp()
    await ctx.store.put_otp(slot, code, ctx.settings.otp_ttl_seconds)
    minutes = max(ctx.settings.otp_ttl_seconds // 60, 1)
    body = ngettext("Your %(portal)s code is %(code)s. It expires in %(num)s minute. Never share it.",
                    "Your %(portal)s code is %(code)s. It expires in %(num)s minutes. Never share it.",
                    minutes) % {"portal": ctx.settings.totp_issuer, "code": code, "num": minutes}
    await ctx.sender.send(channel, address, _("Your one-time code"), body,  # type: ignore[arg-type]
                          purpose=purpose)
    log.info("one-time code sent purpose=%s channel=%s", purpose, channel)


async def send_account_code(ctx: Ctx, record: AccountRecord, slot: str, purpose: str) -> bool:
    if record.mfa_method in ("email", "sms") and record.contact:
        await send_code(ctx, slot, record.mfa_method, record.contact, purpose)
        return True
    return False


async def check_second_factor(ctx: Ctx, record: AccountRecord, code: str, otp_slot: str) -> str | None:
    """Which factor the code satisfied ("totp", "recovery", "email"/"sms"), or None."""
    code = clean_code(code)
    if not code:
        return None
    if looks_like_recovery_code(code):
        return "recovery" if await ctx.store.use_recovery_code(record.id, code) else None
    if record.mfa_method == "totp":
        secret = ctx.store.totp_secret(record)
        step = totp_step(secret, code, ctx.now()) if secret else None
        if step is not None and await ctx.store.mark_totp_step_used(record.id, step):
            return "totp"
        return None
    if await ctx.store.check_otp(otp_slot, code, ctx.settings.otp_max_attempts):
        return record.mfa_method
    return None
