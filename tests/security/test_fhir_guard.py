"""The FHIR REST API guarded in one place: request -> scope mapping, and the middleware over a real
FHIR-shaped router."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from server.errors import install_error_handlers
from server.security import InMemoryReplayStore, Principal, authenticated
from server.security.dependencies import FhirScopeGuard
from server.security.fhir_requests import bundle_requirements, fhir_request_requirement
from server.security.scopes import parse_scopes


@pytest.mark.parametrize(
    ("method", "path", "kind", "resource_type", "letter", "operation"),
    [
        ("GET", "metadata", "public", "*", None, None),
        ("GET", "Claim/1", "interaction", "Claim", "r", None),
        ("GET", "Claim/1/_history/2", "interaction", "Claim", "r", None),
        ("GET", "Claim/1/_history", "interaction", "Claim", "r", None),
        ("GET", "Claim", "interaction", "Claim", "s", None),
        ("GET", "Claim?patient=Patient/1", "interaction", "Claim", "s", None),
        ("POST", "Claim/_search", "interaction", "Claim", "s", None),
        ("GET", "Claim/_history", "interaction", "Claim", "s", None),
        ("POST", "Claim", "interaction", "Claim", "c", None),
        ("PUT", "Claim/1", "interaction", "Claim", "u", None),
        ("PATCH", "Claim/1", "interaction", "Claim", "u", None),
        ("DELETE", "Claim/1", "interaction", "Claim", "d", None),
        ("DELETE", "Claim", "interaction", "Claim", "d", None),
        ("POST", "Claim/$submit", "operation", "Claim", None, "$submit"),
        ("POST", "Claim/$inquire", "operation", "Claim", None, "$inquire"),
        ("POST", "Questionnaire/q1/$questionnaire-package", "operation", "Questionnaire", None, None),
        ("POST", "", "bundle", "*", None, None),
        ("GET", "", "interaction", "*", "s", None),
        ("GET", "_history", "interaction", "*", "s", None),
        ("GET", "lowercase/1", "authenticated", "*", None, None),
        ("GET", "Claim/1/extra/segments/here", "authenticated", "*", None, None),
    ],
)
def test_request_requirements(method, path, kind, resource_type, letter, operation):
    requirement = fhir_request_requirement(method, path)
    assert requirement.kind == kind
    assert requirement.resource_type == resource_type
    assert requirement.interaction == letter
    if operation:
        assert requirement.operation == operation


def test_operation_requirements_follow_the_operation_table():
    scopes = parse_scopes("system/Claim.c").resource_scopes
    assert fhir_request_requirement("POST", "Claim/$submit").allowed_by(scopes)
    assert not fhir_request_requirement("POST", "Claim/$inquire").allowed_by(scopes)
    assert fhir_request_requirement("POST", "Claim/$inquire").describe() == "system/Claim.rs"


def test_bundle_entries_each_need_their_own_scope():
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Claim"}},
            {"request": {"method": "GET", "url": "https://pa.example.org/fhir/Patient/7"}},
            {"request": {"method": "DELETE", "url": "Coverage?identifier=x"}},
            {"request": {"method": "POST"}},
            "junk",
        ],
    }
    found = [(r.resource_type, r.interaction) for r in bundle_requirements(bundle)]
    assert found == [("Claim", "c"), ("Patient", "r"), ("Coverage", "d")]
    assert bundle_requirements({"entry": "nope"}) == []


def _fhir_app(kit, registry, server_keys, clock) -> FastAPI:
    app, _ = kit.build_app(registry, server_keys, clock, InMemoryReplayStore())
    fhir = APIRouter(prefix="/r4")  # a FHIR-shaped router with no security of its own

    @fhir.get("/metadata")
    async def metadata() -> dict[str, str]:
        return {"resourceType": "CapabilityStatement"}

    @fhir.get("/{resource_type}/{resource_id}")
    async def read(resource_type: str, resource_id: str, request: Request) -> dict[str, Any]:
        principal = request.state.principal
        return {"read": f"{resource_type}/{resource_id}", "client": principal.client_id}

    @fhir.post("/{resource_type}")
    async def create(
        resource_type: str, principal: Annotated[Principal, Depends(authenticated)]
    ) -> dict[str, str]:
        return {"created": resource_type, "client": principal.client_id}

    app.include_router(fhir)
    install_error_handlers(app)
    app.add_middleware(FhirScopeGuard, fhir_prefix="/r4")
    return app


def _bearer(secured_client, kit, client_keys, clock, scope):
    assertion = kit.assertion_for("ehr-rsa", client_keys.rs384, clock())
    token = secured_client.post("/auth/token", data=kit.token_form(assertion, scope)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_guard_refuses_anonymous_and_uncovered_calls_before_the_route(
    kit, registry, server_keys, clock, client_keys, test_client_factory
):
    client = test_client_factory(_fhir_app(kit, registry, server_keys, clock))
    assert client.get("/r4/metadata").status_code == 200  # public
    anonymous = client.get("/r4/Claim/1")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["resourceType"] == "OperationOutcome"
    headers = _bearer(client, kit, client_keys, clock, "system/Claim.rs")
    ok = client.get("/r4/Claim/1", headers=headers)
    assert ok.status_code == 200 and ok.json() == {"read": "Claim/1", "client": "ehr-rsa"}
    wrong_type = client.get("/r4/ClaimResponse/1", headers=headers)
    assert wrong_type.status_code == 403
    assert 'error="insufficient_scope"' in wrong_type.headers["www-authenticate"]
    assert client.post("/r4/Claim", headers=headers, json={}).status_code == 403
    creator = _bearer(client, kit, client_keys, clock, "system/Claim.c")
    created = client.post("/r4/Claim", headers=creator, json={})
    assert created.json() == {"created": "Claim", "client": "ehr-rsa"}  # the dependency reused the principal
    assert client.get("/auth/jwks").status_code == 200  # outside the FHIR base: untouched


def test_audit_trail_records_every_fhir_request_including_refusals(
    kit, registry, server_keys, clock, client_keys, test_client_factory
):
    from server.security import AuditSource, AuditTrail

    events: list[dict[str, Any]] = []

    async def sink(event: dict[str, Any]) -> None:
        events.append(event)

    app = _fhir_app(kit, registry, server_keys, clock)
    app.add_middleware(
        AuditTrail, sink=sink, source=AuditSource("http://testserver/r4"), now=clock, fhir_prefix="/r4"
    )
    client = test_client_factory(app)
    client.get("/r4/metadata")  # public: not audited
    client.get("/r4/Claim/9")  # refused: audited with outcome 4
    headers = _bearer(client, kit, client_keys, clock, "system/Claim.rs")
    client.get("/r4/Claim/1", headers=headers | {"X-Request-ID": "r-1"})
    assert [e["subtype"][0]["code"] for e in events] == ["read", "read"]
    refused, read = events
    assert refused["outcome"] == "4"
    assert refused["agent"][0]["who"] == {"display": "unauthenticated"}
    assert read["outcome"] == "0"
    assert read["entity"][0]["what"]["reference"] == "Claim/1"
    assert read["agent"][0]["who"]["identifier"]["value"] == "ehr-rsa"
    assert read["entity"][-1]["what"]["identifier"]["value"] == "r-1"
    assert "Bearer" not in str(events)


def test_a_failing_audit_sink_does_not_break_the_response(
    kit, registry, server_keys, clock, test_client_factory
):
    from server.security import AuditSource, AuditTrail

    async def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("database down")

    app = _fhir_app(kit, registry, server_keys, clock)
    app.add_middleware(
        AuditTrail, sink=broken, source=AuditSource("http://testserver/r4"), now=clock, fhir_prefix="/r4"
    )
    client = test_client_factory(app)
    assert client.get("/r4/Claim/1").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "query", "location", "code", "what"),
    [
        ("GET", "Claim", "patient=Patient/1", None, "search-type", None),
        ("POST", "Claim", "", "http://x/fhir/Claim/5/_history/1", "create", "Claim/5"),
        ("PUT", "Claim/5", "", None, "update", "Claim/5"),
        ("PATCH", "Claim/5", "", None, "patch", "Claim/5"),
        ("DELETE", "Claim/5", "", None, "delete", "Claim/5"),
        ("GET", "Claim/5/_history/2", "", None, "vread", "Claim/5/_history/2"),
        ("GET", "Claim/5/_history", "", None, "history-instance", "Claim/5"),
        ("POST", "Claim/$submit", "", None, "operation", None),
        ("POST", "", "", None, "operation", None),
    ],
)
def test_audit_event_for_request(method, path, query, location, code, what):
    from datetime import UTC, datetime

    from server.security import AuditRequest, AuditSource, audit_event_for_request

    event = audit_event_for_request(
        method,
        path,
        query,
        status=200,
        request=AuditRequest(None),
        source=AuditSource("https://pa/fhir"),
        recorded=datetime(2026, 3, 1, tzinfo=UTC),
        location=location,
    )
    assert event is not None
    assert event["subtype"][0]["code"] == code
    references = [e["what"].get("reference") for e in event.get("entity", []) if "what" in e]
    if what:
        assert references[0] == what
    if code == "search-type":
        assert event["entity"][0]["description"] == "GET Claim?patient=Patient/1"
