"""The DTR payer suite passes against the in-process app and fails a server that answers junk."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from conformance.framework import Outcome, Target, run_suite
from conformance.suites import dtr_payer
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    ig_path = os.environ.get("PRIORGATE_IG_PATH")
    if not ig_path:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    database = tmp_path_factory.mktemp("dtr") / "dtr.db"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        demo_content=False,
        ig_path=Path(ig_path),
        cds_development_mode=True,
    )
    with TestClient(
        create_app(settings, prepare_database=True, security=AUTH_OFF), base_url="http://testserver"
    ) as test_client:
        yield test_client


def test_dtr_payer_suite_passes(client: TestClient) -> None:
    results = run_suite(dtr_payer.SUITE, Target(client=client))
    failures = [
        f"{r.check}: {r.outcome.value}: {r.message}" for r in results if r.outcome is not Outcome.PASS
    ]
    assert len(results) == len(dtr_payer.SUITE.checks) == 14
    assert not failures, "\n".join(failures)


def test_junk_server_fails_every_check() -> None:
    def junk(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"resourceType": "Parameters", "parameter": []})

    with httpx.Client(transport=httpx.MockTransport(junk), base_url="http://junk") as client:
        results = run_suite(dtr_payer.SUITE, Target(client=client))
    assert {r.check: r.outcome for r in results} == {c.id: Outcome.FAIL for c in dtr_payer.SUITE.checks}


def test_empty_bundle_server_fails_content_checks() -> None:
    """A server that answers the right envelope with an empty Questionnaire fails the content checks."""
    package = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "PackageBundle",
                "resource": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": {"resourceType": "Questionnaire", "url": dtr_payer.CPAP}}],
                },
            }
        ],
    }

    def shallow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=package)

    with httpx.Client(transport=httpx.MockTransport(shallow), base_url="http://shallow") as client:
        results = {r.check: r for r in run_suite(dtr_payer.SUITE, Target(client=client))}
    assert results["package-static-response"].outcome is Outcome.PASS
    for name in ("package-draft-response", "package-static-libraries", "package-static-extensions"):
        assert results[name].outcome is Outcome.FAIL, results[name]


def test_every_cited_requirement_has_a_row() -> None:
    rows = list(csv.DictReader(io.StringIO(dtr_payer.requirements_csv())))
    ids = {row["id"] for row in rows}
    cited = {r for c in dtr_payer.SUITE.checks for r in c.requirements}
    assert cited == ids
    assert len(ids) == len(rows)


def _tampering(client: TestClient, tamper: str) -> httpx.MockTransport:
    """Forward to the real app, then break one rule in its answers."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method,
            request.url.path,
            params=request.url.params,
            content=request.content,
            headers={"Content-Type": request.headers.get("content-type", "application/json")},
        )
        body = answer.json()
        if tamper == "never-completes" and request.url.path.endswith("$next-question"):
            return httpx.Response(
                200,
                json={**body, "status": "in-progress", "item": []}
                if answer.is_success
                else json.loads(request.content),
            )
        if tamper == "drop-outcome" and isinstance(body, dict) and "parameter" in body:
            body["parameter"] = [p for p in body["parameter"] if p["name"] != "outcome"]
        for parameter in body.get("parameter", []) if isinstance(body, dict) else []:
            for entry in parameter.get("resource", {}).get("entry", []):
                resource = entry["resource"]
                if tamper == "cql-only" and resource["resourceType"] == "Library":
                    resource["content"] = [c for c in resource["content"] if c["contentType"] == "text/cql"]
                if tamper == "fhirpath" and resource["resourceType"] == "Questionnaire":
                    text = json.dumps(resource).replace('"text/cql"', '"text/fhirpath"')
                    entry["resource"] = json.loads(text)
                if tamper == "versioned-draft" and resource["resourceType"] == "QuestionnaireResponse":
                    resource["questionnaire"] = "https://example.org/Questionnaire/other|1"
        return httpx.Response(answer.status_code, json=body)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("tamper", "failing"),
    [
        ("never-completes", {"adaptive-next-question", "next-question-invalid"}),
        ("cql-only", {"package-static-libraries", "adaptive-package"}),
        ("fhirpath", {"package-static-extensions", "package-static-expressions"}),
        ("versioned-draft", {"package-draft-response"}),
        ("drop-outcome", {"package-requested-canonicals"}),
    ],
)
def test_the_suite_catches_a_broken_rule(client: TestClient, tamper: str, failing: set[str]) -> None:
    with httpx.Client(transport=_tampering(client, tamper), base_url="http://testserver") as proxied:
        results = run_suite(dtr_payer.SUITE, Target(client=proxied))
    failed = {r.check for r in results if r.outcome is Outcome.FAIL}
    assert failing <= failed, failed
    assert all(r.outcome is not Outcome.ERROR for r in results), results
