"""Input limits on every FHIR body (PRIORGATE_MAX_BODY_BYTES, _MAX_JSON_DEPTH, _MAX_STRING_LENGTH,
_MAX_BUNDLE_ENTRIES): each refused with a 413 ``too-costly`` OperationOutcome, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        demo_content=False,
        max_body_bytes=64 * 1024,
        max_json_depth=16,
        max_string_length=2048,
        max_bundle_entries=3,
    )
    app = create_app(settings, security=SecuritySettings(auth_mode="off"))
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def _too_costly(answer: Any, words: str) -> None:
    assert answer.status_code == 413, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-costly"
    assert words in outcome["issue"][0]["diagnostics"]


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "x", "valueString": "leaf"}
    for _ in range(depth):
        node = {"url": "x", "extension": [node]}
    return {"resourceType": "Patient", "extension": [node]}


def test_nesting_beyond_the_limit_is_413(client: TestClient) -> None:
    assert client.post("/fhir/Patient", json=_nested(3), headers=FHIR_JSON).status_code == 201
    _too_costly(client.post("/fhir/Patient", json=_nested(10), headers=FHIR_JSON), "nesting")


def test_a_string_beyond_the_limit_is_413(client: TestClient) -> None:
    fine = {"resourceType": "Patient", "name": [{"text": "a" * 2000}]}
    assert client.post("/fhir/Patient", json=fine, headers=FHIR_JSON).status_code == 201
    long = {"resourceType": "Patient", "name": [{"text": "a" * 3000}]}
    _too_costly(client.post("/fhir/Patient", json=long, headers=FHIR_JSON), "string")


def test_a_bundle_beyond_the_entry_limit_is_413(client: TestClient) -> None:
    def bundle(n: int) -> dict[str, Any]:
        entry = {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
        return {"resourceType": "Bundle", "type": "batch", "entry": [entry] * n}

    assert client.post("/fhir", json=bundle(3), headers=FHIR_JSON).status_code == 200
    _too_costly(client.post("/fhir", json=bundle(4), headers=FHIR_JSON), "entries")
    # the same limit holds for operations taking a Bundle
    _too_costly(client.post("/pas/2.2.1/Claim/$submit", json=bundle(4), headers=FHIR_JSON), "entries")


def test_a_body_beyond_the_size_limit_is_413(client: TestClient) -> None:
    body = orjson.dumps({"resourceType": "Patient", "name": [{"text": "a" * 2000}] * 40})
    answer = client.post("/fhir/Patient", content=body, headers=FHIR_JSON)
    assert answer.status_code == 413 and answer.json()["resourceType"] == "OperationOutcome"


def test_limits_are_settings_with_bounds() -> None:
    with pytest.raises(ValueError):
        Settings(max_json_depth=2)
    assert Settings().max_bundle_entries == 1000 and Settings().max_json_depth == 64
