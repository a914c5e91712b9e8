"""Who may export a Group, read an export's status and download its files, with security on (SQLite and
PostgreSQL): the provider organization managing the Group and payer administrators export; another
provider gets 404 (or 403 when it can read the Group); only administrators write Groups; the status URL
and files answer only the client that kicked the export off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.bulk.jobs import JobStore
from server.bulk.runner import ExportRunner, bulk_settings
from server.security.backend_client import fetch_token
from server.security.clients import dump_clients, register_client
from server.security.config import SecuritySettings
from server.security.keys import SigningKey, generate_private_key, public_jwk
from server.services import Services
from server.settings import Settings

from . import bulk_fixtures as data
from .conftest import Clock

BASE = "http://testserver"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
ORG_HEADER = "X-PriorGate-Organization"
CLIENTS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "clinic": ((data.CLINIC,), "system/*.cruds", ()),
    "other-clinic": ((data.OTHER_CLINIC,), "system/*.cruds", ()),
    "new-payer": ((data.NEW_PAYER,), "system/*.rs", ()),
    "admin": (("payer",), "system/*.cruds", ("admin",)),
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, SigningKey], Path]:
    folder = tmp_path_factory.mktemp("bulk-security")
    by_client = {cid: SigningKey.of(generate_private_key("ES384"), "ES384") for cid in CLIENTS}
    registrations = [
        register_client(
            cid,
            tenants=tenants,
            scopes=scopes,
            roles=roles,
            jwks={"keys": [public_jwk(by_client[cid].private_key, "ES384")]},
        )
        for cid, (tenants, scopes, roles) in CLIENTS.items()
    ]
    (folder / "clients.json").write_bytes(dump_clients(registrations))
    return by_client, folder


@dataclass
class Secured:
    http: TestClient
    keys: dict[str, SigningKey]
    clock: Clock

    def as_(self, client_id: str) -> dict[str, str]:
        body = fetch_token(
            client_id,
            self.keys[client_id],
            token_url=BASE + "/auth/token",
            scope=CLIENTS[client_id][1],
            now=self.clock(),
            http=self.http,
        )
        return {"Authorization": f"Bearer {body['access_token']}"}

    def put(self, resource: dict[str, Any], tenant: str | None = None) -> None:
        headers = self.as_("admin") | FHIR_JSON | ({ORG_HEADER: tenant} if tenant else {})
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        answer = self.http.put(path, content=orjson.dumps(resource), headers=headers)
        assert answer.status_code in (200, 201), answer.text

    def run(self) -> None:
        svc = self.http.app.state.services  # type: ignore[attr-defined]
        assert isinstance(svc, Services)
        runner = ExportRunner(JobStore(svc.engine), svc.repository, svc.now, bulk_settings(svc.settings))
        assert runner.run_once() is True


@pytest.fixture
def secured(database_url: str, clock: Clock, keys: tuple[dict[str, SigningKey], Path]) -> Iterator[Secured]:
    by_client, folder = keys
    settings = Settings(
        database_url=database_url, demo_content=False, base_url=BASE, bulk_export_worker=False
    )
    security = SecuritySettings(
        auth_mode="local", security_dir=folder, clients_file=folder / "clients.json", demo_clients=False
    )
    with TestClient(create_app(settings, now=clock, security=security), base_url=BASE) as http:
        found = Secured(http, by_client, clock)
        for resource in data.payer_data():
            found.put(resource)
        found.put(data.group("g-clinic", data.CLINIC, ["p1", "p2", "p3"]), tenant=data.CLINIC)
        # a Group the other clinic can read (its tenant) but which names the clinic
        found.put(data.group("g-misfiled", data.CLINIC, ["p1"]), tenant=data.OTHER_CLINIC)
        found.put(data.group("g-p2p", data.NEW_PAYER, ["p1", "p2"], purpose="payer-to-payer"))
        yield found


def test_the_managing_provider_exports_and_another_provider_cannot(secured: Secured) -> None:
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


def test_only_payer_administrators_write_groups(secured: Secured) -> None:
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


def test_status_and_files_answer_only_the_client_that_asked(secured: Secured) -> None:
    clinic = secured.as_("clinic")
    kicked = secured.http.get("/fhir/Group/g-clinic/$export", headers=clinic | ASYNC)
    status = kicked.headers["content-location"].removeprefix(BASE)
    secured.run()
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


def test_the_requesting_payer_gets_its_opted_in_members(secured: Secured) -> None:
    payer = secured.as_("new-payer")
    kicked = secured.http.get("/fhir/Group/g-p2p/$export", headers=payer | ASYNC)
    assert kicked.status_code == 202, kicked.text
    secured.run()
    manifest = secured.http.get(kicked.headers["content-location"].removeprefix(BASE), headers=payer).json()
    patients = [
        orjson.loads(line)["id"]
        for entry in manifest["output"]
        if entry["type"] == "Patient"
        for line in secured.http.get(entry["url"].removeprefix(BASE), headers=payer).content.splitlines()
    ]
    assert patients == ["p1"]


def test_a_provider_cannot_lift_a_members_opt_out(secured: Secured) -> None:
    clinic = secured.as_("clinic")
    permit = data.opt_out("consent-p3-by-clinic", "p3", kind="permit", when="2026-02-15")
    written = secured.http.put(
        "/fhir/Consent/consent-p3-by-clinic", content=orjson.dumps(permit), headers=clinic | FHIR_JSON
    )
    assert written.status_code == 201
    kicked = secured.http.get("/fhir/Group/g-clinic/$export?_type=Patient", headers=clinic | ASYNC)
    secured.run()
    manifest = secured.http.get(kicked.headers["content-location"].removeprefix(BASE), headers=clinic).json()
    patients = {
        orjson.loads(line)["id"]
        for entry in manifest["output"]
        for line in secured.http.get(entry["url"].removeprefix(BASE), headers=clinic).content.splitlines()
    }
    assert patients == {"p1", "p2"}
