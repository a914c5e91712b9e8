"""The DTR operations, $validate and the CDS Hooks services as mounted by create_app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from questionnaires import BASE
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}
HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
COVERAGE = {
    "resourceType": "Coverage",
    "id": "cov-1",
    "status": "active",
    "beneficiary": {"reference": "Patient/pat-1"},
    "payor": [{"reference": "Organization/payer"}],
}

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    ig_path = os.environ.get("PRIORGATE_IG_PATH") or str(tmp_path / "no-igs")
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'ops.db'}",
        demo_content=False,
        ig_path=Path(ig_path),
        **overrides,
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(_settings(tmp_path, cds_development_mode=True), prepare_database=True, security=AUTH_OFF)
    with TestClient(app) as test_client:
        yield test_client


def _package_request(code: str) -> dict[str, Any]:
    order = {
        "resourceType": "DeviceRequest",
        "id": "ord-1",
        "status": "draft",
        "intent": "order",
        "codeCodeableConcept": {"coding": [{"system": HCPCS, "code": code}]},
        "subject": {"reference": "Patient/pat-1"},
    }
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "coverage", "resource": COVERAGE}, {"name": "order", "resource": order}],
    }


@pytest.mark.parametrize(
    ("path", "output_name"),
    [
        ("/fhir/Questionnaire/$questionnaire-package", "PackageBundle"),
        ("/dtr/2.0.1/Questionnaire/$questionnaire-package", "PackageBundle"),
        ("/dtr/2.2.0/Questionnaire/$questionnaire-package", "packagebundle"),
    ],
)
def test_questionnaire_package_per_version(client: TestClient, path: str, output_name: str) -> None:
    response = client.post(path, json=_package_request("E0601"), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    body = response.json()
    packages = [p["resource"] for p in body["parameter"] if p["name"] == output_name]
    assert len(packages) == 1
    first = packages[0]["entry"][0]["resource"]
    assert first["resourceType"] == "Questionnaire"
    assert first["url"] == f"{BASE}/Questionnaire/cpap"


def test_unknown_dtr_version_is_404(client: TestClient) -> None:
    response = client.post(
        "/dtr/9.9.9/Questionnaire/$questionnaire-package", json=_package_request("E0601"), headers=FHIR_JSON
    )
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_package_for_an_order_without_documentation_is_422(client: TestClient) -> None:
    response = client.post(
        "/fhir/Questionnaire/$questionnaire-package", json=_package_request("A9999"), headers=FHIR_JSON
    )
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"


def test_adaptive_questionnaire_first_step(client: TestClient) -> None:
    request = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/home-oxygen-adaptive|1.0.0"},
        ],
    }
    package = client.post("/fhir/Questionnaire/$questionnaire-package", json=request, headers=FHIR_JSON)
    assert package.status_code == 200, package.text
    draft = package.json()["parameter"][0]["resource"]["entry"][1]["resource"]
    assert draft["resourceType"] == "QuestionnaireResponse"
    step = client.post("/fhir/Questionnaire/$next-question", json=draft, headers=FHIR_JSON)
    assert step.status_code == 200, step.text
    answer = step.json()
    assert answer["resourceType"] == "QuestionnaireResponse"
    assert answer["contained"][0]["item"], "the first step asks at least one question"


def test_valueset_expand_and_missing_url(client: TestClient) -> None:
    url = f"{BASE}/ValueSet/sleep-study-types"
    expanded = client.get("/fhir/ValueSet/$expand", params={"url": url})
    assert expanded.status_code == 200, expanded.text
    assert expanded.json()["expansion"]["contains"]
    missing = client.get("/fhir/ValueSet/$expand")
    assert missing.status_code == 400
    assert missing.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "parameter", [None, True, "url", [{"name": ["url"], "valueUri": "x"}], [{"name": {"a": 1}}]]
)
def test_valueset_expand_post_with_malformed_parameters_is_400(client: TestClient, parameter: object) -> None:
    # Regression: a non-array parameter or an unhashable name was a 500.
    body = {"resourceType": "Parameters", "parameter": parameter}
    response = client.post("/fhir/ValueSet/$expand", json=body, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_log_questionnaire_errors_is_accepted(client: TestClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/cpap"},
            {
                "name": "operationOutcome",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "processing", "diagnostics": "CQL failed"}],
                },
            },
        ],
    }
    response = client.post("/fhir/Questionnaire/$log-questionnaire-errors", json=body, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    assert response.json()["issue"][0]["severity"] == "information"
    incomplete = {"resourceType": "Parameters", "parameter": body["parameter"][:1]}
    refused = client.post("/fhir/Questionnaire/$log-questionnaire-errors", json=incomplete, headers=FHIR_JSON)
    assert refused.status_code == 400


def test_operations_are_advertised(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    operations = {
        (resource["type"], op["name"])
        for resource in statement["rest"][0]["resource"]
        for op in resource.get("operation", [])
    }
    assert ("Questionnaire", "questionnaire-package") in operations
    assert ("ValueSet", "expand") in operations
    assert ("Patient", "validate") in operations


@pytest.mark.igs
def test_validate_reports_errors_with_paths(client: TestClient) -> None:
    if not os.environ.get("PRIORGATE_IG_PATH"):
        pytest.skip("PRIORGATE_IG_PATH is not set")
    good = client.post("/fhir/Patient/$validate", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert good.status_code == 200, good.text
    assert not [i for i in good.json()["issue"] if i["severity"] in ("error", "fatal")]
    bad = client.post(
        "/fhir/Patient/$validate", json={"resourceType": "Patient", "gender": "robot"}, headers=FHIR_JSON
    )
    assert bad.status_code == 200
    errors = [i for i in bad.json()["issue"] if i["severity"] == "error"]
    assert any("Patient.gender" in " ".join(i.get("expression", [])) for i in errors), errors


def test_validate_without_core_package_is_503(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'v.db'}",
        demo_content=False,
        ig_path=tmp_path / "empty",
        cds_development_mode=True,
    )
    with TestClient(create_app(settings, prepare_database=True, security=AUTH_OFF)) as client:
        response = client.post("/fhir/Patient/$validate", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert response.status_code == 503
    assert "hl7.fhir.r4.core" in response.text


def test_cds_discovery_lists_the_six_hooks(client: TestClient) -> None:
    discovery = client.get("/cds-services")
    assert discovery.status_code == 200
    hooks = {service["hook"] for service in discovery.json()["services"]}
    assert hooks == {
        "appointment-book",
        "encounter-start",
        "encounter-discharge",
        "order-dispatch",
        "order-select",
        "order-sign",
    }


def test_cds_hooks_refuse_calls_without_a_jwt_outside_development_mode(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path), prepare_database=True, security=AUTH_OFF)) as client:
        service_id = client.get("/cds-services").json()["services"][0]["id"]
        response = client.post(
            f"/cds-services/{service_id}",
            json={
                "hook": "order-sign",
                "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                "context": {},
            },
        )
    assert response.status_code == 401
