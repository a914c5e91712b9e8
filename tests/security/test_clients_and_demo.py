"""Client registrations (file, CLI record), demo clients with their one-command token, keys, discovery."""

from __future__ import annotations

import asyncio
import json
import stat

import jwt
import pytest

from server.security import (
    AccessTokenPolicy,
    ClientRegistrationError,
    InMemoryClientRegistry,
    InMemoryReplayStore,
    InvalidTokenError,
    LocalTokenVerifier,
    StaticKeyProvider,
    dump_clients,
    issue_access_token,
    jwks_of,
    parse_scopes,
    register_client,
    smart_configuration,
)
from server.security.cli import main
from server.security.demo import DEMO_CLIENTS, demo_clients, request_token
from server.security.keys import generate_private_key, private_key_pem, public_jwk

JWKS = {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "x": "AA", "y": "AA"}]}


def test_register_client_builds_a_normalised_record():
    client = register_client(
        "ehr-1", tenants=["org-a"], scopes="system/Claim.c system/*.read", jwks=JWKS, roles=["submitter"]
    )
    assert client.scopes == "system/Claim.c system/*.read"
    assert client.to_json()["tenants"] == ["org-a"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"tenants": []}, "tenant"),
        ({"scopes": "system/Claim.x"}, "permissions"),
        ({"scopes": "system/Claim.rs?status=active"}, "restrictions"),
        ({"roles": ["root"]}, "unknown role"),
        ({"jwks": None}, "exactly one"),
        ({"jwks_url": "http://ehr.example/jwks"}, "exactly one"),
        ({"jwks": {"keys": [{"kty": "EC", "kid": "k", "d": "secret"}]}}, "public keys only"),
        ({"jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}}, "RSA and EC"),
    ],
)
def test_register_client_rejects_bad_records(kwargs, fragment):
    args = {"tenants": ["org-a"], "scopes": "system/Claim.c", "jwks": JWKS} | kwargs
    with pytest.raises(ClientRegistrationError, match=fragment):
        register_client("ehr-1", **args)


def test_jwks_url_must_be_https():
    with pytest.raises(ClientRegistrationError, match="https"):
        register_client("e", tenants=["o"], scopes="system/Claim.c", jwks_url="http://ehr.example/jwks")
    client = register_client("e", tenants=["o"], scopes="system/Claim.c", jwks_url="https://ehr.example/jwks")
    assert client.jwks_url == "https://ehr.example/jwks"


def test_registry_round_trips_through_json_and_loads_toml(tmp_path):
    client = register_client("ehr-1", tenants=["org-a"], scopes="system/Claim.c", jwks=JWKS)
    path = tmp_path / "clients.json"
    path.write_bytes(dump_clients([client]))
    loaded = InMemoryClientRegistry.from_file(path)
    assert asyncio.run(loaded.get("ehr-1")) == client
    toml = tmp_path / "clients.toml"
    toml.write_text(
        '[[clients]]\nclient_id = "ehr-2"\ntenants = ["org-b"]\nscopes = "system/Claim.rs"\n'
        'jwks_url = "https://ehr.example/jwks"\nroles = []\n'
    )
    assert asyncio.run(InMemoryClientRegistry.from_file(toml).get("ehr-2")).tenants == frozenset({"org-b"})


def test_registry_refuses_duplicates_and_disabled_clients_are_unknown(tmp_path):
    record = register_client("ehr-1", tenants=["org-a"], scopes="system/Claim.c", jwks=JWKS).to_json()
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": [record, record]}))
    with pytest.raises(ClientRegistrationError, match="twice"):
        InMemoryClientRegistry.from_file(path)
    path.write_text(json.dumps({"clients": [record | {"enabled": False}]}))
    assert asyncio.run(InMemoryClientRegistry.from_file(path).get("ehr-1")) is None


def test_demo_keys_are_generated_once_private_and_labelled(tmp_path):
    first = demo_clients(tmp_path)
    second = demo_clients(tmp_path)
    assert [c.client_id for c in first] == [d.client_id for d in DEMO_CLIENTS]
    assert [c.jwks for c in first] == [c.jwks for c in second]  # same keys on the second start
    pem = tmp_path / "demo-ehr.private-key.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert "DEMO ONLY" in (tmp_path / "README.txt").read_text()
    assert first[1].jwks["keys"][0]["alg"] == "RS384"


