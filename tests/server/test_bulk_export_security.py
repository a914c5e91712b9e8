"""Who may export a Group, read an export's status and download its files, with security on (SQLite and
PostgreSQL): the provider organization managing the Group and payer administrators export; another
provider gets 404 (or 403 when it can read the Group); only administrators write Groups; the status URL
and files answer only the client that kicked the export off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from server.security.keys import SigningKey

from . import bulk_fixtures as data
from .conftest import Clock
from .secured_app import BASE, FHIR_JSON, Client, SecuredApp, register_clients, secured_client

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
CLIENTS = {
    "clinic": Client((data.CLINIC,), "system/*.cruds"),
    "other-clinic": Client((data.OTHER_CLINIC,), "system/*.cruds"),
    "new-payer": Client((data.NEW_PAYER,), "system/*.rs"),
    "admin": Client(("payer",), "system/*.cruds", ("admin",)),
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, SigningKey], Path]:
    folder = tmp_path_factory.mktemp("bulk-security")
    return register_clients(folder, CLIENTS), folder


@pytest.fixture
def secured(
    database_url: str, clock: Clock, keys: tuple[dict[str, SigningKey], Path]
) -> Iterator[SecuredApp]:
    by_client, folder = keys
    with secured_client(database_url, clock, folder, by_client, CLIENTS) as http:
        found = SecuredApp(http, by_client, clock, CLIENTS)
        for resource in data.payer_data():
            found.put(resource)
        found.put(data.group("g-clinic", data.CLINIC, ["p1", "p2", "p3"]), tenant=data.CLINIC)
        # a Group the other clinic can read (its tenant) but which names the clinic
        found.put(data.group("g-misfiled", data.CLINIC, ["p1"]), tenant=data.OTHER_CLINIC)
        found.put(data.group("g-p2p", data.NEW_PAYER, ["p1", "p2"], purpose="payer-to-payer"))
        yield found


def test_the_managing_provider_exports_and_another_provider_cannot(secured: SecuredApp) -> None:
    clinic = secured.as_("clinic")
    other = secured.as_("other-clinic")
    assert secured.http.get("/fhir/Group/g-clinic", headers=clinic).status_code == 200
    assert secured.http.get("/fhir/Group/g-clinic/$export", headers=clinic | ASYNC).status_code == 202
    refused = secured.http.get("/fhir/Group/g-clinic/$export", headers=other | ASYNC)
    assert refused.status_code == 404  # not its Group to see: indistinguishable from a missing one
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert secured.http.get("/fhir/Group/g-misfiled/$export", headers=other | ASYNC).status_code == 403
    assert secured.http.get("/fhir/Group/g-p2p/$export", headers=clinic | ASYNC).status_code == 404
    assert secured.http.get("/fhir/Group/g-clinic/$export", headers=ASYNC).status_code == 401
    admin = secured.as_("admin")
    assert secured.http.get("/fhir/Group/g-clinic/$export", headers=admin | ASYNC).status_code == 202


def test_only_payer_administrators_write_groups(secured: SecuredApp) -> None:
    clinic = secured.as_("clinic") | FHIR_JSON
    own = data.group("g-self-made", data.CLINIC, ["p1", "p2", "p3"])
    assert (
        secured.http.put("/fhir/Group/g-self-made", content=orjson.dumps(own), headers=clinic).status_code
        == 403
    )
    assert (
        secured.http.put(
            "/fhir/Group/g-clinic", content=orjson.dumps(own | {"id": "g-clinic"}), headers=clinic
        ).status_code
        == 403
    )
    patient = {"resourceType": "Patient", "id": "p-clinic"}
    assert (
        secured.http.put("/fhir/Patient/p-clinic", content=orjson.dumps(patient), headers=clinic).status_code
        == 201
    )


def test_status_and_files_answer_only_the_client_that_asked(secured: SecuredApp) -> None:
    clinic = secured.as_("clinic")
    kicked = secured.http.get("/fhir/Group/g-clinic/$export", headers=clinic | ASYNC)
    status = kicked.headers["content-location"].removeprefix(BASE)
    secured.run_exports()
    manifest = secured.http.get(status, headers=clinic).json()
    assert manifest["requiresAccessToken"] is True
    url = manifest["output"][0]["url"].removeprefix(BASE)
    assert secured.http.get(url, headers=clinic).status_code == 200
    for stranger in (secured.as_("other-clinic"), secured.as_("admin")):
        assert secured.http.get(status, headers=stranger).status_code == 404
        assert secured.http.get(url, headers=stranger).status_code == 404
        assert secured.http.delete(status, headers=stranger).status_code == 404
    assert secured.http.get(url).status_code == 401
    assert secured.http.get(status).status_code == 401


def test_the_requesting_payer_gets_its_opted_in_members(secured: SecuredApp) -> None:
    payer = secured.as_("new-payer")
    kicked = secured.http.get("/fhir/Group/g-p2p/$export", headers=payer | ASYNC)
    assert kicked.status_code == 202, kicked.text
    secured.run_exports()
    manifest = secured.http.get(kicked.headers["content-location"].removeprefix(BASE), headers=payer).json()
    patients = [
        orjson.loads(line)["id"]
        for entry in manifest["output"]
        if entry["type"] == "Patient"
        for line in secured.http.get(entry["url"].removeprefix(BASE), headers=payer).content.splitlines()
    ]
    assert patients == ["p1"]


def test_a_provider_cannot_lift_a_members_opt_out(secured: SecuredApp) -> None:
    clinic = secured.as_("clinic")
    permit = data.opt_out("consent-p3-by-clinic", "p3", kind="permit", when="2026-02-15")
    written = secured.http.put(
        "/fhir/Consent/consent-p3-by-clinic", content=orjson.dumps(permit), headers=clinic | FHIR_JSON
    )
    assert written.status_code == 201
    kicked = secured.http.get("/fhir/Group/g-clinic/$export?_type=Patient", headers=clinic | ASYNC)
    secured.run_exports()
    manifest = secured.http.get(kicked.headers["content-location"].removeprefix(BASE), headers=clinic).json()
    patients = {
        orjson.loads(line)["id"]
        for entry in manifest["output"]
        for line in secured.http.get(entry["url"].removeprefix(BASE), headers=clinic).content.splitlines()
    }
    assert patients == {"p1", "p2"}
