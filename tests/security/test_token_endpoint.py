"""The token endpoint and protected routes, end to end through a TestClient (SMART Backend Services)."""

from __future__ import annotations

from datetime import timedelta

import jwt
from cryptography.hazmat.primitives import serialization


def _token(secured, kit, client_id, key, scope="system/Claim.rs", **kw):
    assertion = kit.assertion_for(client_id, key, secured.clock(), **kw)
    return secured.client.post("/auth/token", data=kit.token_form(assertion, scope))


def test_rs384_assertion_gets_a_short_lived_token(secured, kit, client_keys, server_keys):
    response = _token(secured, kit, "ehr-rsa", client_keys.rs384, scope="system/Claim.rs system/Claim.c")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "system/Claim.rs system/Claim.c"
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(
        body["access_token"],
        server_keys.signing_key().private_key.public_key(),
        algorithms=["ES256"],
        audience=kit.fhir_base,
        options={"verify_exp": False},
    )
    assert claims["sub"] == "ehr-rsa"
    assert claims["tenants"] == ["org-a"]
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"


def test_es384_assertion_gets_a_token_that_opens_a_protected_route(secured, kit, client_keys):
    response = _token(secured, kit, "ehr-ec", client_keys.es384)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    read = secured.client.get("/fhir/Claim", headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200
    assert read.json() == {"client": "ehr-ec", "tenants": ["org-b"]}


def test_requested_scopes_are_narrowed_to_the_registration(secured, kit, client_keys):
    response = _token(secured, kit, "ehr-ec", client_keys.es384, scope="system/Claim.rs system/Claim.c")
    assert response.status_code == 200
    assert response.json()["scope"] == "system/Claim.rs"


def test_no_granted_scope_is_invalid_scope(secured, kit, client_keys):
    response = _token(secured, kit, "ehr-ec", client_keys.es384, scope="system/Patient.rs")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_restricted_scope_is_refused_not_widened(secured, kit, client_keys):
    response = _token(secured, kit, "ehr-ec", client_keys.es384, scope="system/Claim.rs?status=active")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert "not supported" in response.json()["error_description"]


def test_malformed_scope_is_invalid_scope(secured, kit, client_keys):
    response = _token(secured, kit, "ehr-ec", client_keys.es384, scope="system/Claim.sr")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_wrong_grant_type_is_unsupported_grant_type(secured, kit, client_keys):
    form = kit.token_form(kit.assertion_for("ehr-ec", client_keys.es384, secured.clock()))
    form["grant_type"] = "authorization_code"
    response = secured.client.post("/auth/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_json_body_is_invalid_request(secured, kit, client_keys):
    form = kit.token_form(kit.assertion_for("ehr-ec", client_keys.es384, secured.clock()))
    response = secured.client.post("/auth/token", json=form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_repeated_parameter_is_invalid_request(secured, kit, client_keys):
    form = kit.token_form(kit.assertion_for("ehr-ec", client_keys.es384, secured.clock()))
    body = "&".join(f"{k}={v}" for k, v in form.items()) + "&scope=system/Claim.r"
    response = secured.client.post(
        "/auth/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def _invalid_client(response, fragment):
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    assert fragment in body["error_description"]


def test_expired_assertion_is_refused(secured, kit, client_keys):
    assertion = kit.assertion_for("ehr-ec", client_keys.es384, secured.clock() - timedelta(minutes=10))
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "expired")


def test_wrong_audience_is_refused(secured, kit, client_keys):
    assertion = kit.assertion_for("ehr-ec", client_keys.es384, secured.clock(), aud="https://other/token")
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "aud")


def test_alg_none_is_refused(secured, kit):
    now = int(secured.clock().timestamp())
    claims = {"iss": "ehr-ec", "sub": "ehr-ec", "aud": kit.token_url, "exp": now + 60, "jti": "n1"}
    assertion = kit.unsigned_jwt({"alg": "none", "typ": "JWT", "kid": "x"}, claims)
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "'none'")


def test_hs256_with_public_key_as_secret_is_refused(secured, kit, client_keys):
    public_pem = client_keys.rs384.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(secured.clock().timestamp())
    claims = {"iss": "ehr-rsa", "sub": "ehr-rsa", "aud": kit.token_url, "exp": now + 60, "jti": "h1"}
    header = {"alg": "HS256", "typ": "JWT", "kid": client_keys.rs384.kid}
    assertion = kit.unsigned_jwt(header, claims, hmac_key=public_pem)
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "'HS256'")


def test_unknown_kid_is_refused(secured, kit, client_keys):
    # signed by a key the client never registered
    assertion = kit.assertion_for("ehr-ec", client_keys.other_es384, secured.clock())
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "no registered key")


def test_replayed_jti_is_refused(secured, kit, client_keys):
    assertion = kit.assertion_for("ehr-ec", client_keys.es384, secured.clock(), jti="once")
    first = secured.client.post("/auth/token", data=kit.token_form(assertion))
    assert first.status_code == 200
    again = kit.assertion_for("ehr-ec", client_keys.es384, secured.clock(), jti="once")
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(again)), "already used")


def test_assertion_lifetime_over_five_minutes_is_refused(secured, kit, client_keys):
    assertion = kit.assertion_for("ehr-ec", client_keys.es384, secured.clock(), lifetime_s=600)
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "5 minutes")


