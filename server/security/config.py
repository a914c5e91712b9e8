"""Security settings (``PRIORGATE_*`` environment variables) and the one function that assembles the
security components from them for ``create_app``.

Two modes (``PRIORGATE_AUTH_MODE``):

* ``local`` (default): PriorGate is its own SMART Backend Services authorization server. Clients come
  from ``PRIORGATE_CLIENTS_FILE`` (JSON/TOML) plus the demo clients (``PRIORGATE_DEMO_CLIENTS``, on by
  default); tokens are signed with ``PRIORGATE_TOKEN_SIGNING_KEY`` (PEM; created on first start when
  unset, under ``PRIORGATE_SECURITY_DIR``, so all workers share it). It is also the SMART App Launch
  authorization server for patient apps (``server/app_launch``: ``PRIORGATE_PATIENT_APPS_FILE``).
* ``off``: no access tokens at all, every caller acts for the default tenant (development only; the
  app warns on every start).
* ``external``: an external authorization server issues tokens; PriorGate verifies them against
  ``PRIORGATE_EXTERNAL_ISSUER`` + ``PRIORGATE_EXTERNAL_JWKS_URL`` and reads tenants from
  ``PRIORGATE_EXTERNAL_TENANT_CLAIM``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import httpx
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.security.clients import ClientRegistry, InMemoryClientRegistry, RegisteredClient
from server.security.constants import FHIR_BASE_PATH, TOKEN_PATH
from server.security.demo import demo_clients
from server.security.jwks import JwksCache
from server.security.keys import (
    KeyProvider,
    SigningKey,
    StaticKeyProvider,
    load_or_create_signing_key,
    load_private_key_pem,
)
from server.security.replay import InMemoryReplayStore, ReplayStore
from server.security.router import SecurityEndpoints
from server.security.token_endpoint import TokenService
from server.security.tokens import (
    AccessTokenPolicy,
    AccessTokenVerifier,
    ExternalIssuer,
    ExternalTokenVerifier,
    LocalTokenVerifier,
)


class SecuritySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIORGATE_", frozen=True, extra="ignore")

    auth_mode: Literal["local", "external", "off"] = Field(
        default="local",
        description="local: PriorGate issues tokens; external: trust another server's; "
        "off: no authentication (development only; warns on every start)",
    )
    security_dir: Path = Field(
        default=Path(".priorgate"), description="Where the generated signing key and demo keys are kept"
    )
    token_signing_key: Path | None = Field(
        default=None, description="PEM private key (EC P-256 or RSA) signing access tokens; default generated"
    )
    token_signing_key_previous: tuple[Path, ...] = Field(
        default=(), description="Rotated-out PEM keys still accepted until their tokens expire (JSON list)"
    )
    access_token_lifetime: int = Field(
        default=300, ge=60, le=3600, description="Access token lifetime, seconds"
    )
    clients_file: Path | None = Field(default=None, description="Registered clients, JSON or TOML")
    demo_clients: bool = Field(
        default=True, description="Register the demo clients (keys under security_dir)"
    )
    allow_http_jwks_url: bool = Field(default=False, description="Accept http:// client jwks_url (testing)")
    external_issuer: str | None = Field(default=None, description="External authorization server issuer")
    external_jwks_url: str | None = Field(default=None, description="External authorization server JWKS URL")
    external_audience: str | None = Field(default=None, description="Expected aud; default the FHIR base")
    external_token_endpoint: str | None = Field(
        default=None, description="The external server's token endpoint, advertised in smart-configuration"
    )
    external_tenant_claim: str = Field(default="tenants", description="Claim holding organization id(s)")
    external_roles_claim: str = Field(default="roles", description="Claim holding staff roles")
    external_client_id_claim: str = Field(default="client_id", description="Claim naming the client")
    patient_apps_file: Path | None = Field(
        default=None, description="Registered patient-facing apps (SMART App Launch), JSON or TOML"
    )
    authorization_code_lifetime: int = Field(
        default=60, ge=10, le=600, description="Authorization code lifetime, seconds (single use)"
    )
    refresh_token_lifetime: int = Field(
        default=2_592_000, ge=300, le=31_536_000, description="Patient app refresh token lifetime, seconds"
    )

    @model_validator(mode="after")
    def _external_needs_issuer(self) -> SecuritySettings:
        if self.auth_mode == "external" and not (
            self.external_issuer and self.external_jwks_url and self.external_token_endpoint
        ):
            raise ValueError(
                "auth_mode=external needs external_issuer, external_jwks_url and external_token_endpoint"
            )
        return self


@dataclass(frozen=True)
class SecurityComponents:
    """What ``create_app`` wires: ``install_security(app, c.verifier)`` and
    ``app.include_router(build_security_router(c.endpoints))``."""

    verifier: AccessTokenVerifier
    endpoints: SecurityEndpoints
    registry: ClientRegistry | None
    token_service: TokenService | None
    keys: KeyProvider | None


def _keys(settings: SecuritySettings) -> StaticKeyProvider:
    if settings.token_signing_key is not None:
        current = SigningKey.of(
            load_private_key_pem(
                settings.token_signing_key.read_bytes(), source=str(settings.token_signing_key)
            )
        )
    else:
        current = load_or_create_signing_key(settings.security_dir / "token-signing-key.pem")
    previous = tuple(
        SigningKey.of(load_private_key_pem(p.read_bytes(), source=str(p)))
        for p in settings.token_signing_key_previous
    )
    return StaticKeyProvider(current, previous)


def _clients(settings: SecuritySettings) -> InMemoryClientRegistry:
    clients: list[RegisteredClient] = []
    if settings.clients_file is not None:
        clients.extend(
            InMemoryClientRegistry.from_file(
                settings.clients_file, allow_http_jwks_url=settings.allow_http_jwks_url
            ).all()
        )
    if settings.demo_clients:
        clients.extend(demo_clients(settings.security_dir / "demo-keys"))
    return InMemoryClientRegistry.of(clients)


def build_security(
    settings: SecuritySettings,
    *,
    public_base_url: str,
    http: httpx.AsyncClient,
    now: Callable[[], datetime],
    replay: ReplayStore | None = None,
) -> SecurityComponents:
    """Assemble the security components. ``public_base_url`` is ``PRIORGATE_BASE_URL`` or, when unset,
    ``http://{host}:{port}``: it is the token issuer, and ``{base}/fhir`` the token audience.

    ``replay`` defaults to a per-process store; with several workers pass
    ``replay_sql.SqlReplayStore`` so a replayed assertion is caught whichever worker receives it."""
    base = public_base_url.rstrip("/")
    jwks_cache = JwksCache(http, now)
    if settings.auth_mode == "external":
        assert settings.external_issuer and settings.external_jwks_url and settings.external_token_endpoint
        issuer = ExternalIssuer(
            issuer=settings.external_issuer,
            jwks_url=settings.external_jwks_url,
            audience=settings.external_audience or base + FHIR_BASE_PATH,
            tenant_claim=settings.external_tenant_claim,
            roles_claim=settings.external_roles_claim,
            client_id_claim=settings.external_client_id_claim,
        )
        endpoints = SecurityEndpoints(
            base_url=base,
            external_token_endpoint=settings.external_token_endpoint,
            external_issuer=settings.external_issuer,
        )
        return SecurityComponents(ExternalTokenVerifier(issuer, jwks_cache, now), endpoints, None, None, None)

    keys = _keys(settings)
    registry = _clients(settings)
    policy = AccessTokenPolicy(
        issuer=base,
        audience=base + FHIR_BASE_PATH,
        lifetime=timedelta(seconds=settings.access_token_lifetime),
    )
    service = TokenService(
        registry=registry,
        keys=keys,
        replay=replay or InMemoryReplayStore(),
        policy=policy,
        now=now,
        jwks_cache=jwks_cache,
    )
    endpoints = SecurityEndpoints(base_url=base, token_service=service, keys=keys)
    return SecurityComponents(LocalTokenVerifier(keys, policy, now), endpoints, registry, service, keys)


def load_security_settings(**overrides: object) -> SecuritySettings:
    """Security settings from the environment plus overrides; a bad value fails with one line naming it
    (``server.settings.SettingsError``, as for the other settings)."""
    from pydantic import ValidationError

    from server.settings import SettingsError

    try:
        return SecuritySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "auth_mode"
        raise SettingsError(f"invalid setting PRIORGATE_{name.upper()}: {first['msg']}") from None


def token_endpoint_url(public_base_url: str) -> str:
    return public_base_url.rstrip("/") + TOKEN_PATH
