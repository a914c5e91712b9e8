"""Hostile FHIR JSON on every body-reading route: malformed, huge, deeply nested, wrong types.

Whatever arrives, the answer is a success or an OperationOutcome with a 4xx (or an honest 503), never a
500. The app runs in process on SQLite with the demo content, CDS development mode on, and the IG
packages when PRIORGATE_IG_PATH is set. Hypothesis runs derandomized with a small budget.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

MAX_BODY = 64 * 1024
FHIR = {"content-type": "application/fhir+json"}

# (method, path, the resourceType the route expects)
ROUTES: list[tuple[str, str, str]] = [
    ("POST", "/fhir/Patient", "Patient"),
    ("PUT", "/fhir/Patient/fuzz-1", "Patient"),
    ("POST", "/fhir", "Bundle"),
    ("POST", "/fhir/Patient/_search", "Parameters"),
    ("POST", "/pas/2.2.1/Claim/$submit", "Bundle"),
    ("POST", "/pas/2.0.1/Claim/$inquire", "Bundle"),
    ("POST", "/cds-services/order-sign-crd", "Parameters"),
    ("POST", "/cds-services/order-sign-crd/feedback", "Parameters"),
    ("POST", "/fhir/Questionnaire/$questionnaire-package", "Parameters"),
    ("POST", "/dtr/2.2.0/Questionnaire/$next-question", "QuestionnaireResponse"),
    ("POST", "/fhir/Questionnaire/$log-questionnaire-errors", "Parameters"),
    ("POST", "/fhir/ValueSet/$expand", "Parameters"),
    ("POST", "/fhir/$validate", "Parameters"),
    ("POST", "/fhir/Claim/$validate", "Claim"),
    ("POST", "/pas/review/fuzz/decision", "Parameters"),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]

FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("fuzz-json")
    raw = os.environ.get("PRIORGATE_IG_PATH")
    igs = Path(raw) if raw and Path(raw).is_dir() else tmp / "no-igs"
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp / 'fuzz.db'}",
            ig_path=igs,
            demo_content=True,
            cds_development_mode=True,
            max_body_bytes=MAX_BODY,
        ),
        prepare_database=True,
        security=AUTH_OFF,
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def send(client: TestClient, route: tuple[str, str, str], body: bytes) -> None:
    method, path, _ = route
    response = client.request(method, path, content=body, headers=FHIR)
    assert response.status_code != 500, f"{method} {path}: {response.text[:300]}"
    if response.status_code >= 400:
        document = orjson.loads(response.content)
        assert document["resourceType"] == "OperationOutcome", document
        assert document["issue"], document


def nested(depth: int, resource_type: str) -> bytes:
    """A resource whose extension (and CDS context, and Parameters part) nests ``depth`` objects deep."""
    leaf = '{"url":"http://example.org/x","valueString":"a"}'
    chain = '{"url":"http://example.org/x","extension":[' * depth + leaf + "]}" * depth
    return (
        f'{{"resourceType":"{resource_type}","id":"fuzz-1","extension":[{chain}],"hook":"order-sign",'
        f'"hookInstance":"d5f1","context":{chain},"parameter":[{{"name":"x","part":[{chain}]}}]}}'
    ).encode()


# Nesting from ordinary to beyond what orjson writes (254) and what the parser reads (~1000 levels).
@pytest.mark.parametrize("depth", [20, 130, 300, 480, 5000])
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_deeply_nested_bodies(client: TestClient, route: tuple[str, str, str], depth: int) -> None:
    send(client, route, nested(depth, route[2]))


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_body_over_the_limit_is_413(client: TestClient, route: tuple[str, str, str]) -> None:
    method, path, resource_type = route
    body = orjson.dumps({"resourceType": resource_type, "text": {"div": "x" * MAX_BODY}})
    response = client.request(method, path, content=body, headers=FHIR)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_wide_bodies_under_the_limit(client: TestClient, route: tuple[str, str, str]) -> None:
    resource_type = route[2]
    entry = [{"resource": {"resourceType": "Patient"}}] * 700
    parameter = [{"name": "coverage", "valueString": "x"}] * 700
    body = {"resourceType": resource_type, "type": "transaction", "entry": entry, "parameter": parameter}
    raw = orjson.dumps(body)
    assert len(raw) < MAX_BODY
    send(client, route, raw)


@FUZZ
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=200))
def test_arbitrary_bytes(client: TestClient, route: tuple[str, str, str], body: bytes) -> None:
    send(client, route, body)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
# Keys the routes read, each given any JSON value: wrong types where the route expects a shape.
FIELDS = [
    "id", "meta", "type", "entry", "parameter", "item", "status", "identifier", "patient", "insurance",
    "hook", "hookInstance", "context", "prefetch", "fhirServer", "fhirAuthorization", "feedback",
    "questionnaire", "resource", "name", "valueString", "url", "subject", "code", "extension",
]  # fmt: skip


@st.composite
def wrong_types(draw: st.DrawFn, resource_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": draw(st.sampled_from([resource_type, resource_type, 7, None]))}
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        body[key] = draw(JSON)
    if draw(st.booleans()):
        # a structurally plausible entry or parameter holding a resource of odd shape
        inner: dict[str, Any] = {"resourceType": draw(st.sampled_from(["Claim", "Patient", "Coverage", 3]))}
        inner |= draw(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=3))
        body["entry"] = [{"fullUrl": draw(JSON), "resource": inner}]
        body["parameter"] = [{"name": draw(st.sampled_from(["coverage", "order", "x"])), "resource": inner}]
    return body


@FUZZ
@given(data=st.data(), route=st.sampled_from(ROUTES))
def test_wrong_types(client: TestClient, route: tuple[str, str, str], data: st.DataObject) -> None:
    send(client, route, json.dumps(data.draw(wrong_types(route[2]))).encode())  # any integer size


# -- valid requests with one value anywhere replaced ---------------------------------------------------

HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
COVERAGE = {
    "resourceType": "Coverage",
    "id": "cov1",
    "status": "active",
    "beneficiary": {"reference": "Patient/pat1"},
    "payor": [{"identifier": {"system": "https://priorgate.org/fhir/sid/payer-id", "value": "PGDEMO"}}],
}
ORDER = {
    "resourceType": "DeviceRequest",
    "id": "dr1",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/pat1"},
    "codeCodeableConcept": {"coding": [{"system": HCPCS, "code": "E0601"}]},
    "parameter": [{"code": {"text": "pressure"}, "valueQuantity": {"value": 10.5}}],
}


def valid_bodies() -> dict[str, dict[str, Any]]:
    """One valid request per route family (the PAS Bundle from the conformance suite)."""
    from conformance.suites import pas_server

    pas = pas_server.request_bundle("FUZZ", ("72148",))
    pas["entry"][0]["resource"]["item"][0]["quantity"] = {"value": 1.5}
    return {
        "POST /fhir/Patient": {
            "resourceType": "Patient",
            "name": [{"family": "Fuzz", "given": ["A"]}],
            "birthDate": "1970-01-01",
            "extension": [{"url": "http://example.org/x", "valueDecimal": 2.50}],
        },
        "POST /fhir": {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": COVERAGE, "request": {"method": "POST", "url": "Coverage"}}],
        },
        "POST /pas/2.2.1/Claim/$submit": pas,
        "POST /cds-services/order-sign-crd": {
            "hook": "order-sign",
            "hookInstance": "0b4a3f6e-4a8f-4c51-9a53-2f6f9a1b2c3d",
            "context": {
                "userId": "Practitioner/p1",
                "patientId": "pat1",
                "draftOrders": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": ORDER}],
                },
            },
            "prefetch": {
                "patient": {"resourceType": "Patient", "id": "pat1", "birthDate": "1960-01-01"},
                "coverage": {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [{"resource": COVERAGE}],
                },
            },
        },
        "POST /fhir/Questionnaire/$questionnaire-package": {
            "resourceType": "Parameters",
            "parameter": [{"name": "coverage", "resource": COVERAGE}, {"name": "order", "resource": ORDER}],
        },
    }


VALID = valid_bodies()


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            out += paths(child, (*prefix, index))
    return out


def replaced(body: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    out = copy.deepcopy(body)
    node = out
    for step in path[:-1]:
        node = node[step]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def test_the_valid_requests_are_accepted(client: TestClient) -> None:
    """The base of the mutations below: each unmutated request succeeds."""
    for route, body in VALID.items():
        method, path = route.split(" ", 1)
        response = client.request(method, path, content=json.dumps(body), headers=FHIR)
        assert response.status_code in (200, 201), f"{route}: {response.text[:300]}"


@FUZZ
@given(data=st.data(), route=st.sampled_from(sorted(VALID)))
def test_valid_requests_with_one_value_replaced(client: TestClient, route: str, data: st.DataObject) -> None:
    body = VALID[route]
    path = data.draw(st.sampled_from(paths(body)), label="path")
    mutated = replaced(body, path, data.draw(JSON, label="value"), data.draw(st.booleans(), label="delete"))
    method, url = route.split(" ", 1)
    send(client, (method, url, ""), json.dumps(mutated).encode())
