"""Fixtures for the security tests: client keys, a settable clock, a registry and a small app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

from server.errors import install_error_handlers
from server.security import (
    AccessTokenPolicy,
    InMemoryClientRegistry,
    InMemoryReplayStore,
    LocalTokenVerifier,
    Principal,
    SecurityEndpoints,
    SigningKey,
    StaticKeyProvider,
    TokenService,
    audit_request,
    build_security_router,
    install_security,
    register_client,
    require,
    require_on_path,
    require_operation,
    sign_client_assertion,
)
from server.security.keys import generate_private_key, public_jwk

with warnings.catch_warnings():
    # Starlette 1.x nudges towards httpx2 at import; the httpx-based TestClient still works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient

BASE = "http://testserver"
TOKEN_URL = BASE + "/auth/token"
FHIR_BASE = BASE + "/fhir"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    moment: datetime = START

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass(frozen=True)
class ClientKeys:
    rs384: SigningKey
    es384: SigningKey
    other_es384: SigningKey  # never registered


@pytest.fixture(scope="session")
def client_keys() -> ClientKeys:
    return ClientKeys(
        rs384=SigningKey.of(generate_private_key("RS384"), "RS384"),
        es384=SigningKey.of(generate_private_key("ES384"), "ES384"),
        other_es384=SigningKey.of(generate_private_key("ES384"), "ES384"),
    )


@pytest.fixture(scope="session")
def server_keys() -> StaticKeyProvider:
    return StaticKeyProvider.generated("ES256")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(client_keys: ClientKeys) -> InMemoryClientRegistry:
    return InMemoryClientRegistry.of(
        [
            register_client(
                "ehr-rsa",
                tenants=["org-a"],
                scopes="system/Claim.crs system/ClaimResponse.rs system/Questionnaire.rs",
                jwks={"keys": [public_jwk(client_keys.rs384.private_key, "RS384")]},
            ),
            register_client(
                "ehr-ec",
                tenants=["org-b"],
                scopes="system/Claim.rs system/ClaimResponse.rs",
                jwks={"keys": [public_jwk(client_keys.es384.private_key, "ES384")]},
            ),
        ]
    )


def assertion_for(
    client_id: str, key: SigningKey, now: datetime, *, aud: str = TOKEN_URL, lifetime_s: int = 300, **kw: Any
) -> str:
    return sign_client_assertion(
        client_id,
        aud,
        key.private_key,
        algorithm=key.algorithm,
        kid=key.kid,
        now=now,
        lifetime=timedelta(seconds=lifetime_s),
        **kw,
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any], *, hmac_key: bytes | None = None) -> str:
    """A hand-made JWS (PyJWT refuses to build these): alg=none, or HMAC with a chosen secret."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def token_form(assertion: str, scope: str = "system/Claim.rs") -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


@dataclass
class SecuredApp:
    client: TestClient
    clock: Clock
    service: TokenService
    replay: InMemoryReplayStore = field(default_factory=InMemoryReplayStore)


def build_app(
    registry: InMemoryClientRegistry,
    keys: StaticKeyProvider,
    clock: Callable[[], datetime],
    replay: InMemoryReplayStore,
) -> tuple[FastAPI, TokenService]:
    policy = AccessTokenPolicy(issuer=BASE, audience=FHIR_BASE)
    service = TokenService(registry=registry, keys=keys, replay=replay, policy=policy, now=clock)
    app = FastAPI()
    install_error_handlers(app)
    install_security(app, LocalTokenVerifier(keys, policy, clock))
    app.include_router(
        build_security_router(SecurityEndpoints(base_url=BASE, token_service=service, keys=keys))
    )

    @app.get("/fhir/Claim")
    async def search_claims(
        principal: Annotated[Principal, Depends(require("Claim", "s"))],
    ) -> dict[str, Any]:
        return {"client": principal.client_id, "tenants": sorted(principal.tenants)}

    @app.post("/fhir/Claim/$submit")
    async def submit(
        principal: Annotated[Principal, Depends(require_operation("$submit"))],
    ) -> dict[str, Any]:
        return {"client": principal.client_id}

    @app.get("/fhir/{resource_type}/{resource_id}")
    async def read(
        resource_type: str,
        resource_id: str,
        request: Request,
        principal: Annotated[Principal, Depends(require_on_path("r"))],
    ) -> dict[str, Any]:
        facts = audit_request(request)
        assert facts.principal is principal
        return {
            "read": f"{resource_type}/{resource_id}",
            "address": facts.client_address,
            "rid": facts.request_id,
        }

    return app, service


@pytest.fixture
def secured(
    registry: InMemoryClientRegistry, server_keys: StaticKeyProvider, clock: Clock
) -> Iterator[SecuredApp]:
    replay = InMemoryReplayStore()
    app, service = build_app(registry, server_keys, clock, replay)
    with TestClient(app, base_url=BASE) as client:
        yield SecuredApp(client, clock, service, replay)


@dataclass(frozen=True)
class Kit:
    """Helpers handed to tests as a fixture (tests run in importlib mode, so they cannot import this)."""

    base: str = BASE
    token_url: str = TOKEN_URL
    fhir_base: str = FHIR_BASE
    start: datetime = START
    assertion_for: Callable[..., str] = staticmethod(assertion_for)  # type: ignore[assignment]
    unsigned_jwt: Callable[..., str] = staticmethod(unsigned_jwt)  # type: ignore[assignment]
    token_form: Callable[..., dict[str, str]] = staticmethod(token_form)  # type: ignore[assignment]
    build_app: Callable[..., tuple[FastAPI, TokenService]] = staticmethod(build_app)  # type: ignore[assignment]


@pytest.fixture(scope="session")
def kit() -> Kit:
    return Kit()


@pytest.fixture
def test_client_factory() -> Iterator[Callable[[FastAPI], TestClient]]:
    """Builds TestClients for apps a test assembles itself; closes them afterwards."""
    opened: list[TestClient] = []

    def make(app: FastAPI) -> TestClient:
        client = TestClient(app, base_url=BASE)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def validator() -> Any:
    """The R4 profile validator over the IG packages in PRIORGATE_IG_PATH (skips when unset)."""
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw or not os.path.isdir(raw):
        pytest.skip("PRIORGATE_IG_PATH is not set")
    from igs import load_registry
    from igs.validator import Validator

    return Validator(load_registry(raw))