def test_one_command_token_for_a_demo_client(tmp_path, clock, kit, server_keys, test_client_factory):
    registry = InMemoryClientRegistry.of(demo_clients(tmp_path))
    app, _ = kit.build_app(registry, server_keys, clock, InMemoryReplayStore())
    client = test_client_factory(app)
    body = request_token("demo-ehr", base_url=kit.base, folder=tmp_path, http=client, now=clock())
    assert body["token_type"] == "Bearer"
    assert "system/Claim.crs" in body["scope"].split()
    response = client.get("/fhir/Claim", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.json()["tenants"] == ["org-demo-clinic"]
    auditor = request_token("demo-auditor", base_url=kit.base, folder=tmp_path, http=client, now=clock())
    assert auditor["scope"] == "system/AuditEvent.rs"
    response = client.get("/fhir/Claim", headers={"Authorization": f"Bearer {auditor['access_token']}"})
    assert response.status_code == 403


def test_demo_cli_reports_an_unreachable_server(tmp_path, capsys):
    assert (
        main(["token", "--client", "demo-ehr", "--keys", str(tmp_path), "--base-url", "http://127.0.0.1:9"])
        == 1
    )
    assert "failed" in capsys.readouterr().err


def test_rotated_out_key_still_verifies_until_removed(clock, tmp_path):
    old = StaticKeyProvider.generated("ES256")
    (tmp_path / "old.pem").write_bytes(private_key_pem(old.current.private_key))
    (tmp_path / "new.pem").write_bytes(private_key_pem(generate_private_key("RS256")))
    rotated = StaticKeyProvider.from_pem_files(tmp_path / "new.pem", tmp_path / "old.pem")
    assert rotated.signing_key().algorithm == "RS256"
    assert [k["kid"] for k in jwks_of(rotated)["keys"]] == [rotated.current.kid, old.current.kid]
    policy = AccessTokenPolicy(issuer="https://pa", audience="https://pa/fhir")
    client = register_client("c", tenants=["o"], scopes="system/Claim.r", jwks=JWKS)
    token = issue_access_token(client, parse_scopes("system/Claim.r"), keys=old, policy=policy, now=clock())
    principal = asyncio.run(LocalTokenVerifier(rotated, policy, clock).verify(token.access_token))
    assert principal.client_id == "c"
    retired = StaticKeyProvider.generated("ES256")  # same algorithm, the old key is gone
    with pytest.raises(InvalidTokenError, match="current key"):
        asyncio.run(LocalTokenVerifier(retired, policy, clock).verify(token.access_token))


def test_local_verifier_refuses_wrong_audience_and_non_access_tokens(clock, server_keys):
    policy = AccessTokenPolicy(issuer="https://pa", audience="https://pa/fhir")
    key = server_keys.signing_key()
    client = register_client("c", tenants=["o"], scopes="system/Claim.r", jwks=JWKS)
    other = AccessTokenPolicy(issuer="https://pa", audience="https://elsewhere/fhir")
    token = issue_access_token(
        client, parse_scopes("system/Claim.r"), keys=server_keys, policy=other, now=clock()
    )
    verifier = LocalTokenVerifier(server_keys, policy, clock)
    with pytest.raises(InvalidTokenError, match="aud"):
        asyncio.run(verifier.verify(token.access_token))
    # an ID-token-like JWT signed by the same key is not an access token
    plain = jwt.encode(
        {"iss": "https://pa", "aud": "https://pa/fhir", "exp": int(clock().timestamp()) + 60, "sub": "c"},
        key.private_key,
        algorithm=key.algorithm,
        headers={"kid": key.kid},
    )
    with pytest.raises(InvalidTokenError, match="at\\+jwt"):
        asyncio.run(verifier.verify(plain))


def test_public_jwk_has_no_private_members():
    jwk = public_jwk(generate_private_key("ES384"), "ES384")
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


def test_smart_configuration_external_mode_points_at_the_external_server():
    doc = smart_configuration(
        "https://pa.example.org/",
        token_endpoint="https://idp.example.org/token",
        issuer="https://idp.example.org",
        signs_tokens=False,
    )
    assert doc["token_endpoint"] == "https://idp.example.org/token"
    assert "jwks_uri" not in doc
    assert "system/*.read" in doc["scopes_supported"]


def test_key_file_creation_has_one_winner(tmp_path):
    from server.security.keys import create_private_key_file, jwk_thumbprint

    path = tmp_path / "k.pem"
    first = create_private_key_file(path, generate_private_key("ES256"))
    second = create_private_key_file(path, generate_private_key("ES256"))
    assert jwk_thumbprint(public_jwk(second, "ES256")) == jwk_thumbprint(public_jwk(first, "ES256"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem"]  # no temporary files left
