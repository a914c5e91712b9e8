"""BALP-shaped AuditEvents."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from server.security import (
    AuditRequest,
    AuditSource,
    Principal,
    audit_decision,
    audit_operation,
    audit_read,
    audit_search,
    audit_write,
    parse_scopes,
)

WHEN = datetime(2026, 3, 1, 12, 0, 5, 123456, tzinfo=UTC)
SOURCE = AuditSource(server_url="https://pa.example.org/fhir")
PRINCIPAL = Principal(
    client_id="demo-ehr",
    tenants=frozenset({"org-a"}),
    scopes=parse_scopes("system/Claim.crs").resource_scopes,
    issuer="https://pa.example.org",
    token_id="tok-1",
)
REQUEST = AuditRequest(PRINCIPAL, client_address="203.0.113.7", request_id="req-9")
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."


def _agent(event, code):
    return next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == code)


def test_patient_read_has_who_what_when_where_outcome():
    event = audit_read(
        "Claim/1", request=REQUEST, source=SOURCE, recorded=WHEN, status=200, patients=["Patient/p"]
    )
    assert event["resourceType"] == "AuditEvent"
    assert event["meta"]["profile"] == [BALP + "PatientRead"]
    assert event["type"]["code"] == "rest"
    assert event["subtype"][0] == {
        "system": "http://hl7.org/fhir/restful-interaction",
        "code": "read",
        "display": "read",
    }
    assert event["action"] == "R"
    assert event["recorded"] == "2026-03-01T12:00:05.123Z"
    assert event["outcome"] == "0"
    client = _agent(event, "110153")
    assert client["who"]["identifier"]["value"] == "demo-ehr"
    assert client["network"] == {"address": "203.0.113.7", "type": "2"}
    detail = {e["url"]: e["valueString"] for e in client["extension"][0]["extension"]}
    assert detail["client_id"] == "demo-ehr" and detail["jti"] == "tok-1"
    server = _agent(event, "110152")
    assert server["network"]["address"] == "https://pa.example.org/fhir"
    assert event["source"]["type"][0]["code"] == "4"
    whats = [e["what"].get("reference") for e in event["entity"]]
    assert whats[:2] == ["Claim/1", "Patient/p"]
    assert event["entity"][1]["role"]["code"] == "1"


def test_read_without_patient_uses_plain_profile_and_vread_is_read():
    event = audit_read(
        "Questionnaire/q/_history/2", request=REQUEST, source=SOURCE, recorded=WHEN, status=200
    )
    assert event["meta"]["profile"] == [BALP + "Read"]
    assert event["subtype"][0]["code"] == "vread"


def test_search_records_the_query_base64():
    query = "GET Claim?patient=Patient/p&_include=Claim:patient"
    event = audit_search(
        query, request=REQUEST, source=SOURCE, recorded=WHEN, status=200, patients=["Patient/p"]
    )
    assert event["meta"]["profile"] == [BALP + "PatientQuery"]
    assert event["action"] == "E"
    query_entity = next(e for e in event["entity"] if e["role"]["code"] == "24")
    assert base64.b64decode(query_entity["query"]).decode() == query


@pytest.mark.parametrize(
    ("interaction", "action", "profile", "status", "outcome"),
    [
        ("create", "C", "Create", 201, "0"),
        ("update", "U", "Update", 200, "0"),
        ("delete", "D", "Delete", 204, "0"),
        ("update", "U", "Update", 412, "4"),
        ("create", "C", "Create", 500, "8"),
    ],
)
def test_writes(interaction, action, profile, status, outcome):
    event = audit_write(interaction, "Claim/1", request=REQUEST, source=SOURCE, recorded=WHEN, status=status)
    assert event["action"] == action
    assert event["meta"]["profile"] == [BALP + profile]
    assert event["outcome"] == outcome


def test_operation_names_the_operation():
    event = audit_operation(
        "$submit",
        request=REQUEST,
        source=SOURCE,
        recorded=WHEN,
        status=200,
        what=["Bundle/b1", "ClaimResponse/r1"],
    )
    assert event["subtype"][0]["code"] == "operation"
    assert event["subtype"][1]["code"] == "$submit"
    assert [e["what"]["reference"] for e in event["entity"][:2]] == ["Bundle/b1", "ClaimResponse/r1"]


def test_decision_event_carries_the_review_action():
    event = audit_decision(
        "Claim/1",
        "ClaimResponse/2",
        "A1",
        request=REQUEST,
        source=SOURCE,
        recorded=WHEN,
        patients=["Patient/p"],
    )
    assert event["type"]["code"] == "pa-decision"
    assert event["entity"][0]["what"]["reference"] == "ClaimResponse/2"
    assert event["entity"][0]["detail"] == [{"type": "decision", "valueString": "A1"}]


def test_unauthenticated_request_is_still_recorded_and_never_carries_a_token():
    event = audit_read(
        "Claim/1", request=AuditRequest(None, "198.51.100.1"), source=SOURCE, recorded=WHEN, status=401
    )
    assert event["outcome"] == "4"
    assert _agent(event, "110153")["who"] == {"display": "unauthenticated"}
    assert "Bearer" not in str(event)


def test_naive_time_is_rejected():
    with pytest.raises(ValueError):
        audit_read("Claim/1", request=REQUEST, source=SOURCE, recorded=datetime(2026, 1, 1), status=200)


def test_events_are_valid_r4_audit_events(validator):
    request = AuditRequest(PRINCIPAL, "203.0.113.7", "req-1")
    anonymous = AuditRequest(None, "198.51.100.1")
    events = [
        audit_read(
            "Claim/1", request=request, source=SOURCE, recorded=WHEN, status=200, patients=["Patient/p"]
        ),
        audit_search(
            "GET Claim?patient=Patient/p", request=request, source=SOURCE, recorded=WHEN, status=200
        ),
        audit_write("delete", "Claim/1", request=request, source=SOURCE, recorded=WHEN, status=204),
        audit_operation(
            "$inquire", request=request, source=SOURCE, recorded=WHEN, status=200, what=["Bundle/b"]
        ),
        audit_decision("Claim/1", "ClaimResponse/2", "A1", request=request, source=SOURCE, recorded=WHEN),
        audit_read("Claim/1", request=anonymous, source=SOURCE, recorded=WHEN, status=401),
    ]
    for event in events:
        issues = validator.validate(event, "http://hl7.org/fhir/StructureDefinition/AuditEvent")
        # The BALP package is not among the IGs, so only its agent-detail extension is unknown.
        errors = [
            i for i in issues if i.severity in ("error", "fatal") and "ihe-agentDetail" not in i.diagnostics
        ]
        assert errors == [], (event["type"], errors)


def test_capability_security_is_valid_r4(validator):
    from server.security import capability_security

    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-03-01",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementation": {"description": "PriorGate"},
        "rest": [{"mode": "server", "security": capability_security()}],
    }
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    issues = validator.validate(statement, "http://hl7.org/fhir/StructureDefinition/CapabilityStatement")
    assert [i for i in issues if i.severity in ("error", "fatal")] == []
