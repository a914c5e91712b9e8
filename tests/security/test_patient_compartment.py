"""The patient-context rule (server/security/patient_compartment.py) and the local token's ``patient``
claim: a patient principal reads only its own Patient and the Patient Access types, never writes, never
calls operations, never reaches PAS or DTR; other principals are not affected."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from igs.outcome import OperationOutcomeError
from server.errors import status_of as status_of_failure
from server.security.clients import RegisteredClient
from server.security.keys import SigningKey, StaticKeyProvider, generate_private_key
from server.security.patient_compartment import check_patient_request, generic_route_allows
from server.security.principal import Principal
from server.security.scopes import parse_scopes
from server.security.tokens import AccessTokenPolicy, LocalTokenVerifier, issue_access_token

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PATIENT_SCOPES = parse_scopes("patient/*.rs").resource_scopes


def patient(patient_id: str | None = "p1") -> Principal:
    return Principal("app", frozenset({"org-a"}), PATIENT_SCOPES, kind="patient", patient=patient_id)


def status_of(principal: Principal, method: str, path: str | None) -> int:
    try:
        check_patient_request(principal, method, path)
    except OperationOutcomeError as error:
        return status_of_failure(error.failure)
    return 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "Patient/p1", 200),
        ("HEAD", "Patient/p1", 200),
        ("GET", "Patient/p1/_history", 200),
        ("GET", "Patient/p1/_history/2", 200),
        ("GET", "ExplanationOfBenefit", 200),
        ("GET", "ExplanationOfBenefit/e1", 200),
        ("GET", "Patient/p2", 404),
        ("GET", "Patient/p2/_history/1", 404),
        ("GET", "Patient", 403),
        ("GET", "Patient/_history", 403),
        ("POST", "Patient/_search", 403),
        ("GET", "Patient/p1/$everything", 403),
        ("PUT", "Patient/p1", 403),
        ("DELETE", "Patient/p1", 403),
        ("POST", "", 403),
        ("GET", "_history", 403),
        ("GET", "Claim", 403),
        ("GET", "Coverage/c1", 403),
        ("POST", "Claim/$submit", 403),
        ("POST", "Claim/$inquire", 403),
        ("GET", None, 403),  # under /pas or /dtr
    ],
)
def test_patient_principal_reaches_only_its_own_record(method: str, path: str | None, status: int) -> None:
    assert status_of(patient(), method, path) == status


def test_patient_principal_without_patient_context_reaches_nothing() -> None:
    assert status_of(patient(None), "GET", "Patient/p1") == 403


def test_other_principals_are_untouched() -> None:
    system = Principal("ehr", frozenset({"org-a"}), parse_scopes("system/*.rs").resource_scopes)
    assert status_of(system, "POST", "Claim/$submit") == 200
    generic_route_allows(system, "Claim")
    generic_route_allows(None, "Claim")


def test_generic_routes_serve_a_patient_only_its_patient_record() -> None:
    generic_route_allows(patient(), "Patient")
    with pytest.raises(OperationOutcomeError) as refused:
        generic_route_allows(patient(), "ExplanationOfBenefit")
    assert status_of_failure(refused.value.failure) == 403


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
