"""CRD -> DTR -> PAS through the real app: the coverage-assertion-id a hook hands out selects the DTR
package, the completed QuestionnaireResponse is stored at the payer, and Claim/$submit finds it (by
coverage-assertion-id on the requested order, or by the order in its qr-context) and decides with it.
SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conformance.suites import pas_server
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

from .test_crd_to_dtr import COVERAGE, EXT_COVERAGE_INFORMATION, HCPCS, _assertion_id, _order_sign

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
QR_CONTEXT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context"
EHR = "https://ehr.example.org/fhir"
Json = dict[str, Any]

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url, demo_content=False, ig_path=tmp_path / "no-igs", cds_development_mode=True
    )
    with TestClient(create_app(settings, security=AUTH_OFF)) as test_client:
        yield test_client


def device_request(order_id: str) -> Json:
    return {
        "resourceType": "DeviceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "codeCodeableConcept": {"coding": [{"system": HCPCS, "code": "E0601"}]},
        "subject": {"reference": "Patient/pat1"},
        "insurance": [{"reference": "Coverage/cov1"}],
    }


def crd_then_dtr(client: TestClient, order_id: str) -> tuple[str, Json]:
    """order-sign for a CPAP order, then the DTR package its assertion selects: (assertion id, draft QR)."""
    services = client.get("/cds-services").json()["services"]
    service_id = next(s["id"] for s in services if s["hook"] == "order-sign")
    hooked = client.post(f"/cds-services/{service_id}", json=_order_sign(device_request(order_id)))
    assert hooked.status_code == 200, hooked.text
    assertion_id = _assertion_id(hooked.json())
    inputs = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "order", "resource": device_request(order_id)},
            {"name": "context", "valueString": assertion_id},
        ],
    }
    package = client.post("/fhir/Questionnaire/$questionnaire-package", json=inputs, headers=FHIR_JSON)
    assert package.status_code == 200, package.text
    (bundle,) = [p["resource"] for p in package.json()["parameter"] if p["name"] == "PackageBundle"]
    (draft,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    return assertion_id, draft


def draft_assertion_ids(draft: Json) -> list[str]:
    return [
        part["valueString"]
        for e in draft.get("extension", [])
        if e["url"] == EXT_COVERAGE_INFORMATION
        for part in e["extension"]
        if part["url"] == "coverage-assertion-id"
    ]


def completed(draft: Json, order_id: str, *, linked: bool = True, status: str = "completed") -> Json:
    """The DTR app's finished response: the draft's CRD coverage-information kept (DTR spec-33) unless
    ``linked`` is off, and a ``qr-context`` for the order."""
    qr = copy.deepcopy(draft)
    qr.pop("id", None)
    qr["status"] = status
    qr["extension"] = [
        e
        for e in qr.get("extension", [])
        if e["url"] != QR_CONTEXT and (linked or e["url"] != EXT_COVERAGE_INFORMATION)
    ]
    qr["extension"].append({"url": QR_CONTEXT, "valueReference": {"reference": f"DeviceRequest/{order_id}"}})
    return qr


def claim_bundle(
    trace: str, order_id: str, assertion_id: str | None, *, order_url: str | None = None
) -> Json:
    """A PAS request for the CPAP order; the order carries CRD's coverage-information when given."""
    bundle = pas_server.request_bundle(trace, ("E0601",))
    claim = bundle["entry"][0]["resource"]
    item = claim["item"][0]
    item["productOrService"] = {"coding": [{"system": HCPCS, "code": "E0601"}]}
    order = device_request(order_id)
    if assertion_id is not None:
        order["extension"] = [
            {
                "url": EXT_COVERAGE_INFORMATION,
                "extension": [
                    {"url": "covered", "valueCode": "covered"},
                    {"url": "pa-needed", "valueCode": "auth-needed"},
                    {"url": "coverage-assertion-id", "valueString": assertion_id},
                ],
            }
        ]
    full_url = order_url or f"urn:uuid:{uuid.uuid4()}"
    bundle["entry"].append({"fullUrl": full_url, "resource": order})
    item.setdefault("extension", []).append(
        {"url": PAS + "extension-requestedService", "valueReference": {"reference": full_url}}
    )
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Organization" and resource["name"] == "Conformance Payer":
            resource["identifier"] = [
                {"system": "https://priorgate.org/fhir/sid/payer-id", "value": "PGDEMO"}
            ]
    return bundle


def submit(client: TestClient, bundle: Json) -> Json:
    answer = client.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    response: Json = answer.json()["entry"][0]["resource"]
    assert response["resourceType"] == "ClaimResponse"
    return response


