"""Assembling the patient authorization for ``create_app`` (local authentication mode only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.app_launch.accounts import AccountStore, PatientLogins
from server.app_launch.apps import PatientApps
from server.app_launch.demo import with_demo_app
from server.app_launch.exchange import PatientTokenGrants
from server.app_launch.grants import GrantStore
from server.app_launch.web import AuthorizePages, build_authorize_router
from server.ops.auth import Passwords, origin_of
from server.security.audit import AuditSource
from server.security.config import SecurityComponents, SecuritySettings
from server.security.constants import AUTHORIZE_PATH, FHIR_BASE_PATH, JWKS_PATH, TOKEN_PATH
from server.services import Services

OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class AppLaunch:
    router: APIRouter  # /auth/authorize and the OpenID Connect discovery document
    grants: PatientTokenGrants  # the token endpoint's authorization_code and refresh_token grants
    oauth_uris: tuple[str, str]  # authorize and token URLs, for CapabilityStatement.rest.security


def openid_configuration(base_url: str, algorithms: list[str]) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3 metadata for the ``id_token`` PriorGate issues to patient apps."""
    return {
        "issuer": base_url,
        "authorization_endpoint": base_url + AUTHORIZE_PATH,
        "token_endpoint": base_url + TOKEN_PATH,
        "jwks_uri": base_url + JWKS_PATH,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
    }


def build_app_launch(
    security: SecuritySettings, svc: Services, parts: SecurityComponents, base_url: str
) -> AppLaunch | None:
    """The patient authorization, when PriorGate issues its own tokens (``None`` otherwise)."""
    if parts.keys is None or parts.token_service is None:
        return None
    base = base_url.rstrip("/")
    apps = (
        PatientApps.from_file(security.patient_apps_file, allow_http_jwks_url=security.allow_http_jwks_url)
        if security.patient_apps_file
        else PatientApps()
    )
    if security.demo_clients:  # the demo patient app, with the demo clients (server/app_launch/demo.py)
        apps = with_demo_app(apps)
    audit_log = svc.audit
    source = audit_log.source if audit_log is not None else AuditSource(base + FHIR_BASE_PATH)

    async def audit(event: dict[str, Any]) -> None:
        if audit_log is not None:
            await audit_log.record(event)

    grants = GrantStore(svc.engine)
    accounts = AccountStore(svc.engine)
    exchange = PatientTokenGrants(
        apps=apps,
        grants=grants,
        accounts=accounts,
        keys=parts.keys,
        policy=parts.token_service.policy,
        now=svc.now,
        audit=audit,
        source=source,
        refresh_lifetime=timedelta(seconds=security.refresh_token_lifetime),
        token_url=base + TOKEN_PATH,
        replay=parts.token_service.replay,
        jwks_cache=parts.token_service.jwks_cache,
    )
    pages = AuthorizePages(
        apps=apps,
        logins=PatientLogins(accounts, Passwords(), svc.now),
        grants=grants,
        audience=base + FHIR_BASE_PATH,
        now=svc.now,
        audit=audit,
        source=source,
        code_lifetime=timedelta(seconds=security.authorization_code_lifetime),
        secure_cookies=svc.settings.ops_secure_cookies,
        public_origin=origin_of(svc.settings.base_url),
    )
    router = build_authorize_router(pages)
    algorithms = sorted({k.algorithm for k in parts.keys.verification_keys()})
    discovery = openid_configuration(base, algorithms)

    @router.get(OPENID_CONFIGURATION_PATH)
    async def get_openid_configuration() -> JSONResponse:
        return JSONResponse(discovery)

    return AppLaunch(router, exchange, (base + AUTHORIZE_PATH, base + TOKEN_PATH))
