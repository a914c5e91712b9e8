"""The local access token's ``patient`` claim: PriorGate's own patient tokens become patient-context
principals (kind ``patient``, ``patient`` set); Backend Services tokens carry no patient."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from server.security.clients import RegisteredClient
from server.security.keys import SigningKey, StaticKeyProvider, generate_private_key
from server.security.scopes import parse_scopes
from server.security.tokens import AccessTokenPolicy, LocalTokenVerifier, issue_access_token

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_local_token_carries_the_patient_context() -> None:
    keys = StaticKeyProvider(SigningKey.of(generate_private_key("ES256"), "ES256"))
    policy = AccessTokenPolicy(issuer="http://testserver", audience="http://testserver/fhir")
    client = RegisteredClient("app", "app", frozenset({"org-a"}), "patient/*.rs")
    scopes = parse_scopes("patient/*.rs openid")
    issued = issue_access_token(
        client, scopes, keys=keys, policy=policy, now=NOW, patient="p1", subject="pat"
    )
    principal = asyncio.run(LocalTokenVerifier(keys, policy, lambda: NOW).verify(issued.access_token))
    assert (principal.kind, principal.patient, principal.subject) == ("patient", "p1", "pat")
    assert principal.tenants == frozenset({"org-a"})
    backend = issue_access_token(client, parse_scopes("system/*.rs"), keys=keys, policy=policy, now=NOW)
    system = asyncio.run(LocalTokenVerifier(keys, policy, lambda: NOW).verify(backend.access_token))
    assert (system.kind, system.patient, system.subject) == ("system", None, "app")