def action(response: Json) -> str:
    (item,) = response["item"]
    review = item["adjudication"][0]["extension"][0]
    code = next(e for e in review["extension"] if e["url"].endswith("extension-reviewActionCode"))
    return str(code["valueCodeableConcept"]["coding"][0]["code"])


def notes(response: Json) -> str:
    return " ".join(n["text"] for n in response.get("processNote", []))


def test_without_documentation_the_cpap_request_pends(client: TestClient) -> None:
    assertion_id, _ = crd_then_dtr(client, "dr-none")
    response = submit(client, claim_bundle("DTR-NONE", "dr-none", assertion_id))
    assert action(response) == "A4"
    assert "Documentation required (clinical); none linked" in notes(response)


def test_a_stored_completed_response_found_by_coverage_assertion_id_approves(client: TestClient) -> None:
    assertion_id, draft = crd_then_dtr(client, "dr1")
    assert draft_assertion_ids(draft) == [assertion_id]  # the package's draft carries CRD's decision
    stored = client.post("/fhir/QuestionnaireResponse", json=completed(draft, "dr1"), headers=FHIR_JSON)
    assert stored.status_code == 201, stored.text
    found = client.get("/fhir/QuestionnaireResponse", params={"coverage-assertion-id": assertion_id}).json()
    assert [e["resource"]["status"] for e in found["entry"]] == ["completed"]
    response = submit(client, claim_bundle("DTR-A1", "dr1", assertion_id))
    assert action(response) == "A1" and response["outcome"] == "complete"
    assert response.get("preAuthRef")


def test_a_stored_response_found_by_the_order_in_its_qr_context_approves(client: TestClient) -> None:
    assertion_id, draft = crd_then_dtr(client, "dr2")
    qr = completed(draft, "dr2", linked=False)  # no coverage-information: only the order links it
    assert client.put(
        "/fhir/QuestionnaireResponse/qr-dr2", json={**qr, "id": "qr-dr2"}, headers=FHIR_JSON
    ).status_code in (200, 201)
    bundle = claim_bundle("DTR-CTX", "dr2", None, order_url=f"{EHR}/DeviceRequest/dr2")
    assert action(submit(client, bundle)) == "A1"


def test_an_in_progress_response_leaves_the_request_pended_with_the_reason(client: TestClient) -> None:
    assertion_id, draft = crd_then_dtr(client, "dr3")
    qr = completed(draft, "dr3", status="in-progress")
    assert client.post("/fhir/QuestionnaireResponse", json=qr, headers=FHIR_JSON).status_code == 201
    response = submit(client, claim_bundle("DTR-WIP", "dr3", assertion_id))
    assert action(response) == "A4"
    assert "is in-progress, not completed" in notes(response)


def test_a_response_to_a_questionnaire_the_decision_did_not_ask_for_does_not_count(
    client: TestClient,
) -> None:
    assertion_id, draft = crd_then_dtr(client, "dr4")
    qr = completed(draft, "dr4")
    qr["questionnaire"] = "https://priorgate.org/fhir/Questionnaire/ct-abdomen|1.0.0"
    assert client.post("/fhir/QuestionnaireResponse", json=qr, headers=FHIR_JSON).status_code == 201
    response = submit(client, claim_bundle("DTR-OTHER", "dr4", assertion_id))
    assert action(response) == "A4"
    assert "which the coverage decision did not ask for" in notes(response)


def test_a_response_for_the_item_trace_number_found_by_qr_context_identifier(client: TestClient) -> None:
    """DTR launched from a PAS pend: the trace number is the DTR context (PAS ainfo-3)."""
    _, draft = crd_then_dtr(client, "dr5")
    qr = completed(draft, "dr5", linked=False)
    qr["extension"] = [e for e in qr["extension"] if e["url"] != QR_CONTEXT]
    qr["extension"].append(
        {
            "url": QR_CONTEXT,
            "valueReference": {"identifier": {"system": "urn:trnorg:1999999999", "value": "TRN-5"}},
        }
    )
    assert client.post("/fhir/QuestionnaireResponse", json=qr, headers=FHIR_JSON).status_code == 201
    bundle = claim_bundle("DTR-TRN", "dr5", None)
    item = bundle["entry"][0]["resource"]["item"][0]
    item["extension"].append(
        {
            "url": PAS + "extension-itemTraceNumber",
            "valueIdentifier": {"system": "urn:trnorg:1999999999", "value": "TRN-5"},
        }
    )
    assert action(submit(client, bundle)) == "A1"
    other = claim_bundle("DTR-TRN-OTHER", "dr6", None)
    other["entry"][0]["resource"]["item"][0]["extension"].append(
        {
            "url": PAS + "extension-itemTraceNumber",
            "valueIdentifier": {"system": "urn:trnorg:1999999999", "value": "TRN-6"},
        }
    )
    assert action(submit(client, other)) == "A4"
