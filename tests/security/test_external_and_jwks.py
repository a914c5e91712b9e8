"""External authorization server mode, remote JWK Sets (client jwks_url), and the JWKS cache."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI

from server.errors import install_error_handlers
from server.security import (
    ClientAuthenticationError,
    ExternalIssuer,
    ExternalTokenVerifier,
    InMemoryClientRegistry,
    InMemoryReplayStore,
    InvalidTokenError,
    JwksCache,
    Principal,
    SigningKey,
    install_security,
    register_client,
    require,
    verify_client_assertion,
)
from server.security.keys import generate_private_key

ISSUER = "https://idp.example.org"
JWKS_URL = "https://idp.example.org/jwks"
AUDIENCE = "https://pa.example.org/fhir"


class JwksHost:
    """A fake JWKS server counting its requests."""

    def __init__(self, *keys: SigningKey, status: int = 200) -> None:
        self.keys = list(keys)
        self.status = status
        self.calls = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.status != 200:
            return httpx.Response(self.status)
        return httpx.Response(200, json={"keys": [k.public_jwk for k in self.keys]})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))


@pytest.fixture(scope="module")
def idp_key() -> SigningKey:
    return SigningKey.of(generate_private_key("RS256"), "RS256")


def _external_token(key: SigningKey, now, **overrides) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "svc-123",
        "azp": "partner-ehr",
        "exp": int(now.timestamp()) + 300,
        "iat": int(now.timestamp()),
        "jti": "ext-1",
        "scope": "system/Claim.crs email",
        "org_ids": ["org-a", "org-c"],
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})


def _verifier(host: JwksHost, clock) -> ExternalTokenVerifier:
    issuer = ExternalIssuer(issuer=ISSUER, jwks_url=JWKS_URL, audience=AUDIENCE, tenant_claim="org_ids")
    return ExternalTokenVerifier(issuer, JwksCache(host.client(), clock), clock)


def test_external_token_is_accepted_and_mapped(idp_key, clock):
    host = JwksHost(idp_key)
    verifier = _verifier(host, clock)
    principal = asyncio.run(verifier.verify(_external_token(idp_key, clock())))
    assert principal.client_id == "partner-ehr"
    assert principal.tenants == frozenset({"org-a", "org-c"})
    assert principal.allows("Claim", "c") and not principal.allows("Claim", "d")
    assert principal.issuer == ISSUER


@pytest.mark.parametrize(
    ("claim", "expected"),
    [("pat-123", "pat-123"), ("Patient/pat-123", "pat-123"), (None, None), ("a/b", None), (42, None)],
)
def test_external_token_carries_the_smart_patient_claim(idp_key, clock, claim, expected):
    verifier = _verifier(JwksHost(idp_key), clock)
    token = _external_token(
        idp_key, clock(), scope="patient/ExplanationOfBenefit.rs launch/patient", patient=claim
    )
    principal = asyncio.run(verifier.verify(token))
    assert principal.kind == "patient"
    assert principal.patient == expected


def test_external_jwks_is_fetched_once_and_cached(idp_key, clock):
    host = JwksHost(idp_key)
    verifier = _verifier(host, clock)

    async def twice() -> None:
        await verifier.verify(_external_token(idp_key, clock()))
        await verifier.verify(_external_token(idp_key, clock()))

    asyncio.run(twice())
    assert host.calls == 1
    clock.advance(minutes=6)  # past the cache TTL
    asyncio.run(verifier.verify(_external_token(idp_key, clock())))
    assert host.calls == 2


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": "https://other.example/fhir"}, "aud"),
        ({"org_ids": None}, "org_ids"),
        ({"exp": 1_000_000}, "expired"),
    ],
)
def test_external_token_is_refused(idp_key, clock, overrides, fragment):
    verifier = _verifier(JwksHost(idp_key), clock)
    with pytest.raises(InvalidTokenError, match=fragment):
        asyncio.run(verifier.verify(_external_token(idp_key, clock(), **overrides)))


def test_external_token_from_unknown_key_is_refused_with_rate_limited_refetch(idp_key, clock):
    stranger = SigningKey.of(generate_private_key("ES256"), "ES256")
    host = JwksHost(idp_key)
    verifier = _verifier(host, clock)

    async def attempts() -> None:
        for _ in range(5):
            with pytest.raises(InvalidTokenError, match="kid"):
                await verifier.verify(_external_token(stranger, clock()))

    asyncio.run(attempts())
    assert (
        host.calls == 1
    )  # the set was just fetched: unknown kids do not trigger refetches inside the cooldown


def test_rotated_external_key_is_picked_up_after_cooldown(idp_key, clock):
    new_key = SigningKey.of(generate_private_key("ES256"), "ES256")
    host = JwksHost(idp_key)
    verifier = _verifier(host, clock)
    asyncio.run(verifier.verify(_external_token(idp_key, clock())))
    host.keys.append(new_key)
    clock.advance(seconds=31)
    principal = asyncio.run(verifier.verify(_external_token(new_key, clock())))
    assert principal.client_id == "partner-ehr"


def test_unreachable_jwks_is_refused_not_crashed(idp_key, clock):
    verifier = _verifier(JwksHost(idp_key, status=503), clock)
    with pytest.raises(InvalidTokenError, match="unavailable"):
        asyncio.run(verifier.verify(_external_token(idp_key, clock())))


def test_hs256_external_token_is_refused(idp_key, clock, kit):
    verifier = _verifier(JwksHost(idp_key), clock)
    token = kit.unsigned_jwt({"alg": "HS256", "kid": idp_key.kid}, {"iss": ISSUER}, hmac_key=b"k" * 32)
    with pytest.raises(InvalidTokenError, match="algorithm"):
        asyncio.run(verifier.verify(token))


def _app(verifier) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_security(app, verifier)

    @app.get("/fhir/Claim")
    async def search(principal: Annotated[Principal, Depends(require("Claim", "s"))]) -> list[str]:
        return sorted(principal.tenants)

    return app


def test_external_mode_accepts_and_refuses_over_http(idp_key, clock, test_client_factory):
    verifier = _verifier(JwksHost(idp_key), clock)
    client = test_client_factory(_app(verifier))
    ok = client.get("/fhir/Claim", headers={"Authorization": f"Bearer {_external_token(idp_key, clock())}"})
    assert ok.status_code == 200
    assert ok.json() == ["org-a", "org-c"]
    forged_key = SigningKey.of(generate_private_key("RS256"), "RS256")
    forged = SigningKey(idp_key.kid, "RS256", forged_key.private_key)
    refused = client.get(
        "/fhir/Claim", headers={"Authorization": f"Bearer {_external_token(forged, clock())}"}
    )
    assert refused.status_code == 401
    no_scope = _external_token(idp_key, clock(), scope="system/Patient.rs")
    assert client.get("/fhir/Claim", headers={"Authorization": f"Bearer {no_scope}"}).status_code == 403


# --- client keys registered by URL -----------------------------------------------------------


def _url_registry(url: str) -> InMemoryClientRegistry:
    return InMemoryClientRegistry.of(
        [register_client("ehr-url", tenants=["org-u"], scopes="system/Claim.rs", jwks_url=url)]
    )


def test_assertion_verified_against_registered_jwks_url(client_keys, clock, kit):
    host = JwksHost(client_keys.es384)
    registry = _url_registry("https://ehr.example/jwks.json")
    assertion = kit.assertion_for("ehr-url", client_keys.es384, clock())
    verified = asyncio.run(
        verify_client_assertion(
            assertion,
            audience=kit.token_url,
            registry=registry,
            replay=InMemoryReplayStore(),
            now=clock(),
            jwks_cache=JwksCache(host.client(), clock),
        )
    )
    assert verified.client.client_id == "ehr-url"
    assert host.calls == 1


def test_jku_other_than_registered_url_is_refused(client_keys, clock, kit):
    key = client_keys.es384
    registry = _url_registry("https://ehr.example/jwks.json")
    now = clock()
    claims = {
        "iss": "ehr-url",
        "sub": "ehr-url",
        "aud": kit.token_url,
        "exp": int(now.timestamp()) + 60,
        "jti": "j",
    }
    assertion = jwt.encode(
        claims,
        key.private_key,
        algorithm="ES384",
        headers={"kid": key.kid, "jku": "https://evil.example/jwks"},
    )
    host = JwksHost(key)
    with pytest.raises(ClientAuthenticationError, match="jku"):
        asyncio.run(
            verify_client_assertion(
                assertion,
                audience=kit.token_url,
                registry=registry,
                replay=InMemoryReplayStore(),
                now=now,
                jwks_cache=JwksCache(host.client(), clock),
            )
        )
    assert host.calls == 0  # the attacker's URL is never fetched, nor the registered one


def test_replay_store_forgets_after_expiry(clock):
    store = InMemoryReplayStore(max_entries=2)

    async def run() -> list[bool]:
        now = clock()
        later = now + timedelta(minutes=5)
        results = [
            await store.first_use("c", "a", later, now),
            await store.first_use("c", "a", later, now),
            await store.first_use("other", "a", later, now),
        ]
        results.append(await store.first_use("c", "a", later, later + timedelta(seconds=1)))
        return results

    assert asyncio.run(run()) == [True, False, True, True]


def test_select_key_binds_algorithm_to_key_type_and_curve():
    from server.security import select_key
    from server.security.keys import public_jwk

    ec = public_jwk(generate_private_key("ES384"), "ES384")
    rsa = public_jwk(generate_private_key("RS384"), "RS384")
    bare_ec = {k: v for k, v in ec.items() if k != "alg"}
    bare_rsa = {k: v for k, v in rsa.items() if k != "alg"}
    assert select_key({"keys": [ec]}, ec["kid"], "ES384") is not None
    assert select_key({"keys": [bare_ec]}, ec["kid"], "ES256") is None  # P-384 key, P-256 algorithm
    assert select_key({"keys": [bare_ec]}, ec["kid"], "RS384") is None
    assert select_key({"keys": [bare_rsa]}, rsa["kid"], "ES384") is None  # used to raise InvalidKeyError
    assert select_key({"keys": [bare_rsa]}, rsa["kid"], "HS256") is None
    assert (
        select_key({"keys": [{"kid": "x", "kty": "EC", "crv": "P-384", "x": "!!", "y": "??"}]}, "x", "ES384")
        is None
    )
