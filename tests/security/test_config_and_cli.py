"""Assembling security from settings (both modes) and the clients/token commands."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from server.errors import install_error_handlers
from server.security import ExternalTokenVerifier, LocalTokenVerifier, build_security_router, install_security
from server.security.cli import main
from server.security.config import SecuritySettings, build_security
from server.security.demo import request_token
from server.security.keys import generate_private_key, public_jwk


def _http() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(404)))


def test_local_mode_out_of_the_box_registers_demo_clients_and_persists_the_key(
    tmp_path, clock, kit, test_client_factory
):
    settings = SecuritySettings(security_dir=tmp_path)
    parts = build_security(settings, public_base_url=kit.base, http=_http(), now=clock)
    assert isinstance(parts.verifier, LocalTokenVerifier)
    assert (tmp_path / "token-signing-key.pem").exists()
    again = build_security(settings, public_base_url=kit.base, http=_http(), now=clock)
    assert again.keys.signing_key().kid == parts.keys.signing_key().kid  # every worker shares the key

    app = FastAPI()
    install_error_handlers(app)
    install_security(app, parts.verifier)
    app.include_router(build_security_router(parts.endpoints))
    client = test_client_factory(app)
    body = request_token(
        "demo-intermediary", base_url=kit.base, folder=tmp_path / "demo-keys", http=client, now=clock()
    )
    assert body["token_type"] == "Bearer"
    principal = asyncio.run(again.verifier.verify(body["access_token"]))
    assert principal.tenants == frozenset({"org-demo-clinic", "org-demo-hospital"})
    assert client.get("/.well-known/smart-configuration").json()["token_endpoint"] == kit.base + "/auth/token"


def test_demo_clients_can_be_switched_off(tmp_path, clock, kit):
    parts = build_security(
        SecuritySettings(security_dir=tmp_path, demo_clients=False),
        public_base_url=kit.base,
        http=_http(),
        now=clock,
    )
    assert parts.registry is not None and parts.registry.all() == ()
    assert not (tmp_path / "demo-keys").exists()


def test_external_mode_needs_issuer_jwks_and_token_endpoint(clock, kit):
    with pytest.raises(ValidationError, match="external_issuer"):
        SecuritySettings(auth_mode="external", external_issuer="https://idp")
    settings = SecuritySettings(
        auth_mode="external",
        external_issuer="https://idp",
        external_jwks_url="https://idp/jwks",
        external_token_endpoint="https://idp/token",
        external_tenant_claim="org",
    )
    parts = build_security(settings, public_base_url=kit.base, http=_http(), now=clock)
    assert isinstance(parts.verifier, ExternalTokenVerifier)
    assert parts.verifier.issuer.audience == kit.base + "/fhir"
    assert parts.token_service is None and parts.endpoints.external_token_endpoint == "https://idp/token"


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("PRIORGATE_ACCESS_TOKEN_LIFETIME", "120")
    monkeypatch.setenv("PRIORGATE_DEMO_CLIENTS", "false")
    settings = SecuritySettings()
    assert settings.access_token_lifetime == 120 and settings.demo_clients is False
    monkeypatch.setenv("PRIORGATE_ACCESS_TOKEN_LIFETIME", "86400")
    with pytest.raises(ValidationError):
        SecuritySettings()


def test_clients_register_and_list(tmp_path, capsys):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(generate_private_key("ES384"), "ES384")]}))
    clients = tmp_path / "clients.json"
    args = [
        "clients",
        "register",
        "--client-id",
        "ehr-9",
        "--tenant",
        "org-9",
        "--scopes",
        "system/Claim.crs",
    ]
    assert main([*args, "--jwks-file", str(jwks), "--file", str(clients)]) == 0
    assert json.loads(clients.read_text())["clients"][0]["client_id"] == "ehr-9"
    assert main([*args, "--jwks-file", str(jwks), "--file", str(clients)]) == 2  # duplicate
    assert "twice" in capsys.readouterr().err
    bad = ["clients", "register", "--client-id", "x", "--tenant", "o", "--scopes", "system/Claim.zz"]
    assert main([*bad, "--jwks-url", "https://x/jwks", "--file", str(clients)]) == 2
    assert main(["clients", "list", "--file", str(clients)]) == 0
    assert capsys.readouterr().out.splitlines() == ["ehr-9\torg-9\tsystem/Claim.crs"]


def test_token_command_needs_a_key_for_non_demo_clients(capsys):
    assert main(["token", "--client", "someone-else"]) == 2
    assert "--key" in capsys.readouterr().err
