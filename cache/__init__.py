"""Encrypted, compartment-safe Redis read-through cache for the gateway (imports nothing of ours)."""

from .changefeed import ChangeFeed
from .crypto import CacheCipher, load_or_create_key
from .keys import (
    canonical_params,
    compartment_tag,
    read_key,
    request_key,
    resource_tag,
    scope_fingerprint,
    search_key,
    type_tag,
)
from .server import make_cache_redis, memory_report, redis_server_args
from .settings import CacheSettings, build_cache, build_change_feed, build_cipher
from .store import CachedResponse, Generations, ResponseCache

__all__ = [
    "CacheCipher",
    "CacheSettings",
    "CachedResponse",
    "ChangeFeed",
    "Generations",
    "ResponseCache",
    "build_cache",
    "build_change_feed",
    "build_cipher",
    "canonical_params",
    "compartment_tag",
    "load_or_create_key",
    "make_cache_redis",
    "memory_report",
    "read_key",
    "redis_server_args",
    "request_key",
    "resource_tag",
    "scope_fingerprint",
    "search_key",
    "type_tag",
]
