"""The real application as ``make run`` starts it: local SMART Backend Services with the demo clients,
anonymous calls refused, one command (``priorgate token``) away from a working token."""

from __future__ import annotations

import logging

import pytest

from server.app import create_app
from server.security.config import SecuritySettings
from server.security.demo import request_token
from server.settings import load_settings


def test_out_of_the_box_the_app_refuses_anonymous_calls_and_serves_demo_tokens(
    tmp_path, clock, test_client_factory, kit
):
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'pg.db'}", demo_content=True, base_url=kit.base
    )
    app = create_app(
        settings, prepare_database=True, now=clock, security=SecuritySettings(security_dir=tmp_path)
    )
    client = test_client_factory(app)

    assert client.get("/fhir/metadata").status_code == 200
    assert client.get("/.well-known/smart-configuration").status_code == 200
    assert client.get("/fhir/Claim").status_code == 401
    assert client.get("/fhir/Patient/x").status_code == 401
    assert client.post("/pas/2.2.1/Claim/$submit", json={}).status_code == 401
    assert client.get("/pas/review").status_code == 401
    assert client.post("/dtr/2.0.1/Questionnaire/$questionnaire-package", json={}).status_code == 401

    token = request_token(
        "demo-ehr", base_url=kit.base, folder=tmp_path / "demo-keys", http=client, now=clock()
    )
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/fhir/Claim", headers=headers).status_code == 200
    # the demo EHR's scopes cover the whole CRD -> DTR -> PAS path
    fhir_json = {"Content-Type": "application/fhir+json"}
    for path in (
        "/fhir/Questionnaire/$questionnaire-package",
        "/dtr/2.2.0/Questionnaire/$questionnaire-package",
        "/fhir/Claim/$submit",
        "/pas/2.0.1/Claim/$inquire",
    ):
        answer = client.post(path, json={"resourceType": "Parameters"}, headers=headers | fhir_json)
        assert answer.status_code not in (401, 403), (path, answer.text)
    # the demo payer data is the payer's: the submitter does not see it, the payer's reviewer does
    assert client.get("/fhir/Patient", headers=headers).json()["total"] == 0
    reviewer = request_token(
        "demo-reviewer", base_url=kit.base, folder=tmp_path / "demo-keys", http=client, now=clock()
    )
    payer_view = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {reviewer['access_token']}"})
    assert payer_view.json()["total"] == 4  # the three demo patients and the demo member (server/demo)
    created = client.post(
        "/fhir/Patient",
        headers=headers | {"Content-Type": "application/fhir+json"},
        json={"resourceType": "Patient"},
    )
    assert created.status_code == 201
    assert client.get(f"/fhir/Patient/{created.json()['id']}", headers=headers).status_code == 200
    # the intermediary acts for the clinic too and finds the clinic's Patient
    broker = request_token(
        "demo-intermediary", base_url=kit.base, folder=tmp_path / "demo-keys", http=client, now=clock()
    )
    broker_headers = {"Authorization": f"Bearer {broker['access_token']}"}
    assert client.get(f"/fhir/Patient/{created.json()['id']}", headers=broker_headers).status_code == 200
    # ... but must name the organization a new resource belongs to
    ambiguous = client.post(
        "/fhir/Patient",
        headers=broker_headers | {"Content-Type": "application/fhir+json"},
        json={"resourceType": "Patient"},
    )
    assert ambiguous.status_code == 422
    named = client.post(
        "/fhir/Patient",
        headers=broker_headers
        | {"Content-Type": "application/fhir+json", "X-PriorGate-Organization": "org-demo-hospital"},
        json={"resourceType": "Patient"},
    )
    assert named.status_code == 201
    assert client.get(f"/fhir/Patient/{named.json()['id']}", headers=headers).status_code == 404


def test_auth_off_is_explicit_and_warns_on_every_start(
    tmp_path, caplog: pytest.LogCaptureFixture, test_client_factory
):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'off.db'}", demo_content=False)
    with caplog.at_level(logging.WARNING):
        app = create_app(settings, prepare_database=True, security=SecuritySettings(auth_mode="off"))
    assert any("PRIORGATE_AUTH_MODE=off" in r.getMessage() for r in caplog.records)
    client = test_client_factory(app)
    assert client.get("/fhir/Claim").status_code == 200
    assert client.get("/.well-known/smart-configuration").status_code == 404  # nothing is advertised
    # still: the audit trail is recorded and never written through the API
    audit = {"resourceType": "AuditEvent", "recorded": "2026-03-01T12:00:00Z"}
    assert client.post("/fhir/AuditEvent", json=audit).status_code == 405
    assert client.put("/fhir/AuditEvent/a1", json={**audit, "id": "a1"}).status_code == 405