def test_iss_differs_from_sub_is_refused(secured, kit, client_keys):
    now = secured.clock()
    key = client_keys.es384
    claims = {
        "iss": "ehr-ec",
        "sub": "ehr-rsa",
        "aud": kit.token_url,
        "exp": int(now.timestamp()) + 60,
        "jti": "s",
    }
    assertion = jwt.encode(claims, key.private_key, algorithm="ES384", headers={"kid": key.kid})
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "iss and sub")


def test_unknown_client_is_refused(secured, kit, client_keys):
    assertion = kit.assertion_for("nobody", client_keys.es384, secured.clock())
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "unknown client")


def test_signature_from_another_clients_key_is_refused(secured, kit, client_keys):
    # ehr-ec's kid in the header, but signed by a different P-384 key
    other = client_keys.other_es384
    now = secured.clock()
    claims = {
        "iss": "ehr-ec",
        "sub": "ehr-ec",
        "aud": kit.token_url,
        "exp": int(now.timestamp()) + 60,
        "jti": "k",
    }
    assertion = jwt.encode(
        claims, other.private_key, algorithm="ES384", headers={"kid": client_keys.es384.kid}
    )
    _invalid_client(secured.client.post("/auth/token", data=kit.token_form(assertion)), "signature")


def test_missing_token_is_401_with_bearer_challenge(secured):
    response = secured.client.get("/fhir/Claim")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "login"


def test_non_bearer_scheme_is_401(secured):
    response = secured.client.get("/fhir/Claim", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_expired_access_token_is_401(secured, kit, client_keys):
    token = _token(secured, kit, "ehr-ec", client_keys.es384).json()["access_token"]
    secured.clock.advance(minutes=6)
    response = secured.client.get("/fhir/Claim", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "expired" in response.json()["issue"][0]["diagnostics"]


def test_tampered_access_token_is_401(secured, kit, client_keys):
    token = _token(secured, kit, "ehr-ec", client_keys.es384).json()["access_token"]
    head, payload, sig = token.split(".")
    forged = kit.unsigned_jwt({"alg": "none", "kid": "x"}, {"sub": "ehr-ec"}).split(".")[1]
    response = secured.client.get("/fhir/Claim", headers={"Authorization": f"Bearer {head}.{forged}.{sig}"})
    assert response.status_code == 401


def test_scope_not_covering_the_call_is_403(secured, kit, client_keys):
    token = _token(secured, kit, "ehr-ec", client_keys.es384).json()["access_token"]
    response = secured.client.post("/fhir/Claim/$submit", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_submit_with_create_scope_is_allowed(secured, kit, client_keys):
    token = _token(secured, kit, "ehr-rsa", client_keys.rs384, scope="system/Claim.c").json()["access_token"]
    response = secured.client.post("/fhir/Claim/$submit", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"client": "ehr-rsa"}


def test_smart_configuration_and_jwks_are_public(secured, server_keys):
    config = secured.client.get("/.well-known/smart-configuration")
    assert config.status_code == 200
    doc = config.json()
    assert doc["token_endpoint"] == "http://testserver/auth/token"
    assert doc["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert set(doc["capabilities"]) == {"client-confidential-asymmetric", "permission-v2", "permission-v1"}
    assert doc["jwks_uri"] == "http://testserver/auth/jwks"
    assert secured.client.get("/fhir/.well-known/smart-configuration").json() == doc
    jwks = secured.client.get("/auth/jwks").json()
    assert [k["kid"] for k in jwks["keys"]] == [server_keys.signing_key().kid]
    assert all("d" not in k for k in jwks["keys"])


def test_generic_route_checks_the_scope_of_the_path_type(secured, kit, client_keys):
    token = _token(secured, kit, "ehr-ec", client_keys.es384, scope="system/ClaimResponse.rs").json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "req-1"}
    ok = secured.client.get("/fhir/ClaimResponse/7", headers=headers)
    assert ok.status_code == 200
    assert ok.json() == {"read": "ClaimResponse/7", "address": "testclient", "rid": "req-1"}
    refused = secured.client.get("/fhir/Claim/7", headers=headers)
    assert refused.status_code == 403
    assert "system/Claim.r" in refused.json()["issue"][0]["diagnostics"]


def test_route_audit_finds_unprotected_routes(kit, registry, server_keys, clock):
    from server.security import InMemoryReplayStore
    from server.security.dependencies import unprotected_routes

    app, _ = kit.build_app(registry, server_keys, clock, InMemoryReplayStore())
    assert unprotected_routes(app) == []

    @app.get("/fhir/Forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    assert unprotected_routes(app) == ["GET /fhir/Forgotten"]


def test_no_token_or_assertion_reaches_the_logs(secured, kit, client_keys, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    assertion = kit.assertion_for("ehr-ec", client_keys.es384, secured.clock())
    token = secured.client.post("/auth/token", data=kit.token_form(assertion)).json()["access_token"]
    secured.client.get("/fhir/Claim", headers={"Authorization": f"Bearer {token}"})
    secured.client.post("/auth/token", data=kit.token_form(assertion))  # replay: refused
    secured.client.get("/fhir/Claim", headers={"Authorization": f"Bearer {token}x"})  # bad signature
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (assertion, token, assertion.split(".")[2], token.split(".")[2]):
        assert secret not in logged
