"""CDS client JWTs: good ones pass, every kind of bad one gets 401 with an OperationOutcome."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import httpx
import jwt
import pytest

from cds_hooks import CdsClientVerifier, InMemoryJtiStore, TrustedIssuer
from igs.outcome import OperationOutcomeError

PATH = "/cds-services/order-sign-crd"


def body(kit: ModuleType) -> dict[str, Any]:
    return kit.order_sign(kit.service_request("sr1", kit.CPT, "99213"))


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_signed_token_accepted(crd: Any, kit: ModuleType, alg: str) -> None:
    response = crd.call("order-sign-crd", body(kit), token=crd.keys.token(f"{kit.BASE}{PATH}", alg=alg))
    assert response.status_code == 200, response.text


def _hs256_with_public_key(kit: ModuleType, keys: Any) -> str:
    public = keys.jwks()["keys"][1]
    claims = {
        "iss": kit.ISS,
        "aud": f"{kit.BASE}{PATH}",
        "exp": 2_000_000_000,
        "iat": int(kit.NOW.timestamp()),
        "jti": "x",
    }
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa1"}
    segments = [
        jwt.utils.base64url_encode(json.dumps(header).encode()),
        jwt.utils.base64url_encode(json.dumps(claims).encode()),
    ]
    signing_input = b".".join(segments)
    import hashlib
    import hmac

    signature = hmac.new(json.dumps(public).encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + jwt.utils.base64url_encode(signature)).decode()


def _alg_none(kit: ModuleType) -> str:
    claims = {
        "iss": kit.ISS,
        "aud": f"{kit.BASE}{PATH}",
        "exp": 2_000_000_000,
        "iat": int(kit.NOW.timestamp()),
        "jti": "n",
    }
    return jwt.encode(claims, None, algorithm="none", headers={"kid": "ec1"})


BAD = {
    "missing": lambda kit, keys: None,
    "alg none": lambda kit, keys: _alg_none(kit),
    "HS256 with the public key": _hs256_with_public_key,
    "expired": lambda kit, keys: keys.token(f"{kit.BASE}{PATH}", exp_in=-120, iat_offset=-400),
    "issued in the future": lambda kit, keys: keys.token(f"{kit.BASE}{PATH}", iat_offset=600),
    "wrong aud": lambda kit, keys: keys.token(f"{kit.BASE}/cds-services/order-select-crd"),
    "unknown kid": lambda kit, keys: keys.token(f"{kit.BASE}{PATH}", kid="nope"),
    "jku not allowed": lambda kit, keys: keys.token(f"{kit.BASE}{PATH}", jku="https://evil.test/jwks.json"),
    "untrusted issuer": lambda kit, keys: keys.token(f"{kit.BASE}{PATH}", iss="https://evil.test"),
    "garbage": lambda kit, keys: "not.a.jwt",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_tokens_refused(crd: Any, kit: ModuleType, case: str) -> None:
    token = BAD[case](kit, crd.keys)
    response = crd.call("order-sign-crd", body(kit), token=token or "")
    assert response.status_code == 401, (case, response.text)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"
    assert crd.results == []  # nothing was evaluated


def test_replayed_jti_refused(crd: Any, kit: ModuleType) -> None:
    token = crd.keys.token(f"{kit.BASE}{PATH}", jti="once")
    assert crd.call("order-sign-crd", body(kit), token=token).status_code == 200
    replay = crd.call("order-sign-crd", body(kit), token=token)
    assert replay.status_code == 401 and "replayed" in replay.text


def test_jwks_is_cached(crd: Any, kit: ModuleType) -> None:
    for _ in range(3):
        assert crd.call("order-sign-crd", body(kit)).status_code == 200
    assert sum(1 for r in crd.fhir.requests if str(r.url) == kit.JKU) == 1


def test_inline_jwks_and_configured_algorithms(kit: ModuleType, keys: Any) -> None:
    issuer = TrustedIssuer(kit.ISS, jwks=keys.jwks(), algorithms=frozenset({"RS384"}))
    verifier = CdsClientVerifier([issuer], httpx.AsyncClient(), InMemoryJtiStore(), lambda: kit.NOW)
    aud = f"{kit.BASE}{PATH}"
    identity = kit.run(verifier.verify("Bearer " + keys.token(aud, alg="RS384", jku=None), aud))
    assert identity.iss == kit.ISS
    with pytest.raises(OperationOutcomeError):  # ES384 is not configured for this issuer
        kit.run(verifier.verify("Bearer " + keys.token(aud, alg="ES384", jku=None), aud))


def test_hmac_cannot_be_configured(kit: ModuleType) -> None:
    with pytest.raises(ValueError):
        TrustedIssuer(kit.ISS, jwks={"keys": []}, algorithms=frozenset({"HS256"}))


def test_development_mode_needs_no_token_and_warns(
    policies: Any, fhir: Any, keys: Any, kit: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        dev = kit.make_crd(policies, fhir, keys, development_mode=True)
    assert any("development mode" in r.getMessage() for r in caplog.records)
    assert dev.call("order-sign-crd", body(kit), token=None).status_code == 200


def test_router_refuses_to_run_without_verifier_outside_development_mode(
    policies: Any, kit: ModuleType
) -> None:
    from cds_hooks import CdsServices
    from server.api.cds_hooks import build_router

    services = CdsServices(policies, http_client=httpx.AsyncClient(), now=lambda: kit.NOW)
    with pytest.raises(ValueError):
        build_router(services, verifier=None)
