"""CDS client JWTs: good ones pass, every kind of bad one gets 401 with an OperationOutcome."""

from __future__ import annotations

import json
from datetime import timedelta
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


def _tampered(kit: ModuleType, keys: Any) -> str:
    header, _, signature = keys.token(f"{kit.BASE}{PATH}").split(".")
    forged = {
        "iss": kit.ISS,
        "aud": f"{kit.BASE}{PATH}",
        "exp": 2_000_000_000,
        "iat": int(kit.NOW.timestamp()),
        "jti": "f",
    }
    payload = jwt.utils.base64url_encode(json.dumps(forged).encode()).decode()
    return f"{header}.{payload}.{signature}"


def _foreign(kit: ModuleType) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP384R1())
    claims = {
        "iss": kit.ISS,
        "aud": f"{kit.BASE}{PATH}",
        "exp": 2_000_000_000,
        "iat": int(kit.NOW.timestamp()),
        "jti": "o",
    }
    return jwt.encode(claims, other, algorithm="ES384", headers={"kid": "ec1", "jku": kit.JKU})


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
    "tampered payload": lambda kit, keys: _tampered(kit, keys),
    "signed by another key": lambda kit, keys: _foreign(kit),
    "no kid": lambda kit, keys: jwt.encode(
        {
            "iss": kit.ISS,
            "aud": f"{kit.BASE}{PATH}",
            "exp": 2_000_000_000,
            "iat": int(kit.NOW.timestamp()),
            "jti": "k",
        },
        keys.ec,
        algorithm="ES384",
    ),
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


def test_audience_list_accepted(crd: Any, kit: ModuleType) -> None:
    aud = [f"{kit.BASE}/cds-services", f"{kit.BASE}{PATH}"]
    token = jwt.encode(
        {"iss": kit.ISS, "aud": aud, "exp": 2_000_000_000, "iat": int(kit.NOW.timestamp()), "jti": "l"},
        crd.keys.ec,
        algorithm="ES384",
        headers={"kid": "ec1", "jku": kit.JKU},
    )
    assert crd.call("order-sign-crd", body(kit), token=token).status_code == 200


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


def test_jwks_refetched_after_ttl_and_on_rotation(kit: ModuleType, keys: Any, fhir: Any) -> None:
    clock = [kit.NOW]
    client = httpx.AsyncClient(transport=httpx.MockTransport(fhir.handler))
    issuer = TrustedIssuer(kit.ISS, jwks_url=kit.JKU)
    verifier = CdsClientVerifier([issuer], client, InMemoryJtiStore(), lambda: clock[0])
    aud = f"{kit.BASE}{PATH}"

    def fetches() -> int:
        return sum(1 for r in fhir.requests if str(r.url) == kit.JKU)

    kit.run(verifier.verify("Bearer " + keys.token(aud, jku=None), aud))
    kit.run(verifier.verify("Bearer " + keys.token(aud, jku=None), aud))
    assert fetches() == 1
    clock[0] = kit.NOW + timedelta(minutes=11)  # past the 10-minute TTL
    token = keys.token(aud, jku=None)
    with pytest.raises(OperationOutcomeError):  # the token's iat is now too old, but the JWKS was refreshed
        kit.run(verifier.verify("Bearer " + token, aud))
    assert fetches() == 2
    # Key rotation: an unknown kid triggers one refetch (at most every 30 s), then the token is refused.
    clock[0] = kit.NOW + timedelta(minutes=12)
    token = jwt.encode(
        {"iss": kit.ISS, "aud": aud, "exp": 2_000_000_000, "iat": int(clock[0].timestamp()), "jti": "r1"},
        keys.ec,
        algorithm="ES384",
        headers={"kid": "ec2"},
    )
    with pytest.raises(OperationOutcomeError, match="unknown kid"):
        kit.run(verifier.verify("Bearer " + token, aud))
    assert fetches() == 3
    with pytest.raises(OperationOutcomeError, match="unknown kid"):
        kit.run(verifier.verify("Bearer " + token, aud))
    assert fetches() == 3  # rate limited


def test_discovery_can_require_a_jwt(policies: Any, fhir: Any, keys: Any, kit: ModuleType) -> None:
    from fastapi import FastAPI

    from cds_hooks import CdsServices
    from server.api.cds_hooks import build_router

    client = httpx.AsyncClient(transport=httpx.MockTransport(fhir.handler))
    services = CdsServices(policies, http_client=client, now=lambda: kit.NOW)
    verifier = CdsClientVerifier(
        [TrustedIssuer(kit.ISS, allowed_jku=frozenset({kit.JKU}))],
        client,
        InMemoryJtiStore(),
        lambda: kit.NOW,
    )
    app = FastAPI()
    app.include_router(build_router(services, verifier=verifier, discovery_requires_jwt=True))

    async def get(token: str | None) -> int:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=kit.BASE) as http:
            return (await http.get("/cds-services", headers=headers)).status_code

    assert kit.run(get(None)) == 401
    assert kit.run(get(keys.token(f"{kit.BASE}/cds-services"))) == 200


def test_audience_follows_a_mount_prefix(policies: Any, fhir: Any, keys: Any, kit: ModuleType) -> None:
    from fastapi import FastAPI

    from cds_hooks import CdsServices
    from server.api.cds_hooks import build_router

    client = httpx.AsyncClient(transport=httpx.MockTransport(fhir.handler))
    services = CdsServices(policies, http_client=client, now=lambda: kit.NOW)
    verifier = CdsClientVerifier(
        [TrustedIssuer(kit.ISS, allowed_jku=frozenset({kit.JKU}))],
        client,
        InMemoryJtiStore(),
        lambda: kit.NOW,
    )
    app = FastAPI()
    app.include_router(build_router(services, verifier=verifier), prefix="/crd")

    async def post(aud: str) -> int:
        headers = {"authorization": f"Bearer {keys.token(aud)}", "content-type": "application/json"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=kit.BASE) as http:
            response = await http.post("/crd" + PATH, content=json.dumps(body(kit)), headers=headers)
            return response.status_code

    assert kit.run(post(f"{kit.BASE}/crd{PATH}")) == 200
    assert kit.run(post(f"{kit.BASE}{PATH}")) == 401
