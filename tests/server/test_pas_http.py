"""PAS over HTTP with persistence: create_app on SQLite and PostgreSQL, the PAS conformance suite, the
reviewer API, replays, identifier conflicts and the Claim/ClaimResponse in /fhir."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from conformance.framework import Outcome, Target, run_suite
from conformance.suites import pas_server
from server.app import create_app
from server.security.access import AUDIT_TENANT
from server.security.config import SecuritySettings
from server.services import Services
from server.settings import Settings
from server.storage.schema import (
    pas_review,
    pas_submission,
    pas_submission_key,
    pas_submission_member,
    resource,
)

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    ig_path = os.environ.get("PRIORGATE_IG_PATH") or str(tmp_path / "no-igs")
    settings = Settings(
        database_url=database_url, demo_content=False, ig_path=Path(ig_path), cds_development_mode=True
    )
    with TestClient(create_app(settings, now=Clock(), security=AUTH_OFF)) as test_client:
        yield test_client


def _svc(client: TestClient) -> Services:
    svc = client.app.state.services  # type: ignore[attr-defined]
    assert isinstance(svc, Services)
    return svc


def _counts(client: TestClient) -> dict[str, int]:
    out: dict[str, int] = {}
    with _svc(client).engine.connect() as connection:
        for table in (pas_submission, pas_submission_key, pas_submission_member, pas_review, resource):
            # AuditEvents (their own tenant) record every call, replays included: not counted here
            count = select(func.count()).select_from(table).where(table.c.tenant != AUDIT_TENANT)
            out[table.name] = int(connection.execute(count).scalar_one())
    return out


def _submit(client: TestClient, bundle: dict[str, Any], version: str = "2.2.1") -> Any:
    return client.post(f"/pas/{version}/Claim/$submit", json=bundle, headers=FHIR_JSON)


def _claim_response(bundle: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "ClaimResponse"
    return first


def test_the_pas_conformance_suite_passes_against_the_app(client: TestClient) -> None:
    results = run_suite(pas_server.SUITE, Target(client=client))
    failed = [(r.check, r.message) for r in results if r.outcome in (Outcome.FAIL, Outcome.ERROR)]
    assert failed == []
    assert [r.check for r in results if r.outcome is not Outcome.PASS] == []  # subscriptions included


def test_a_pended_request_decided_by_a_reviewer_is_a_new_version_of_the_same_claim_response(
    client: TestClient,
) -> None:
    first = _submit(client, pas_server.request_bundle("PEND-1", ("72148", "97110")))
    assert first.status_code == 200
    pended = _claim_response(first.json())
    assert pended["outcome"] == "partial"
    queue = client.get("/pas/review").json()
    assert [q["pendedSequences"] for q in queue] == [[1]]
    review_id = queue[0]["id"]
    decision = {"reviewer": {"id": "rev-1"}, "decisions": [{"itemSequence": 1, "action": "approve"}]}
    answered = client.post(f"/pas/review/{review_id}/decision", json=decision)
    assert answered.status_code == 200, answered.text
    final = _claim_response(answered.json())
    assert final["id"] == pended["id"] and final["outcome"] == "complete"
    stored = client.get(f"/fhir/ClaimResponse/{final['id']}").json()
    assert stored["meta"]["versionId"] == "2" and stored["outcome"] == "complete"
    assert client.get("/pas/review").json() == []
    again = client.post(f"/pas/review/{review_id}/decision", json=decision)
    assert again.status_code == 409
    # a replay after the decision returns the current answer
    replay = _submit(client, pas_server.request_bundle("PEND-1", ("72148", "97110")))
    assert _claim_response(replay.json())["outcome"] == "complete"


def test_a_denial_needs_a_reason_code_and_text(client: TestClient) -> None:
    _submit(client, pas_server.request_bundle("DENY-1", ("72148",)))
    (item,) = client.get("/pas/review").json()
    bare = {"reviewer": {"id": "rev-1"}, "decisions": [{"itemSequence": 1, "action": "deny"}]}
    refused = client.post(f"/pas/review/{item['id']}/decision", json=bare)
    assert refused.status_code == 400
    assert refused.json()["resourceType"] == "OperationOutcome"
    reasoned = {
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
    denied = client.post(f"/pas/review/{item['id']}/decision", json=reasoned)
    assert denied.status_code == 200, denied.text
    assert "A3" in denied.text
    assert client.post("/pas/review/nope/decision", json=reasoned).status_code == 404


def test_a_replay_creates_nothing(client: TestClient) -> None:
    bundle = pas_server.request_bundle("REPLAY-1", ("72148", "97110"))
    first = _submit(client, bundle).json()
    before = _counts(client)
    assert before["pas_submission"] == 1 and before["pas_review"] == 1
    assert before["pas_submission_member"] >= 1  # the $inquire key: member and patient identifiers
    again = _submit(client, {**bundle, "timestamp": "2026-05-01T10:05:00Z"}).json()
    assert _claim_response(again)["id"] == _claim_response(first)["id"]
    assert _counts(client) == before


def test_a_reused_identifier_for_other_content_is_409(client: TestClient) -> None:
    assert _submit(client, pas_server.request_bundle("X-1", ("72148",))).status_code == 200
    before = _counts(client)
    conflict = _submit(client, pas_server.request_bundle("X-1", ("70551",)))
    assert conflict.status_code == 409
    assert conflict.json()["resourceType"] == "OperationOutcome"
    assert _counts(client) == before


def test_versions_and_mounts(client: TestClient) -> None:
    unknown = _submit(client, pas_server.request_bundle("V-1"), version="9.9.9")
    assert unknown.status_code == 404 and unknown.json()["resourceType"] == "OperationOutcome"
    default = client.post("/fhir/Claim/$submit", json=pas_server.request_bundle("V-2"), headers=FHIR_JSON)
    assert default.status_code == 200
    assert default.json().get("identifier")  # answered as 2.2.1
    assert (
        client.post("/fhir/Claim/$inquire", json={"resourceType": "Bundle"}, headers=FHIR_JSON).status_code
        == 400
    )
    claims = client.get("/fhir/Claim").json()
    assert claims["total"] if "total" in claims else claims.get("entry")
    metadata = client.get("/fhir/metadata").json()
    claim = next(r for r in metadata["rest"][0]["resource"] if r["type"] == "Claim")
    assert {o["name"] for o in claim["operation"]} >= {"submit", "inquire"}


def _second_app(database_url: str, tmp_path: Path) -> TestClient:
    settings = Settings(database_url=database_url, demo_content=False, ig_path=tmp_path / "no-igs")
    return TestClient(create_app(settings, now=Clock(), security=AUTH_OFF))


def test_another_process_replays_and_reviews_what_one_stored(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    bundle = pas_server.request_bundle("XPROC-1", ("72148", "97110"))
    first = _claim_response(_submit(client, bundle).json())
    with _second_app(database_url, tmp_path) as other:
        before = _counts(other)
        replay = _claim_response(_submit(other, bundle).json())
        assert replay["id"] == first["id"] and _counts(other) == before
        (item,) = other.get("/pas/review").json()
        decision = {"reviewer": {"id": "rev-2"}, "decisions": [{"itemSequence": 1, "action": "approve"}]}
        decided = other.post(f"/pas/review/{item['id']}/decision", json=decision)
        assert _claim_response(decided.json())["outcome"] == "complete"
    inquiry = copy.deepcopy(bundle)
    inquiry["meta"] = {"profile": [PAS + "profile-pas-inquiry-request-bundle"]}
    inquiry["entry"][0]["resource"]["meta"] = {"profile": [PAS + "profile-claim-inquiry"]}
    inquiry["entry"][0]["resource"]["identifier"][0]["value"] = "XPROC-1-Q"
    found = client.post("/pas/2.2.1/Claim/$inquire", json=inquiry, headers=FHIR_JSON).json()
    (returned,) = [p["resource"] for p in found["parameter"] if p["name"] == "return"]
    assert _claim_response(returned)["outcome"] == "complete"


def test_a_concurrent_first_use_of_an_identifier_becomes_a_replay(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = pas_server.request_bundle("RACE-1", ("97110",))
    first = _claim_response(_submit(client, bundle).json())
    store = _svc(client).pas.store
    real_find = store.find
    calls: list[int] = []

    def stale_once(*args: Any) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else real_find(*args)  # the first lookup ran before the other commit

    monkeypatch.setattr(store, "find", stale_once)
    before = _counts(client)
    again = _submit(client, bundle)
    assert again.status_code == 200 and _claim_response(again.json())["id"] == first["id"]
    assert len(calls) == 2 and _counts(client) == before
