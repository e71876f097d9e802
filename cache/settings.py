"""Cache settings, read from `PORTAL_*` environment variables, and builders from them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from .changefeed import ChangeFeed, HTTPRequester
from .crypto import CacheCipher, decode_key, decode_keys, load_or_create_key
from .server import make_cache_redis
from .store import ResponseCache

KEY_FILE = "cache-key"


class CacheSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    cache_redis_url: str = Field(default="redis://127.0.0.1:6380/0", description="the cache's OWN Redis")
    cache_key: SecretStr | None = Field(default=None, description="base64 32-byte AES key; else a state-dir file")
    cache_previous_keys: SecretStr | None = Field(default=None, description="comma-separated base64 retired keys")
    cache_ttl: int = Field(default=300, ge=1, description="seconds an entry is served as fresh")
    cache_stale_ttl: int = Field(default=3600, ge=0, description="extra seconds it may be served stale (EHR down)")
    cache_enabled: bool = True
    cache_op_timeout: float = Field(default=1.0, gt=0, description="bound on one cache Redis operation")
    cache_maxmemory: str = Field(default="256mb", description="maxmemory of the cache Redis (launcher)")
    change_feed_interval: float = Field(default=1.0, gt=0, description="seconds between EHR _history polls")
    change_feed_page_size: int = Field(default=200, ge=1)
    state_dir: Path = Path(".state")


def build_cipher(settings: CacheSettings) -> CacheCipher:
    """Key ring from settings; without PORTAL_CACHE_KEY a key is generated once into the state dir."""
    if settings.cache_key is not None and settings.cache_key.get_secret_value().strip():
        current = decode_key(settings.cache_key.get_secret_value())
    else:
        current = load_or_create_key(settings.state_dir / KEY_FILE)
    previous = decode_keys(settings.cache_previous_keys.get_secret_value() if settings.cache_previous_keys else None)
    return CacheCipher(current, previous)


def build_cache(settings: CacheSettings, redis: Redis | None = None) -> ResponseCache:
    """A ResponseCache on ``redis`` (default: a fail-fast client to PORTAL_CACHE_REDIS_URL)."""
    # Our own client bounds every operation by cache_op_timeout itself (its socket timeouts).
    own = redis is None
    if redis is None:
        redis = make_cache_redis(settings.cache_redis_url, timeout=settings.cache_op_timeout)
    return ResponseCache(
        redis,
        build_cipher(settings),
        ttl=settings.cache_ttl,
        stale_ttl=settings.cache_stale_ttl,
        enabled=settings.cache_enabled,
        op_timeout=None if own else settings.cache_op_timeout,
    )


def build_change_feed(
    settings: CacheSettings,
    http: HTTPRequester,
    cache: ResponseCache,
    compartments_of: Callable[[dict[str, Any]], Iterable[str]],
) -> ChangeFeed:
    """The EHR change feed with the configured interval and page size (start it with ``.start()``)."""
    return ChangeFeed(
        http,
        cache,
        interval=settings.change_feed_interval,
        page_size=settings.change_feed_page_size,
        compartments_of=compartments_of,
    )
