"""Settings, read once from ``PRIORGATE_*`` environment variables (pydantic-settings).

Every deployment-specific value is a setting with a documented default; the README's configuration
table lists them all. A bad value fails fast with one line naming the setting (see ``load_settings``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_ig_path() -> Path:
    """The standard FHIR package cache (``~/.fhir/packages``)."""
    return Path.home() / ".fhir" / "packages"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIORGATE_", frozen=True, extra="ignore")

    database_url: str = Field(
        default="sqlite:///./priorgate.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )
    host: str = Field(default="127.0.0.1", description="Interface `priorgate serve` binds to")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `priorgate serve` listens on")
    base_url: str | None = Field(
        default=None,
        description="Public base URL (e.g. https://pa.example.org); default: taken from each request",
    )
    ig_path: Path = Field(default_factory=default_ig_path, description="Directory of FHIR IG packages")
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest request body accepted"
    )
    max_json_depth: int = Field(default=64, ge=8, le=1000, description="Deepest JSON nesting accepted")
    max_string_length: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Longest JSON string value accepted (characters)"
    )
    max_bundle_entries: int = Field(default=1000, ge=1, description="Most entries accepted in a Bundle")
    default_page_size: int = Field(default=50, ge=1, le=1000, description="Search page size without _count")
    max_page_size: int = Field(default=1000, ge=1, description="Largest _count honoured")
    demo_content: bool = Field(default=True, description="Load demo content into an empty database on start")
    dtr_version: Literal["2.0.1", "2.2.0"] = Field(
        default="2.0.1",
        description="DTR version answered under /fhir (both are always served under /dtr/{version})",
    )
    cds_development_mode: bool = Field(
        default=False,
        description="Accept CDS Hooks calls without a client JWT (development only; warns on every start)",
    )
    cds_trusted_issuers_file: Path | None = Field(
        default=None,
        description="JSON list of trusted CDS clients: iss, jwks_url or jwks, allowed_jku, algorithms",
    )
    outbound_timeout: float = Field(
        default=2.0, gt=0, le=15, description="Timeout in seconds for outbound HTTP (EHR FHIR servers, JWKS)"
    )
    notification_worker: bool = Field(
        default=True,
        description="Run the PAS notification delivery worker in this process (every process may run one)",
    )
    notification_poll_interval: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between outbox polls when there is nothing to deliver"
    )
    notification_max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        description="Delivery attempts for a notification before it is marked failed",
    )
    notification_backoff: float = Field(
        default=5.0,
        gt=0,
        description="Seconds before the first retry; each further retry waits twice as long",
    )
    notification_backoff_cap: float = Field(
        default=3600.0, gt=0, description="Longest wait between two delivery attempts, seconds"
    )
    notification_lease: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a claimed notification stays with one process before another retries it",
    )
    notification_handshake_attempts: int = Field(
        default=3, ge=1, le=100, description="Handshake attempts before a new Subscription turns error"
    )
    payer_routes_file: Path | None = Field(
        default=None,
        description="JSON or TOML payer routes: payer id -> fhir-local or x12 (endpoint URL or 'simulated')",
    )
    review_clocks: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Decision time frames per line of business (Coverage.type code; '*' for the default), "
        'JSON, e.g. {"QHP": {"standard_days": 15, "expedited_hours": 72}}',
    )
    ops_session_minutes: int = Field(
        default=480, ge=5, le=7 * 24 * 60, description="Lifetime of a staff sign-in to the operations pages"
    )
    ops_secure_cookies: bool = Field(
        default=False, description="Mark the operations session cookie Secure (set it when served over HTTPS)"
    )
    bulk_export_worker: bool = Field(
        default=True,
        description="Run the bulk export worker (Group/$export jobs) in this process (every process may)",
    )
    bulk_export_poll_interval: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between bulk export job polls when none is waiting"
    )
    bulk_export_file_lifetime: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds a finished export's manifest and NDJSON files stay downloadable",
    )
    bulk_export_lines_per_file: int = Field(
        default=10000, ge=1, le=1_000_000, description="Most resources (NDJSON lines) in one export file"
    )
    bulk_export_lease: float = Field(
        default=120.0,
        gt=0,
        description="Seconds a claimed export job stays with one process before another restarts it",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level: debug, info, warning, error"
    )

    @field_validator("review_clocks")
    @classmethod
    def _review_clocks(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for line, clock in value.items():
            if set(clock) - {"expedited_hours", "standard_days"} or any(v <= 0 for v in clock.values()):
                raise ValueError(f"{line}: use positive expedited_hours and standard_days only")
        return value


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming it."""


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides, failing with one line per bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        env = f"PRIORGATE_{name.upper()}"
        value = os.environ.get(env, overrides.get(name, ""))
        raise SettingsError(f"invalid setting {env}={value!r}: {first['msg']}") from None
