"""The CRD server suite: green against the in-process app, red against a server answering junk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from conformance.framework import Outcome, Suite, Target, run_suite
from conformance.suites import crd_server
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


def _app_client(tmp_path: Path, *, development_mode: bool) -> TestClient:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'crd.db'}",
        demo_content=False,
        ig_path=tmp_path / "no-igs",
        cds_development_mode=development_mode,
    )
    return TestClient(
        create_app(settings, prepare_database=True, security=AUTH_OFF), base_url="http://testserver"
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _app_client(tmp_path, development_mode=True) as test_client:
        yield test_client


def test_the_crd_suite_passes_against_the_app(client: TestClient) -> None:
    results = run_suite(crd_server.SUITE, Target(client=client))
    failed = [f"{r.check}: {r.outcome.value}: {r.message}" for r in results if r.outcome is not Outcome.PASS]
    assert failed == [
        "crd-unsigned-jwt-refused: skip: the server accepts anonymous calls "
        "(CDS development mode); nothing to refuse"
    ], "\n".join(failed)
    assert len(results) == len(crd_server.SUITE.checks) == 25


def test_an_unsigned_jwt_is_refused_outside_development_mode(tmp_path: Path) -> None:
    jwt_check = next(c for c in crd_server.SUITE.checks if c.id == "crd-unsigned-jwt-refused")
    with _app_client(tmp_path, development_mode=False) as test_client:
        [result] = run_suite(Suite("jwt", "jwt", (jwt_check,)), Target(client=test_client))
    assert result.outcome is Outcome.PASS, result.message


def _junk(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/cds-services":
        services = [{"hook": hook, "id": f"{hook}-x"} for hook in crd_server.HOOKS]
        return httpx.Response(200, json={"services": services})
    return httpx.Response(200, json={"cards": [{"summary": "ok"}], "resourceType": "Junk"})


def test_the_suite_fails_a_server_answering_junk() -> None:
    with httpx.Client(transport=httpx.MockTransport(_junk), base_url="http://junk.test") as client:
        results = run_suite(crd_server.SUITE, Target(client=client))
    outcomes = {r.check: r.outcome for r in results}
    passed = sorted(check for check, outcome in outcomes.items() if outcome is Outcome.PASS)
    # Calls answer 200 with JSON and the suite's own request bodies are fine; everything else fails.
    assert passed == sorted(
        ["crd_discovery_endpoint_test", "crd_service_request_required_fields_validation"]
        + [f"crd_service_call_test-{hook}" for hook in crd_server.HOOKS]
    )
    assert outcomes["crd-unsigned-jwt-refused"] is Outcome.SKIP
    assert all(o is not Outcome.ERROR for o in outcomes.values()), results


def test_payloads_are_the_six_hooks() -> None:
    names = sorted(p.stem for p in crd_server.PAYLOADS.glob("*.json"))
    assert names == sorted(crd_server.HOOKS)
    for hook in crd_server.HOOKS:
        body = json.loads((crd_server.PAYLOADS / f"{hook}.json").read_text())
        assert body["hook"] == hook
        assert "fhirAuthorization" not in body  # data travels as prefetch; no token to hand out


def test_requirements_cover_every_cited_id() -> None:
    defined = {row[0] for row in crd_server.REQUIREMENTS}
    cited = {req for item in crd_server.SUITE.checks for req in item.requirements}
    assert cited == defined
    assert crd_server.requirements_csv().startswith("id,ig,version,url,text,actor\n")


def _tampering(app: TestClient, tamper: str) -> httpx.MockTransport:
    """The real app behind a proxy that breaks one rule in every hook response."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = app.request(
            request.method, request.url.path, content=request.content, headers=request.headers
        )
        body = answer.json()
        if request.method == "POST" and answer.status_code == 200:
            for action in body.get("systemActions", []):
                resource = action["resource"]
                if tamper == "changed-order":
                    resource["status"] = "active"
                for extension in resource.get("extension", []):
                    if tamper == "no-covered":
                        extension["extension"] = [e for e in extension["extension"] if e["url"] != "covered"]
                    if tamper == "two-assertion-ids":
                        extension["extension"].append({"url": "coverage-assertion-id", "valueString": "x"})
            for card in body.get("cards", []):
                if tamper == "long-summary":
                    card["summary"] = "x" * 140
        return httpx.Response(answer.status_code, json=body)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("tamper", "failing"),
    [
        ("changed-order", "crd_coverage_info_system_action_validation"),
        ("two-assertion-ids", "crd_coverage_info_system_action_validation"),
        ("no-covered", "crd_coverage_info_system_action_validation"),
        ("long-summary", "crd_service_response_validation"),
    ],
)
def test_the_suite_catches_a_broken_rule(client: TestClient, tamper: str, failing: str) -> None:
    with httpx.Client(transport=_tampering(client, tamper), base_url="http://testserver") as proxied:
        results = run_suite(crd_server.SUITE, Target(client=proxied))
    failed = {r.check for r in results if r.outcome is Outcome.FAIL}
    # The primary hooks answer cards and coverage information for the demo bodies, so each breaks.
    assert {f"{failing}-{hook}" for hook in crd_server.PRIMARY_HOOKS} <= failed, failed
    assert all(r.outcome is not Outcome.ERROR for r in results)
