"""Every PAS request example of the IG packages, submitted over HTTP to create_app (SQLite), gets a 200
PAS Response Bundle for its version, through the profile gate (each on an empty PAS store)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.pas import PasVersion
from server.security.config import SecuritySettings
from server.settings import Settings
from server.storage.schema import pas_review, pas_submission, pas_submission_key

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    ig_path = os.environ.get("PRIORGATE_IG_PATH")
    if not ig_path:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    db = tmp_path_factory.mktemp("pas-examples") / "pas.db"
    settings = Settings(database_url=f"sqlite:///{db}", demo_content=False, ig_path=Path(ig_path))
    with TestClient(create_app(settings, prepare_database=True, security=AUTH_OFF)) as test_client:
        yield test_client


def test_every_ig_request_example_gets_a_response_bundle(
    client: TestClient, example_bundle: tuple[PasVersion, dict[str, Any]]
) -> None:
    version, bundle = example_bundle
    # the IG examples share Claim identifiers (409 one after another): each starts with no submissions
    with client.app.state.services.engine.begin() as connection:  # type: ignore[attr-defined]
        for table in (pas_submission_key, pas_submission, pas_review):
            connection.execute(table.delete())
    response = client.post(
        f"/pas/{version.value}/Claim/$submit", json=bundle, headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 200, response.text[:2000]
    body = response.json()
    assert body["resourceType"] == "Bundle"
    assert body["entry"][0]["resource"]["resourceType"] == "ClaimResponse"


def test_an_update_over_http_continues_the_stored_submission(client: TestClient, ig: Any) -> None:
    with client.app.state.services.engine.begin() as connection:  # type: ignore[attr-defined]
        for table in (pas_submission_key, pas_submission, pas_review):
            connection.execute(table.delete())
    package = ig(PasVersion.V2_2_1)
    url = "/pas/2.2.1/Claim/$submit"
    headers = {"Content-Type": "application/fhir+json"}
    first = client.post(url, json=package["Bundle-HomecareAuthorizationBundleExample.json"], headers=headers)
    assert first.status_code == 200, first.text[:1000]
    update = client.post(
        url, json=package["Bundle-HomecareAuthorizationUpdateBundleExample.json"], headers=headers
    )
    assert update.status_code == 200, update.text[:1000]
    items = update.json()["entry"][0]["resource"]["item"]
    assert [i["itemSequence"] for i in items] == [1, 2, 3]
    assert "A1" in first.text and "A1" in update.text
    with client.app.state.services.engine.connect() as connection:  # type: ignore[attr-defined]
        submissions = connection.execute(pas_submission.select()).all()
    assert len(submissions) == 1  # the update is a new state of the same submission
