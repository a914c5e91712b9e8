"""The EHR's FHIR server down or slow during a CRD hook: the hook still answers 200, and an order whose
decision hinges on the data it could not get is `indeterminate` with reason `technical` (CRD resp-43),
never a 500.

The EHR is a small HTTP server on loopback. "Slow" answers with data that would make the order covered,
but only after PRIORGATE_OUTBOUND_TIMEOUT has passed: the hook answering `indeterminate` shows it did not
wait (no wall-clock assertion). The same server answering at once makes the order covered.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
COVERAGE_INFORMATION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
OUTBOUND_TIMEOUT = 0.2
SLOW_SECONDS = 3.0  # far past the outbound timeout; bounded so the server threads end on their own

HISTORY = {
    "Condition": {
        "resourceType": "Condition",
        "id": "c1",
        "code": {"coding": [{"system": ICD10, "code": "K50.90"}]},
    },
    "MedicationRequest": {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "6851"}]},
    },
}

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


def hook_request(fhir_server: str) -> dict[str, Any]:
    """order-sign for infliximab, with the patient and coverage prefetched but no history: the rule needs
    the patient's conditions and prior medications, which the service queries from the EHR."""
    order = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/pat1"},
        "medicationCodeableConcept": {"coding": [{"system": HCPCS, "code": "J1745"}]},
        "dispenseRequest": {"quantity": {"value": 40}},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "wk"}}}],
    }
    coverage = {
        "resourceType": "Coverage",
        "id": "cov1",
        "status": "active",
        "beneficiary": {"reference": "Patient/pat1"},
        "payor": [{"identifier": {"system": "https://priorgate.org/fhir/sid/payer-id", "value": "PGDEMO"}}],
    }
    return {
        "hook": "order-sign",
        "hookInstance": "7d3c4f40-1f7e-4b7e-9a53-0d8c7d0c2f11",
        "fhirServer": fhir_server,
        "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 30, "scope": "x"},
        "context": {
            "userId": "Practitioner/prac1",
            "patientId": "pat1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]},
        },
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "pat1", "birthDate": "1970-01-01"},
            "coverage": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": coverage}]},
        },
        "extension": {"davinci-crd.requestedVersion": "2.2"},
    }


@contextmanager
def ehr(delay: float) -> Iterator[str]:
    """A FHIR server on loopback answering every search with the qualifying history after ``delay``."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            stop.wait(delay)
            kind = self.path.split("/")[-1].split("?")[0]
            entry = [{"resource": HISTORY[kind]}] if kind in HISTORY else []
            body = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entry}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up first

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("ehr")
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'crd.db'}",
        ig_path=Path(tmp / "no-igs"),
        demo_content=False,
        cds_development_mode=True,
        outbound_timeout=OUTBOUND_TIMEOUT,
    )
    with TestClient(
        create_app(settings, prepare_database=True, security=AUTH_OFF), raise_server_exceptions=False
    ) as test_client:
        yield test_client


def coverage_of(answer: dict[str, Any]) -> dict[str, list[Any]]:
    """The coverage-information sub-extensions of the order's system action, by url."""
    (action,) = [a for a in answer["systemActions"] if a["resource"]["id"] == "mr1"]
    (info,) = [e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFORMATION]
    out: dict[str, list[Any]] = {}
    for sub in info["extension"]:
        value = next((v for k, v in sub.items() if k.startswith("value")), sub.get("extension"))
        out.setdefault(sub["url"], []).append(value)
    return out


def assert_technical(response: Any) -> None:
    assert response.status_code == 200, response.text
    info = coverage_of(response.json())
    assert info["covered"] == ["indeterminate"]
    codes = [c["code"] for r in info["reason"] for c in r.get("coding", ())]
    assert "technical" in codes


def test_ehr_down(client: TestClient) -> None:
    assert_technical(client.post("/cds-services/order-sign-crd", json=hook_request(closed_port())))


def test_ehr_slower_than_the_outbound_timeout(client: TestClient) -> None:
    with ehr(SLOW_SECONDS) as base:
        assert_technical(client.post("/cds-services/order-sign-crd", json=hook_request(base)))


def test_the_same_ehr_answering_in_time_decides_the_order(client: TestClient) -> None:
    with ehr(0.0) as base:
        response = client.post("/cds-services/order-sign-crd", json=hook_request(base))
    assert response.status_code == 200, response.text
    info = coverage_of(response.json())
    assert info["covered"] == ["covered"]
    assert not [c for r in info.get("reason", ()) for c in r.get("coding", ()) if c["code"] == "technical"]
