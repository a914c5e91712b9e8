"""Patient Access on SQLite and PostgreSQL: every recorded PAS result stores the member's PDex
prior-authorization ExplanationOfBenefit (status, items, reasons, dates), and patient-context tokens
read only their own patient's ExplanationOfBenefits, Patient and Consents, audited as BALP Patient*
events. Tokens are stand-ins (a static verifier) for whichever authorization server issued them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conformance.suites import pas_server
from server.app import create_app
from server.security import install_security
from server.security.config import SecuritySettings
from server.security.principal import Principal, kind_of
from server.security.tokens import InvalidTokenError, lenient_scopes
from server.services import Services
from server.settings import Settings

BASE = "http://testserver"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
MEMBER = "https://priorgate.org/fhir/sid/member"
PDEX_PA = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-priorauthorization"
REVIEW_ACTION = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewAction"
PATIENT_SCOPES = "patient/ExplanationOfBenefit.rs patient/Patient.rs patient/Consent.crus"


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


def principal(
    client_id: str, tenants: set[str], scopes: str, roles: set[str] = frozenset(), **kw: Any
) -> Principal:  # type: ignore[assignment]
    parsed = lenient_scopes(scopes)
    return Principal(client_id, frozenset(tenants), parsed, frozenset(roles), kind_of(parsed), **kw)


@dataclass
class StaticVerifier:
    """Bearer token text -> Principal (the token's issuer is not what these tests are about)."""

    principals: dict[str, Principal]

    async def verify(self, token: str) -> Principal:
        found = self.principals.get(token)
        if found is None:
            raise InvalidTokenError("unknown token")
        return found


@dataclass
class World:
    http: TestClient
    verifier: StaticVerifier
    alice: str
    bob: str
    clock: Clock

    def as_(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def patient(self, name: str, patient_id: str, scopes: str = PATIENT_SCOPES) -> dict[str, str]:
        self.verifier.principals[name] = principal("member-app", {"members"}, scopes, patient=patient_id)
        return self.as_(name)

    @property
    def services(self) -> Services:
        svc = self.http.app.state.services  # type: ignore[attr-defined]
        assert isinstance(svc, Services)
        return svc


def member_patient(value: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MEMBER, "value": value}],
        "name": [{"family": family, "given": ["Pat"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    ig_path = os.environ.get("PRIORGATE_IG_PATH") or str(tmp_path / "no-igs")
    settings = Settings(database_url=database_url, demo_content=False, base_url=BASE, ig_path=Path(ig_path))
    security = SecuritySettings(
        auth_mode="local",
        security_dir=tmp_path / "sec",
        clients_file=tmp_path / "none.json",
        demo_clients=False,
    )
    (tmp_path / "none.json").write_text('{"clients": []}')
    clock = Clock()
    app = create_app(settings, now=clock, security=security)
    verifier = StaticVerifier(
        {
            "admin": principal("admin", {"payer"}, "system/*.cruds", {"admin"}),
            "clinic": principal("clinic-a", {"org-a"}, "system/Claim.crs system/ClaimResponse.rs"),
            "reviewer": principal("reviewer", {"payer"}, "system/*.rs system/ClaimResponse.cu", {"reviewer"}),
            "auditor": principal("auditor", {"payer"}, "system/AuditEvent.rs", {"auditor"}),
        }
    )
    install_security(app, verifier)
    with TestClient(app, base_url=BASE) as http:
        admin = {"Authorization": "Bearer admin", "X-PriorGate-Organization": "members", **FHIR_JSON}
        ids = []
        for value, family in (("M-ALICE", "Conformance"), ("M-BOB", "Other")):
            created = http.post("/fhir/Patient", json=member_patient(value, family), headers=admin)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        yield World(http, verifier, ids[0], ids[1], clock)


def submit(world: World, trace: str, codes: tuple[str, ...] = ("72148", "97110")) -> dict[str, Any]:
    answer = world.http.post(
        "/fhir/Claim/$submit",
        json=pas_server.request_bundle(trace, codes),
        headers={**world.as_("clinic"), **FHIR_JSON},
    )
    assert answer.status_code == 200, answer.text
    first: dict[str, Any] = answer.json()["entry"][0]["resource"]
    return first


def entries(bundle: Any) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry") or () if e.get("search", {}).get("mode") != "include"]


def review_action(item: dict[str, Any]) -> dict[str, Any]:
    (adjudication,) = item["adjudication"]
    (ext,) = [e for e in adjudication["extension"] if e["url"] == REVIEW_ACTION]
    parts: dict[str, Any] = {"allowed": adjudication["value"]}
    for part in ext["extension"]:
        key = "Code" if part["url"].endswith("extension-reviewActionCode") else part["url"]
        value = part.get("valueString") or part["valueCodeableConcept"]["coding"][0]["code"]
        parts.setdefault(key, []).append(value)
    return parts


def test_a_pas_result_stores_the_members_prior_authorization_eob_and_each_decision_updates_it(
    world: World,
) -> None:
    response = submit(world, "ALICE")  # member id M-ALICE: item 1 (72148) pends, item 2 (97110) approved
    alice = world.patient("alice", world.alice)
    found = world.http.get("/fhir/ExplanationOfBenefit", headers=alice)
    assert found.status_code == 200, found.text
    (eob,) = entries(found.json())
    assert eob["meta"]["profile"] == [PDEX_PA + "|2.0.0"] and eob["use"] == "preauthorization"
    assert eob["patient"] == {"reference": f"Patient/{world.alice}"}
    assert eob["status"] == "active" and eob["outcome"] == response["outcome"]
    assert eob["claimResponse"] == {"reference": f"ClaimResponse/{response['id']}"}
    first, second = eob["item"]
    assert review_action(first)["Code"] == ["A4"] and review_action(first)["allowed"] == 0
    assert review_action(second)["Code"] == ["A1"] and review_action(second)["allowed"] == 1
    assert (
        second["productOrService"]["coding"][0]["code"] == "97110" and second["servicedDate"] == "2026-06-01"
    )
    assert any(e["url"].endswith("extension-itemPreAuthIssueDate") for e in second["extension"])
    # a reviewer denies the pended item: the same ExplanationOfBenefit, a new version, with the reason
    (item,) = world.http.get("/pas/review", headers=world.as_("reviewer")).json()
    decision = {
        "reviewer": {"id": "rev-1"},
        "decisions": [
            {
                "itemSequence": 1,
                "action": "deny",
                "reasonCode": {"system": "https://codesystem.x12.org/005010/886", "code": "AA"},
                "reasonText": "Conservative therapy not documented",
            }
        ],
    }
    decided = world.http.post(
        f"/pas/review/{item['id']}/decision", json=decision, headers=world.as_("reviewer")
    )
    assert decided.status_code == 200, decided.text
    again = world.http.get(f"/fhir/ExplanationOfBenefit/{eob['id']}", headers=alice)
    assert again.status_code == 200
    updated = again.json()
    assert updated["meta"]["versionId"] == "2" and updated["outcome"] == "complete"
    denied = review_action(updated["item"][0])
    assert denied["Code"] == ["A3"] and denied["reasonCode"] == ["AA"] and denied["allowed"] == 0
    issued = [
        e["valueDate"] for e in updated["item"][0]["extension"] if e["url"].endswith("itemPreAuthIssueDate")
    ]
    assert issued == ["2026-03-02"]  # the date it was denied
    assert updated["processNote"] == [
        {"number": 1, "type": "display", "text": "Conservative therapy not documented"}
    ]
    # kept: more than a year after the last status change it is still there, with its history
    world.clock.current += timedelta(days=400)
    later = world.http.get(f"/fhir/ExplanationOfBenefit/{eob['id']}", headers=alice)
    assert later.status_code == 200 and later.json()["meta"]["versionId"] == "2"
    history = world.http.get(f"/fhir/ExplanationOfBenefit/{eob['id']}/_history", headers=world.as_("admin"))
    assert history.json()["total"] == 2


def test_a_patient_searches_by_status_created_and_last_updated_and_never_sees_another_patient(
    world: World,
) -> None:
    submit(world, "ALICE")
    submit(world, "BOB")
    alice, bob = world.patient("alice", world.alice), world.patient("bob", world.bob)
    own = entries(world.http.get("/fhir/ExplanationOfBenefit", headers=alice).json())
    assert [e["patient"]["reference"] for e in own] == [f"Patient/{world.alice}"]
    for query in (
        f"patient=Patient/{world.alice}&status=active",
        "created=ge2026-05-01&created=le2026-05-02",
        "_lastUpdated=ge2026-03-01",
    ):
        answer = world.http.get(f"/fhir/ExplanationOfBenefit?{query}", headers=alice)
        assert [e["id"] for e in entries(answer.json())] == [own[0]["id"]], query
    for query in ("status=cancelled", "created=lt2026-05-01"):
        assert entries(world.http.get(f"/fhir/ExplanationOfBenefit?{query}", headers=alice).json()) == []
    # another patient's id: an empty result; another patient's EOB by id: 404, as if absent
    other = world.http.get(f"/fhir/ExplanationOfBenefit?patient=Patient/{world.bob}", headers=alice)
    assert other.status_code == 200 and entries(other.json()) == []
    bobs = entries(world.http.get("/fhir/ExplanationOfBenefit", headers=bob).json())
    assert len(bobs) == 1 and bobs[0]["id"] != own[0]["id"]
    assert world.http.get(f"/fhir/ExplanationOfBenefit/{bobs[0]['id']}", headers=alice).status_code == 404
    # reaching other resources through the search is refused
    include = world.http.get("/fhir/ExplanationOfBenefit?_include=ExplanationOfBenefit:claim", headers=alice)
    assert include.status_code == 400
    # v1 scopes work too; a token without the scope is refused
    v1 = world.patient("alice-v1", world.alice, "patient/ExplanationOfBenefit.read")
    assert len(entries(world.http.get("/fhir/ExplanationOfBenefit", headers=v1).json())) == 1
    none = world.patient("alice-none", world.alice, "patient/Patient.rs")
    assert world.http.get("/fhir/ExplanationOfBenefit", headers=none).status_code == 403
    # staff keep the tenant rule: the submitting clinic does not read members' EOBs, an admin does
    assert entries(world.http.get("/fhir/ExplanationOfBenefit", headers=world.as_("clinic")).json()) == []
    assert len(entries(world.http.get("/fhir/ExplanationOfBenefit", headers=world.as_("admin")).json())) == 2


def test_a_patient_reads_its_own_patient_only_and_nothing_else(world: World) -> None:
    alice = world.patient("alice", world.alice, PATIENT_SCOPES + " patient/Claim.rs")
    own = world.http.get(f"/fhir/Patient/{world.alice}", headers=alice)
    assert own.status_code == 200 and own.json()["id"] == world.alice
    missing = world.http.get(f"/fhir/Patient/{world.bob}", headers=alice)  # another patient: as if absent
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    search = entries(world.http.get("/fhir/Patient", headers=alice).json())
    assert [p["id"] for p in search] == [world.alice]
    assert entries(world.http.get(f"/fhir/Patient?_id={world.bob}", headers=alice).json()) == []
    for method, path in (
        ("GET", "/fhir/Claim"),  # a type outside patient access, even with a scope for it
        ("GET", f"/fhir/Patient/{world.alice}/_history"),
        ("DELETE", f"/fhir/Patient/{world.alice}"),
        ("POST", "/fhir/Patient/$member-match"),
        ("POST", "/fhir"),
    ):
        assert (
            world.http.request(method, path, headers={**alice, **FHIR_JSON}, content=b"{}").status_code == 403
        )
    # published content (a payer Questionnaire) is readable, as for every caller
    admin = {"Authorization": "Bearer admin", **FHIR_JSON}
    questionnaire = {"resourceType": "Questionnaire", "status": "active", "url": "http://payer.example/Q/1"}
    published = world.http.post("/fhir/Questionnaire", json=questionnaire, headers=admin)
    assert published.status_code == 201, published.text
    listed = world.http.get(
        "/fhir/Questionnaire?status=active", headers=world.patient("q", world.alice, "patient/*.rs")
    )
    assert [q["id"] for q in entries(listed.json())] == [published.json()["id"]]
    one = world.http.get(f"/fhir/Questionnaire/{published.json()['id']}", headers=world.as_("q"))
    assert one.status_code == 200
    assert world.http.get("/pas/review", headers=alice).status_code == 403  # not the review queue either
    # a patient-context token without a patient claim reaches nothing
    world.verifier.principals["nobody"] = principal("member-app", {"members"}, PATIENT_SCOPES)
    assert world.http.get("/fhir/ExplanationOfBenefit", headers=world.as_("nobody")).status_code == 403


def consent(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
    }


def test_a_patient_writes_only_consents_about_itself_and_staff_write_any(world: World) -> None:
    alice = {**world.patient("alice", world.alice), **FHIR_JSON}
    mine = world.http.post("/fhir/Consent", json=consent(world.alice), headers=alice)
    assert mine.status_code == 201, mine.text
    theirs = world.http.post("/fhir/Consent", json=consent(world.bob), headers=alice)
    assert theirs.status_code == 403
    mine_id = mine.json()["id"]
    moved = world.http.put(
        f"/fhir/Consent/{mine_id}", json={**consent(world.bob), "id": mine_id}, headers=alice
    )
    assert moved.status_code == 403
    revoked = {**consent(world.alice), "id": mine_id, "status": "inactive"}
    assert world.http.put(f"/fhir/Consent/{mine_id}", json=revoked, headers=alice).status_code == 200
    # an admin records a Consent for Bob in the members' tenant; Alice can neither read nor overwrite it
    admin = {"Authorization": "Bearer admin", "X-PriorGate-Organization": "members", **FHIR_JSON}
    bobs = world.http.post("/fhir/Consent", json=consent(world.bob), headers=admin)
    assert bobs.status_code == 201
    bobs_id = bobs.json()["id"]
    assert world.http.get(f"/fhir/Consent/{bobs_id}", headers=alice).status_code == 404
    takeover = world.http.put(
        f"/fhir/Consent/{bobs_id}", json={**consent(world.alice), "id": bobs_id}, headers=alice
    )
    assert takeover.status_code == 404
    assert [c["id"] for c in entries(world.http.get("/fhir/Consent", headers=alice).json())] == [mine_id]


def test_patient_reads_are_audited_with_the_patient(world: World) -> None:
    submit(world, "ALICE")
    alice = world.patient("alice", world.alice)
    assert world.http.get("/fhir/ExplanationOfBenefit?status=active", headers=alice).status_code == 200
    assert world.http.get(f"/fhir/Patient/{world.alice}", headers=alice).status_code == 200
    events = entries(world.http.get("/fhir/AuditEvent?_count=100", headers=world.as_("auditor")).json())
    patient_events = [
        e
        for e in events
        if any(x.get("what", {}).get("reference") == f"Patient/{world.alice}" for x in e.get("entity", ()))
        and e["agent"][0]["who"]["identifier"]["value"] == "member-app"
    ]
    profiles = sorted(e["meta"]["profile"][0].rsplit(".", 1)[-1] for e in patient_events)
    assert profiles == ["PatientQuery", "PatientRead"]


def test_without_a_stored_member_no_eob_is_stored(world: World) -> None:
    submit(world, "NOBODY")  # member id M-NOBODY names no stored Patient
    admin = world.as_("admin")
    assert entries(world.http.get("/fhir/ExplanationOfBenefit", headers=admin).json()) == []
    submit(world, "ALICE")
    assert len(entries(world.http.get("/fhir/ExplanationOfBenefit", headers=admin).json())) == 1
