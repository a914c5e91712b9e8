"""Hostile input never escapes as anything but the documented refusal (no 500s)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta

import jwt
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from server.security import (
    AccessTokenPolicy,
    ClientAuthenticationError,
    InMemoryReplayStore,
    InvalidTokenError,
    LocalTokenVerifier,
    StaticKeyProvider,
    verify_client_assertion,
)
from server.security.scopes import ScopeSyntaxError, parse_scopes

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
CLAIM_VALUES = st.one_of(
    JSON, st.integers(min_value=-(10**20), max_value=10**20), st.floats(allow_nan=True, allow_infinity=True)
)
ALGS = st.sampled_from(["ES384", "RS384", "none", "HS256", "ES256", "RS256", "PS384"])
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "alg": ALGS | JSON,
        # placeholders swapped for the registered kids, so key selection sees real keys with any alg
        "kid": st.sampled_from(["<es384>", "<rs384>"]) | JSON,
        "jku": JSON,
    },
)
CLAIMS = st.fixed_dictionaries(
    {},
    optional={
        name: CLAIM_VALUES for name in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "tenants")
    },
)


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _token(header: dict, claims: dict, signature: bytes) -> str:
    return f"{_b64(header)}.{_b64(claims)}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


KEYS = StaticKeyProvider.generated("ES256")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=HEADERS, claims=CLAIMS, signature=st.binary(max_size=96))
def test_assertion_verification_only_refuses(header, claims, signature, registry, clock, kit, client_keys):
    real = {"<es384>": client_keys.es384.kid, "<rs384>": client_keys.rs384.kid}
    if isinstance(header.get("kid"), str) and header["kid"] in real:
        header = header | {"kid": real[header["kid"]]}
    client = ("ehr-ec", "ehr-rsa", None)[len(claims) % 3]
    claims = {"iss": client, "sub": client} | claims if client else claims
    try:
        asyncio.run(
            verify_client_assertion(
                _token(header, claims, signature),
                audience=kit.token_url,
                registry=registry,
                replay=InMemoryReplayStore(),
                now=clock(),
            )
        )
    except ClientAuthenticationError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims=CLAIMS)
def test_correctly_signed_assertion_with_hostile_claims_only_refuses(
    claims, registry, clock, kit, client_keys
):
    # A real signature, so the claim checks after verification (times, jti) see the hostile values.
    key = client_keys.es384
    claims = {"iss": "ehr-ec", "sub": "ehr-ec", "aud": kit.token_url} | claims
    try:
        token = jwt.encode(claims, key.private_key, algorithm="ES384", headers={"kid": key.kid})
    except (TypeError, ValueError, OverflowError):
        assume(False)
    try:
        verified = asyncio.run(
            verify_client_assertion(
                token, audience=kit.token_url, registry=registry, replay=InMemoryReplayStore(), now=clock()
            )
        )
    except ClientAuthenticationError:
        return
    assert verified.client.client_id == "ehr-ec"
    assert verified.expires_at - clock() <= timedelta(minutes=5, seconds=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=HEADERS, claims=CLAIMS, signature=st.binary(max_size=96), text=st.text(max_size=40))
def test_access_token_verification_only_refuses(header, claims, signature, text, clock):
    verifier = LocalTokenVerifier(KEYS, AccessTokenPolicy("https://pa", "https://pa/fhir"), clock)
    for token in (
        _token(header | {"kid": KEYS.current.kid}, claims, signature),
        _token(header, claims, signature),
        text,
    ):
        try:
            asyncio.run(verifier.verify(token))
        except InvalidTokenError:
            pass


@given(st.text(max_size=60))
def test_scope_parsing_only_raises_syntax_errors(text):
    try:
        parsed = parse_scopes(text)
    except ScopeSyntaxError:
        return
    assert all(s.interactions <= frozenset("cruds") for s in parsed.resource_scopes)
