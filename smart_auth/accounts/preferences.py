"""How an account likes its pages shown (text size, contrast, language), and whether it has had the
first-use guide.

Not personal or clinical data: a few plain flags in one Redis hash per account (`auth:account-prefs:`),
kept as long as the account. Unknown or damaged values read as the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from locales import LOCALES

PREFERENCES = "auth:account-prefs:{}"
TextSize = Literal["standard", "large"]
Contrast = Literal["standard", "high"]
TEXT_SIZES: tuple[TextSize, ...] = ("standard", "large")
CONTRASTS: tuple[Contrast, ...] = ("standard", "high")
# The pages' language as chosen with the switch ("": never chosen, so the health record's language applies).
LANGUAGES: tuple[str, ...] = LOCALES


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw or "")


@dataclass(frozen=True)
class DisplayPreferences:
    text_size: TextSize = "standard"
    contrast: Contrast = "standard"
    language: str = ""

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> DisplayPreferences:
        size, contrast = fields.get("text_size", ""), fields.get("contrast", "")
        language = fields.get("language", "")
        return cls(text_size=size if size in TEXT_SIZES else "standard",  # type: ignore[arg-type]
                   contrast=contrast if contrast in CONTRASTS else "standard",  # type: ignore[arg-type]
                   language=language if language in LANGUAGES else "")

    def as_fields(self) -> dict[str, str]:
        # A language never chosen is left out, so saving the other settings never clears a choice.
        return {"text_size": self.text_size, "contrast": self.contrast,
                **({"language": self.language} if self.language else {})}


class PreferenceStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def display(self, account_id: str) -> DisplayPreferences:
        raw = await self.redis.hgetall(PREFERENCES.format(account_id))
        return DisplayPreferences.from_fields({_text(k): _text(v) for k, v in raw.items()})

    async def save_display(self, account_id: str, preferences: DisplayPreferences) -> None:
        await self.redis.hset(PREFERENCES.format(account_id), mapping=preferences.as_fields())

    async def first_guide(self, account_id: str, when: float) -> bool:
        """Record that the account has been shown the first-use guide; True only the first time (two
        sign-ins at once still show it once)."""
        return bool(await self.redis.hsetnx(PREFERENCES.format(account_id), "guide_shown", repr(when)))
