"""Schemathesis over the OpenAPI description of every route: no 500, and every error is an OperationOutcome.

FastAPI describes none of the request bodies (the routes read FHIR JSON themselves), so every POST and
PUT is given a body schema here: a JSON object shaped loosely like a FHIR resource, Parameters, Bundle or
CDS Hooks request, with any values. The app runs in process (ASGI) on a fresh SQLite file with the demo
content, CDS development mode on (so hook calls reach the services instead of stopping at the client
JWT) and the IG packages from PRIORGATE_IG_PATH when set (so $validate and the PAS profile gate run).
Generation is derandomized, so a run is reproducible, and small: about a dozen cases per operation.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


def _ig_path() -> Path | None:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    return Path(raw) if raw and Path(raw).is_dir() else None


def _app(tmp: Path) -> Any:
    settings_ = Settings(
        database_url=f"sqlite:///{tmp / 'fuzz.db'}",
        ig_path=_ig_path() or tmp / "no-igs",
        demo_content=True,
        cds_development_mode=True,
    )
    return create_app(settings_, prepare_database=True, security=AUTH_OFF)


RESOURCE_TYPES = ["Patient", "Claim", "Bundle", "Parameters", "QuestionnaireResponse", "Coverage", "Foo", ""]
BODY = {
    "type": "object",
    "properties": {
        "resourceType": {"enum": RESOURCE_TYPES},
        "id": {},
        "type": {},
        "entry": {"type": "array", "items": {"type": "object", "properties": {"resource": {}}}},
        "parameter": {"type": "array", "items": {"type": "object"}},
        "item": {},
        "hook": {},
        "hookInstance": {},
        "context": {},
        "prefetch": {},
    },
}


def described(openapi: dict[str, Any]) -> dict[str, Any]:
    for operations in openapi["paths"].values():
        for method, operation in operations.items():
            if method in ("post", "put"):
                operation["requestBody"] = {"content": {"application/json": {"schema": BODY}}}
    return openapi


_TMP = tempfile.TemporaryDirectory(prefix="priorgate-fuzz-")
_APP = _app(Path(_TMP.name))
schema = schemathesis.openapi.from_dict(described(_APP.openapi()))
schema.app = _APP


def assert_outcome_or_success(status: int, content_type: str, body: bytes) -> None:
    """The contract every route keeps under any input (503 with an OperationOutcome is an honest answer,
    e.g. for $validate without the IG packages)."""
    assert status != 500, f"server error: {body[:300]!r}"
    if status >= 400:
        assert "json" in content_type, f"{status} without a JSON body ({content_type})"
        document = orjson.loads(body)
        assert document.get("resourceType") == "OperationOutcome", document
        assert document.get("issue"), document


@schema.parametrize()
@settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_route_answers_500_or_a_bare_4xx(case: schemathesis.Case) -> None:
    response = case.call()
    assert_outcome_or_success(
        response.status_code, response.headers.get("content-type", [""])[0], response.content
    )


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (500, "application/fhir+json", b'{"resourceType":"OperationOutcome","issue":[{}]}'),
        (503, "text/plain", b"unavailable"),
        (404, "text/plain", b"not found"),
        (400, "application/json", b'{"detail": "bad"}'),
    ],
)
def test_the_contract_check_can_fail(status: int, content_type: str, body: bytes) -> None:
    with pytest.raises(AssertionError):
        assert_outcome_or_success(status, content_type, body)
