"""Settings: one composed object for the whole app, built from `PORTAL_*` environment variables.

Each package keeps its own settings model (its CLI runs without the app). The values several parts
share (the EHR's base URL, the state Redis, our public URL and the state directory) are read ONCE,
into `CoreSettings`, and handed to every section that declares them, so a value passed in code (e.g. a
test's `state_dir`) moves everything that depends on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.settings import AuditSettings
from cache import CacheSettings
from notifications import NotificationSettings
from portal.settings import PortalUiSettings
from smart_auth.accounts import AccountSettings
from smart_auth.settings import AuthSettings
from staff.settings import StaffUiSettings

S = TypeVar("S", bound=BaseSettings)


class CoreSettings(BaseSettings):
    """The values every part shares."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    fhir_base_url: str = "http://127.0.0.1:8080/fhir"
    redis_url: str = "redis://127.0.0.1:6379/0"
    public_url: str = "http://127.0.0.1:8000"
    state_dir: Path = Path(".state")
    # TLS: either a reverse proxy terminates it (its address here, so its X-Forwarded-For/-Proto are
    # believed; comma-separated, "*" for any) or uvicorn serves it itself with this certificate and key.
    trusted_proxies: str = "127.0.0.1"
    # The clinic's rule, enforced by the gateway and explained by the portal: no online moves or
    # cancellations this many hours before a visit (0: until it starts).
    appointment_change_notice_hours: int = Field(default=24, ge=0, le=24 * 14)
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def fhir_public_base(self) -> str:
        """Our FHIR base as callers see it; also the `aud` of every access token."""
        return self.public_url.rstrip("/") + "/fhir"


class GatewaySettings(BaseSettings):
    """The FHIR facade's own settings."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    upstream_connect_timeout: float = 5.0
    upstream_read_timeout: float = 30.0
    upstream_max_connections: int = 100
    upstream_retries: int = 2
    upstream_transport: Literal["http1", "httpx"] = Field(
        default="http1", description="how the EHR client speaks HTTP: http1 (lean, httptools; https is handed to "
                                     "httpx) or httpx (httpx's own transport throughout)")
    max_body_bytes: int = Field(default=1_048_576, description="largest request body accepted under /fhir")
    max_message_body_bytes: int = Field(
        default=15 * 1024 * 1024, description="largest Communication create accepted (a message with its files)"
    )
    strict_search: bool = Field(default=True, description="refuse unknown search parameters")
    care_team_ttl_seconds: float = Field(
        default=30.0, description="how long a practitioner's care-team membership is remembered before the EHR is "
                                  "asked again (a care-team change shows within this time)")
    max_search_params: int = Field(default=50, description="most parameters one search may have (400 beyond)")
    max_search_values: int = Field(
        default=20, description="most values one search parameter may list, commas and repeats together (400 beyond)"
    )
    cors_allow_origins: list[str] = ["*"]
    cache_serve_stale: bool = Field(
        default=True, description="answer from a kept cache entry, marked stale, while the EHR is down"
    )
    audit_export: bool = Field(default=True, description="this process moves the audit stream on (into the audit "
                                                        "store, on to the audit record repository) and purges")
    service_figures_max_age: float = Field(
        default=300.0, ge=0, description="seconds the adoption and service figures (staff metrics page, /metrics) "
                                         "are reused before they are computed again from the audit store and EHR")
    api_docs: bool = Field(default=False, description="serve Swagger UI at /docs (development; loads its own assets)")
    payment_provider: str = Field(
        default="payments.test_provider:TestCardProvider",
        description="the class that takes card payments, as module:Class (the default is the TEST provider: no "
                    "money moves, only its test cards work)",
    )


def _section(model: type[S], core: CoreSettings) -> S:
    shared = {name: getattr(core, name) for name in CoreSettings.model_fields if name in model.model_fields}
    return model(**shared)


class PortalSettings(BaseModel):
    """Everything `create_app` needs, one section per package."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    core: CoreSettings
    gateway: GatewaySettings
    auth: AuthSettings
    accounts: AccountSettings
    audit: AuditSettings
    cache: CacheSettings
    portal: PortalUiSettings
    staff: StaffUiSettings
    notifications: NotificationSettings

    @classmethod
    def load(cls, **core: Any) -> PortalSettings:
        """From the environment; keyword arguments set shared values (e.g. ``state_dir=...``)."""
        shared = CoreSettings(**core)
        return cls(
            core=shared,
            gateway=GatewaySettings(),
            auth=_section(AuthSettings, shared),
            accounts=_section(AccountSettings, shared),
            audit=_section(AuditSettings, shared),
            cache=_section(CacheSettings, shared),
            portal=_section(PortalUiSettings, shared),
            staff=_section(StaffUiSettings, shared),
            notifications=_section(NotificationSettings, shared),
        )

    def replace(self, **sections: dict[str, Any]) -> PortalSettings:
        """A copy with some fields of some sections changed: ``replace(gateway={"strict_search": False})``.
        Shared values are changed through ``load``, never per section."""
        if "core" in sections:
            raise ValueError("shared values are set once, through PortalSettings.load(...)")
        changed = {name: getattr(self, name).model_copy(update=update) for name, update in sections.items()}
        return self.model_copy(update=changed)
