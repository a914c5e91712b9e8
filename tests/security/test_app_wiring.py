"""The security pieces plugged into the real application from outside, as create_app will wire them."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool

from server.app import create_app
from server.security import AuditSource, AuditTrail, FhirScopeGuard, build_security_router, install_security
from server.security.config import SecuritySettings, build_security
from server.security.demo import request_token
from server.settings import load_settings


def test_real_app_refuses_anonymous_serves_demo_tokens_and_audits(tmp_path, clock, test_client_factory, kit):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'pg.db'}", demo_content=False)
    app = create_app(settings, prepare_database=True, now=clock)
    repository = app.state.services.repository
    parts = build_security(
        SecuritySettings(security_dir=tmp_path), public_base_url=kit.base, http=httpx.AsyncClient(), now=clock
    )

    async def store(event: dict[str, Any]) -> None:
        await run_in_threadpool(repository.create, "AuditEvent", event)

    install_security(app, parts.verifier)
    app.include_router(build_security_router(parts.endpoints))
    app.add_middleware(FhirScopeGuard)
    app.add_middleware(AuditTrail, sink=store, source=AuditSource(kit.fhir_base), now=clock)
    client = test_client_factory(app)

    assert client.get("/fhir/metadata").status_code == 200
    assert client.get("/.well-known/smart-configuration").status_code == 200
    assert client.get("/fhir/Claim").status_code == 401
    assert client.get("/fhir/Patient/x").status_code == 401

    token = request_token(
        "demo-ehr", base_url=kit.base, folder=tmp_path / "demo-keys", http=client, now=clock()
    )
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/fhir/Claim", headers=headers).status_code == 200
    created = client.post(
        "/fhir/Patient",
        headers=headers | {"Content-Type": "application/fhir+json"},
        json={"resourceType": "Patient"},
    )
    assert created.status_code == 201
    assert (
        client.delete(f"/fhir/Patient/{created.json()['id']}", headers=headers).status_code == 403
    )  # no .d scope
    assert (
        client.get("/fhir/AuditEvent", headers=headers).status_code == 403
    )  # submitters cannot read the trail

    auditor = request_token(
        "demo-auditor", base_url=kit.base, folder=tmp_path / "demo-keys", http=client, now=clock()
    )
    trail = client.get(
        "/fhir/AuditEvent", headers={"Authorization": f"Bearer {auditor['access_token']}"}
    ).json()
    recorded = {(e["resource"]["subtype"][0]["code"], e["resource"]["outcome"]) for e in trail["entry"]}
    assert ("create", "0") in recorded  # the Patient create
    assert ("read", "4") in recorded  # the anonymous read, refused
    assert ("delete", "4") in recorded  # the delete without scope, refused
