"""The long-lived clients a gateway process and an audit worker both make: the EHR's FHIR client, the state
Redis and the audit record repository's client."""

from __future__ import annotations

import redis.asyncio as aioredis

from cache.coalesced_redis import CoalescedRedis

from .settings import PortalSettings
from .upstream import Upstream, make_client


def make_redis(url: str) -> aioredis.Redis:
    # Short socket timeouts: a dead Redis must fail fast so the gateway can fall back, not hang. Coalesced:
    # the revocation look-ups and audit records of concurrent requests share round trips.
    return CoalescedRedis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry_on_timeout=False,
        health_check_interval=10,
        decode_responses=False,
    )


def ehr_upstream(settings: PortalSettings) -> Upstream:
    """The EHR's FHIR client."""
    core, gw = settings.core, settings.gateway
    http = make_client(core.fhir_base_url, connect_timeout=gw.upstream_connect_timeout,
                       read_timeout=gw.upstream_read_timeout, max_connections=gw.upstream_max_connections,
                       transport=gw.upstream_transport)
    return Upstream(http, core.fhir_base_url, retries=gw.upstream_retries)


def audit_repository_of(settings: PortalSettings, ehr: Upstream) -> Upstream | None:
    """The FHIR client of the audit record repository: the EHR's, a separate server's, or none (off)."""
    audit, gw = settings.audit, settings.gateway
    if audit.audit_repository == "off":
        return None
    if audit.audit_repository == "ehr":
        return ehr
    assert audit.audit_repository_url is not None  # AuditSettings refuses "fhir" without a URL
    http = make_client(audit.audit_repository_url, connect_timeout=gw.upstream_connect_timeout,
                       read_timeout=gw.upstream_read_timeout, max_connections=10, transport=gw.upstream_transport)
    return Upstream(http, audit.audit_repository_url, retries=gw.upstream_retries)
