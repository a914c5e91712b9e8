"""CRD → DTR through the real app: the coverage-assertion-id a hook hands out selects the DTR package."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from questionnaires import BASE
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
EXT_COVERAGE_INFORMATION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
PATIENT = {"resourceType": "Patient", "id": "pat1", "gender": "female", "birthDate": "1960-04-12"}
COVERAGE = {
    "resourceType": "Coverage",
    "id": "cov1",
    "status": "active",
    "beneficiary": {"reference": "Patient/pat1"},
    "payor": [
        {
            "identifier": {"system": "https://priorgate.org/fhir/sid/payer-id", "value": "PGDEMO"},
            "display": "PriorGate Demo Health Plan",
        }
    ],
}

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


def _device_request(code: str) -> dict[str, Any]:
    return {
        "resourceType": "DeviceRequest",
        "id": "dr1",
        "status": "draft",
        "intent": "order",
        "codeCodeableConcept": {"coding": [{"system": HCPCS, "code": code}]},
        "subject": {"reference": "Patient/pat1"},
        "insurance": [{"reference": "Coverage/cov1"}],
    }


def _order_sign(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/prac1",
            "patientId": "pat1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]},
        },
        "prefetch": {
            "patient": PATIENT,
            "coverage": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": COVERAGE}]},
        },
        "extension": {"davinci-crd.requestedVersion": "2.2"},
    }


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'flow.db'}",
        demo_content=False,
        ig_path=tmp_path / "no-igs",
        cds_development_mode=True,
    )
    with TestClient(create_app(settings, prepare_database=True, security=AUTH_OFF)) as test_client:
        yield test_client


def _assertion_id(response: dict[str, Any]) -> str:
    for action in response.get("systemActions", []):
        for extension in action.get("resource", {}).get("extension", []):
            if extension["url"] == EXT_COVERAGE_INFORMATION:
                for sub in extension["extension"]:
                    if sub["url"] == "coverage-assertion-id":
                        return str(sub["valueString"])
    raise AssertionError(f"no coverage-assertion-id in {response}")


def test_coverage_assertion_selects_the_questionnaire_package(client: TestClient) -> None:
    services = client.get("/cds-services").json()["services"]
    service_id = next(s["id"] for s in services if s["hook"] == "order-sign")
    hooked = client.post(f"/cds-services/{service_id}", json=_order_sign(_device_request("E0601")))
    assert hooked.status_code == 200, hooked.text
    assertion_id = _assertion_id(hooked.json())

    stored = client.app.state.services.assertions.find(assertion_id)  # type: ignore[attr-defined]
    assert stored is not None
    assert f"{BASE}/Questionnaire/cpap|1.0.0" in stored.questionnaires

    # DTR launched from CRD: coverage and context only, no order (DTR spec-107).
    inputs = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "context", "valueString": assertion_id},
        ],
    }
    package = client.post(
        "/fhir/Questionnaire/$questionnaire-package",
        json=inputs,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert package.status_code == 200, package.text
    bundles = [p["resource"] for p in package.json()["parameter"] if p["name"] == "PackageBundle"]
    assert [b["entry"][0]["resource"]["url"] for b in bundles] == [f"{BASE}/Questionnaire/cpap"]


def test_unknown_context_without_orders_is_unprocessable(client: TestClient) -> None:
    inputs = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "context", "valueString": "no-such-assertion"},
        ],
    }
    response = client.post(
        "/fhir/Questionnaire/$questionnaire-package",
        json=inputs,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"
