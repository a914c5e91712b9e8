"""A security-on harness for tests: Backend Services clients registered with their own ES384 keys, the
app built with local authentication, tokens fetched per client, resources written as the payer
administrator, and one bulk export round run in the test's thread."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
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

from .conftest import Clock

BASE = "http://testserver"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
ORG_HEADER = "X-PriorGate-Organization"


@dataclass(frozen=True)
class Client:
    tenants: tuple[str, ...]
    scopes: str
    roles: tuple[str, ...] = ()


def register_clients(folder: Path, clients: Mapping[str, Client]) -> dict[str, SigningKey]:
    """Write ``folder/clients.json`` registering ``clients``, each with a new key; the keys by client id."""
    keys = {cid: SigningKey.of(generate_private_key("ES384"), "ES384") for cid in clients}
    registrations = [
        register_client(
            cid,
            tenants=list(client.tenants),
            scopes=client.scopes,
            roles=client.roles,
            jwks={"keys": [public_jwk(keys[cid].private_key, "ES384")]},
        )
        for cid, client in clients.items()
    ]
    (folder / "clients.json").write_bytes(dump_clients(registrations))
    return keys


@dataclass
class SecuredApp:
    http: TestClient
    keys: dict[str, SigningKey]
    clock: Clock
    clients: Mapping[str, Client]

    def as_(self, client_id: str) -> dict[str, str]:
        body = fetch_token(
            client_id,
            self.keys[client_id],
            token_url=BASE + "/auth/token",
            scope=self.clients[client_id].scopes,
            now=self.clock(),
            http=self.http,
        )
        return {"Authorization": f"Bearer {body['access_token']}"}

    def put(self, resource: dict[str, Any], tenant: str | None = None) -> None:
        """Write ``resource`` as the ``admin`` client (into ``tenant`` when given)."""
        headers = self.as_("admin") | FHIR_JSON | ({ORG_HEADER: tenant} if tenant else {})
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        answer = self.http.put(path, content=orjson.dumps(resource), headers=headers)
        assert answer.status_code in (200, 201), answer.text

    def run_exports(self) -> None:
        """One bulk export round (the worker is off in these tests); it must find work."""
        svc = self.http.app.state.services  # type: ignore[attr-defined]
        assert isinstance(svc, Services)
        runner = ExportRunner(
            JobStore(svc.engine), svc.repository, svc.now, bulk_settings(svc.settings), audit=svc.audit
        )
        assert runner.run_once() is True


@contextmanager
def secured_client(
    database_url: str, clock: Clock, folder: Path, keys: dict[str, SigningKey], clients: Mapping[str, Client]
) -> Iterator[TestClient]:
    """The app with local authentication trusting the clients registered in ``folder``."""
    settings = Settings(
        database_url=database_url, demo_content=False, base_url=BASE, bulk_export_worker=False
    )
    security = SecuritySettings(
        auth_mode="local", security_dir=folder, clients_file=folder / "clients.json", demo_clients=False
    )
    with TestClient(create_app(settings, now=clock, security=security), base_url=BASE) as http:
        yield http
