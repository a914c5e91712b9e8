"""HRex 1.0.0 Patient/$member-match on SQLite and PostgreSQL: the deterministic match (member id or a
stored Coverage, plus demographics), 422 for no or several matches and for Consents PriorGate cannot
comply with, 400 for malformed input, the stored Consent (the payer-to-payer opt-in), scopes, audit."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.security import install_security
from server.security.config import SecuritySettings
from server.security.principal import Principal, kind_of
from server.security.tokens import InvalidTokenError, lenient_scopes
from server.settings import Settings

BASE = "http://testserver"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
MEMBER = "https://priorgate.org/fhir/sid/member"
PAYER_ID = "https://priorgate.org/fhir/sid/payer-id"
REGULAR = "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#regular"
SENSITIVE = "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#sensitive"
URL = "/fhir/Patient/$member-match"


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


def principal(
    client_id: str, tenants: set[str], scopes: str, roles: frozenset[str] = frozenset(), **kw: Any
) -> Principal:
    parsed = lenient_scopes(scopes)
    return Principal(client_id, frozenset(tenants), parsed, roles, kind_of(parsed), **kw)


@dataclass
class StaticVerifier:
    principals: dict[str, Principal]

    async def verify(self, token: str) -> Principal:
        if token not in self.principals:
            raise InvalidTokenError("unknown token")
        return self.principals[token]


TOKENS = {
    "admin": principal("admin", {"payer"}, "system/*.cruds", frozenset({"admin"})),
    "new-payer": principal("new-payer", {"payer-b"}, "system/Patient.rs system/Consent.c"),
    "no-consent-scope": principal("new-payer", {"payer-b"}, "system/Patient.rs"),
    "no-patient-scope": principal("new-payer", {"payer-b"}, "system/Consent.c"),
    "patient": principal("app", {"members"}, "patient/Patient.rs patient/Consent.crus", patient="x"),
    "auditor": principal("auditor", {"payer"}, "system/AuditEvent.rs", frozenset({"auditor"})),
}


@dataclass
class World:
    http: TestClient
    alice: str

    def post(self, body: Any, token: str = "new-payer") -> Any:
        return self.http.post(URL, json=body, headers={"Authorization": f"Bearer {token}", **FHIR_JSON})

    def admin_get(self, path: str) -> Any:
        return self.http.get(path, headers={"Authorization": "Bearer admin"}).json()


def patient(member_id: str | None, family: str = "Person", birth: str = "1974-12-25") -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"use": "official", "family": family, "given": ["Patricia", "Ann"]}],
        "gender": "female",
        "birthDate": birth,
    }
    if member_id:
        body["identifier"] = [{"system": MEMBER, "value": member_id}]
    return body


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    ig_path = os.environ.get("PRIORGATE_IG_PATH") or str(tmp_path / "no-igs")
    settings = Settings(database_url=database_url, demo_content=False, base_url=BASE, ig_path=Path(ig_path))
    (tmp_path / "clients.json").write_text('{"clients": []}')
    security = SecuritySettings(
        auth_mode="local",
        security_dir=tmp_path / "sec",
        clients_file=tmp_path / "clients.json",
        demo_clients=False,
    )
    app = create_app(settings, now=Clock(), security=security)
    install_security(app, StaticVerifier(dict(TOKENS)))
    with TestClient(app, base_url=BASE) as http:
        admin = {"Authorization": "Bearer admin", "X-PriorGate-Organization": "members", **FHIR_JSON}
        alice = http.post("/fhir/Patient", json=patient("M-55678"), headers=admin).json()["id"]
        coverage = {
            "resourceType": "Coverage",
            "identifier": [{"system": "https://payer-a.example.org/coverage", "value": "DH10001235"}],
            "status": "active",
            "beneficiary": {"reference": f"Patient/{alice}"},
            "payor": [{"identifier": {"system": PAYER_ID, "value": "payer-a"}}],
        }
        assert http.post("/fhir/Coverage", json=coverage, headers=admin).status_code == 201
        new_payer = {"resourceType": "Organization", "id": "payer-b", "name": "New Health Plan"}
        new_payer["identifier"] = [{"system": PAYER_ID, "value": "payer-b"}]
        in_b = {**admin, "X-PriorGate-Organization": "payer-b"}
        assert http.put("/fhir/Organization/payer-b", json=new_payer, headers=in_b).status_code == 201
        yield World(http, alice)


def consent(policy: str = REGULAR, start: str = "2026-01-01", end: str = "2026-12-31") -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "draft",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IDSCL"}]}
        ],
        "patient": {"reference": "Patient/1"},
        "performer": [{"reference": "Patient/1"}],
        "sourceReference": {"reference": "http://example.org/DocumentReference/someconsent.pdf"},
        "policy": [{"uri": policy}],
        "provision": {
            "type": "permit",
            "period": {"start": start, "end": end},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                "code": "performer",
                            }
                        ]
                    },
                    "reference": {
                        "identifier": {"system": PAYER_ID, "value": "payer-a"},
                        "display": "Old Health Plan",
                    },
                },
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {
                        "identifier": {"system": PAYER_ID, "value": "payer-b"},
                        "display": "New Health Plan",
                    },
                },
            ],
            "action": [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "disclose"}
                    ]
                }
            ],
        },
    }


def parameters(
    member: dict[str, Any] | None = None,
    match_ids: list[str] | None = None,
    consent_body: dict[str, Any] | None = None,
    subscriber_id: str | None = None,
) -> dict[str, Any]:
    to_match: dict[str, Any] = {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": "Patient/1"},
        "payor": [{"identifier": {"system": PAYER_ID, "value": "payer-a"}, "display": "Old Health Plan"}],
    }
    if match_ids:
        to_match["identifier"] = [{"value": v} for v in match_ids]
    if subscriber_id:
        to_match["subscriberId"] = subscriber_id
    to_link = {
        "resourceType": "Coverage",
        "identifier": [{"system": "http://example.org/new-payer/identifiers/coverage", "value": "234567"}],
        "status": "active",
        "beneficiary": {"reference": "Patient/1"},
        "payor": [{"identifier": {"system": PAYER_ID, "value": "payer-b"}}],
    }
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "MemberPatient", "resource": member or patient(None)},
            {"name": "CoverageToMatch", "resource": to_match},
            {"name": "CoverageToLink", "resource": to_link},
            {"name": "Consent", "resource": consent_body or consent()},
        ],
    }


def outcome_text(answer: Any) -> str:
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(i.get("diagnostics", "") for i in body["issue"])


def test_a_member_id_match_returns_the_member_identifier_and_stores_the_consent(world: World) -> None:
    answer = world.post(parameters(match_ids=["M-55678"]))
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["parameter"]
    assert output["name"] == "MemberIdentifier"
    identifier = output["valueIdentifier"]
    assert identifier["system"] == MEMBER and identifier["value"] == "M-55678"
    assert identifier["type"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}
    ]
    stored = world.admin_get(f"/fhir/Consent?patient=Patient/{world.alice}")
    (kept,) = [e["resource"] for e in stored["entry"]]
    expected = consent() | {"status": "active", "patient": {"reference": f"Patient/{world.alice}"}}
    # the recipient naming the requesting payer gets its literal reference (README "Payer APIs")
    expected["provision"]["actor"][1]["reference"]["reference"] = "Organization/payer-b"
    assert {k: v for k, v in kept.items() if k not in ("id", "meta")} == expected
    # in the member's tenant: the members' own patient-context token reads it, the requesting payer does not
    member_token = principal("app", {"members"}, "patient/Consent.rs", patient=world.alice)
    world.http.app.state.priorgate_security_gate.verifier.principals["alice"] = member_token  # type: ignore[attr-defined]
    mine = world.http.get(f"/fhir/Consent/{kept['id']}", headers={"Authorization": "Bearer alice"})
    assert mine.status_code == 200
    events = world.http.get("/fhir/AuditEvent?_count=100", headers={"Authorization": "Bearer auditor"}).json()
    matched = [
        e["resource"]
        for e in events.get("entry", ())
        if any(c.get("code") == "$member-match" for c in e["resource"].get("subtype", ()))
        and any(
            x.get("what", {}).get("reference") == f"Consent/{kept['id']}"
            for x in e["resource"].get("entity", ())
        )
    ]
    assert len(matched) == 1
    concerned = [x["what"].get("reference") for x in matched[0]["entity"] if "what" in x]
    assert f"Patient/{world.alice}" in concerned


def test_a_subscriber_id_or_a_stored_coverage_identifier_also_matches(world: World) -> None:
    by_subscriber = world.post(parameters(subscriber_id="M-55678"))
    assert by_subscriber.status_code == 200, by_subscriber.text
    by_coverage = world.post(parameters(match_ids=["DH10001235"]))
    assert by_coverage.status_code == 200, by_coverage.text
    assert by_coverage.json()["parameter"][0]["valueIdentifier"]["value"] == "M-55678"
    stored = world.admin_get(f"/fhir/Consent?patient=Patient/{world.alice}")
    assert stored["total"] == 2


def test_no_match_and_several_matches_are_422_and_store_nothing(world: World) -> None:
    wrong_birth = world.post(parameters(member=patient(None, birth="1974-12-26"), match_ids=["M-55678"]))
    assert wrong_birth.status_code == 422 and "No unique member match" in outcome_text(wrong_birth)
    wrong_name = world.post(parameters(member=patient(None, family="Other"), match_ids=["M-55678"]))
    assert wrong_name.status_code == 422
    unknown = world.post(parameters(match_ids=["M-00000"]))
    assert unknown.status_code == 422
    other_payor = parameters(match_ids=["DH10001235"])
    other_payor["parameter"][1]["resource"]["payor"] = [
        {"identifier": {"system": PAYER_ID, "value": "payer-z"}}
    ]
    assert world.post(other_payor).status_code == 422
    admin = {"Authorization": "Bearer admin", "X-PriorGate-Organization": "members", **FHIR_JSON}
    world.http.post("/fhir/Patient", json=patient("M-55678"), headers=admin)  # a duplicate member record
    several = world.post(parameters(match_ids=["M-55678"]))
    assert several.status_code == 422 and "more than one" in outcome_text(several)
    assert world.admin_get("/fhir/Consent")["total"] == 0


def test_consents_priorgate_cannot_comply_with_are_422(world: World) -> None:
    sensitive = world.post(parameters(match_ids=["M-55678"], consent_body=consent(SENSITIVE)))
    assert sensitive.status_code == 422 and "#sensitive" in outcome_text(sensitive)
    expired = world.post(
        parameters(match_ids=["M-55678"], consent_body=consent(start="2025-01-01", end="2025-12-31"))
    )
    assert expired.status_code == 422 and "period" in outcome_text(expired)
    denied = consent()
    denied["provision"]["type"] = "deny"
    assert world.post(parameters(match_ids=["M-55678"], consent_body=denied)).status_code == 422
    assert world.admin_get("/fhir/Consent")["total"] == 0


def test_malformed_input_is_400(world: World) -> None:
    good = parameters(match_ids=["M-55678"])
    missing = copy.deepcopy(good)
    missing["parameter"] = [p for p in missing["parameter"] if p["name"] != "CoverageToMatch"]
    twice = copy.deepcopy(good)
    twice["parameter"].append(copy.deepcopy(good["parameter"][0]))
    wrong_type = copy.deepcopy(good)
    wrong_type["parameter"][0]["resource"] = {"resourceType": "Practitioner"}
    no_ids = parameters()  # CoverageToMatch with neither identifier nor subscriberId (hrex-cov-1)
    no_birth = parameters(match_ids=["M-55678"])
    del no_birth["parameter"][0]["resource"]["birthDate"]
    no_policy = parameters(match_ids=["M-55678"])
    no_policy["parameter"][3]["resource"]["policy"] = []
    no_recipient = parameters(match_ids=["M-55678"])
    no_recipient["parameter"][3]["resource"]["provision"]["actor"].pop()
    for body in (
        {"resourceType": "Patient"},
        {"resourceType": "Parameters", "parameter": "x"},
        missing,
        twice,
        wrong_type,
        no_ids,
        no_birth,
        no_policy,
        no_recipient,
    ):
        answer = world.post(body)
        assert answer.status_code == 400, (answer.status_code, answer.text)
        assert answer.json()["resourceType"] == "OperationOutcome"
    not_json = world.http.post(URL, content=b"{", headers={"Authorization": "Bearer new-payer", **FHIR_JSON})
    assert not_json.status_code == 400


def test_member_match_needs_patient_and_consent_scopes_and_is_not_for_patients(world: World) -> None:
    body = parameters(match_ids=["M-55678"])
    assert world.post(body, "no-consent-scope").status_code == 403
    assert world.post(body, "no-patient-scope").status_code == 403
    assert world.post(body, "patient").status_code == 403
    assert world.http.post(URL, json=body, headers=FHIR_JSON).status_code == 401
    statement = world.http.get("/fhir/metadata").json()
    (patient_entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Patient"]
    assert {
        "name": "member-match",
        "definition": "http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match",
    } in patient_entry["operation"]
    (eob,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "ExplanationOfBenefit"]
    assert eob["supportedProfile"] == [
        "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-priorauthorization"
    ]
    assert {"patient", "status", "created", "_lastUpdated"} <= {p["name"] for p in eob["searchParam"]}
    assert {
        "http://hl7.org/fhir/us/davinci-hrex/ImplementationGuide/hl7.fhir.us.davinci-hrex|1.0.0",
        "http://hl7.org/fhir/us/davinci-pdex/ImplementationGuide/hl7.fhir.us.davinci-pdex|2.0.0",
    } <= set(statement["implementationGuide"])


def test_the_consent_recipient_must_identify_the_requesting_payer(world: World) -> None:
    other = consent()
    other["provision"]["actor"][1]["reference"] = {"identifier": {"system": PAYER_ID, "value": "payer-c"}}
    refused = world.post(parameters(match_ids=["M-55678"], consent_body=other))
    assert refused.status_code == 422 and "Organization/payer-b" in outcome_text(refused)
    literal_other = consent()
    literal_other["provision"]["actor"][1]["reference"] = {"reference": "Organization/payer-c"}
    assert world.post(parameters(match_ids=["M-55678"], consent_body=literal_other)).status_code == 422
    assert world.admin_get("/fhir/Consent")["total"] == 0
    # an NPI the requesting payer's Organization carries identifies it too (HRex's example names an NPI)
    npi = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "0123456789"}
    organization = world.admin_get("/fhir/Organization/payer-b")
    organization["identifier"].append(npi)
    headers = {"Authorization": "Bearer admin", **FHIR_JSON}
    assert world.http.put("/fhir/Organization/payer-b", json=organization, headers=headers).status_code == 200
    by_npi = consent()
    by_npi["provision"]["actor"][1]["reference"] = {"identifier": npi}
    answer = world.post(parameters(match_ids=["M-55678"], consent_body=by_npi))
    assert answer.status_code == 200, answer.text
    (kept,) = [e["resource"] for e in world.admin_get("/fhir/Consent")["entry"]]
    recipient = kept["provision"]["actor"][1]["reference"]
    assert recipient == {"identifier": npi, "reference": "Organization/payer-b"}


def test_a_match_adds_the_member_to_the_requesting_payers_group_once(world: World) -> None:
    code = "https://priorgate.org/fhir/CodeSystem/export-purpose|payer-to-payer"
    search = f"/fhir/Group?managing-entity=Organization/payer-b&code={code}"
    world.http.app.state.priorgate_security_gate.verifier.principals["payer-b-reader"] = principal(  # type: ignore[attr-defined]
        "new-payer", {"payer-b"}, "system/Group.cruds"
    )
    reader = {"Authorization": "Bearer payer-b-reader"}
    assert world.http.get(search, headers=reader).json()["total"] == 0
    for _ in range(2):
        assert world.post(parameters(match_ids=["M-55678"])).status_code == 200
    found = world.http.get(search, headers=reader).json()
    assert found["total"] == 1
    group = found["entry"][0]["resource"]
    assert group["type"] == "person" and group["actual"] is True
    assert group["managingEntity"] == {"reference": "Organization/payer-b"}
    assert group["member"] == [{"entity": {"reference": f"Patient/{world.alice}"}}]
    # the Group is the new payer's, not written through the API by it (Groups stay an admin type there)
    refused = world.http.put(f"/fhir/Group/{group['id']}", json=group, headers={**reader, **FHIR_JSON})
    assert refused.status_code == 403


def test_without_authentication_the_organization_header_names_the_requesting_payer(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, demo_content=False, base_url=BASE, ig_path=tmp_path)
    app = create_app(settings, now=Clock(), security=SecuritySettings(auth_mode="off"))
    with TestClient(app, base_url=BASE) as http:
        assert http.post("/fhir/Patient", json=patient("M-55678"), headers=FHIR_JSON).status_code == 201
        payer_b = {"resourceType": "Organization", "identifier": [{"system": PAYER_ID, "value": "payer-b"}]}
        assert http.put("/fhir/Organization/payer-b", json=payer_b | {"id": "payer-b"}).status_code == 201
        body = parameters(match_ids=["M-55678"])
        assert http.post(URL, json=body, headers=FHIR_JSON).status_code == 200  # no requester: no Group
        assert http.get("/fhir/Group").json()["total"] == 0
        named = {"X-PriorGate-Organization": "payer-b", **FHIR_JSON}
        assert http.post(URL, json=body, headers=named).status_code == 200
        (entry,) = http.get("/fhir/Group?managing-entity=Organization/payer-b").json()["entry"]
        assert len(entry["resource"]["member"]) == 1
        other = {"X-PriorGate-Organization": "payer-c", **FHIR_JSON}
        assert http.post(URL, json=body, headers=other).status_code == 422  # the Consent names payer-b
