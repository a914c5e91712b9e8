"""Demo clients, registered out of the box so a fresh server can be tried at once.

DEMO ONLY: the private keys of these clients are generated on first start into a demo folder (by
default ``.priorgate/demo-keys/``, one ``<client_id>.private-key.pem`` each, mode 0600). Anyone with
that folder can act as the demo clients; never enable demo clients on a server holding real data.

Clients:

* ``demo-ehr`` (ES384): an EHR acting for ``org-demo-clinic``; submits and inquires about PAs.
* ``demo-intermediary`` (RS384): a clearinghouse acting for ``org-demo-clinic`` and ``org-demo-hospital``.
* ``demo-reviewer`` (ES384): payer UM staff (role ``reviewer``), reads every organization's requests.
* ``demo-auditor`` (ES384): the payer's auditor (role ``auditor``), reads AuditEvents.

Getting a token, one command (server running on the default port)::

    .venv/bin/priorgate token --client demo-ehr

prints a token response; ``--base-url``, ``--scope`` and ``--keys`` change the server, scopes and key
folder. Then: ``curl -H "Authorization: Bearer <access_token>" http://127.0.0.1:8080/fhir/Claim``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from server.security.backend_client import fetch_token
from server.security.clients import RegisteredClient, register_client
from server.security.constants import TOKEN_PATH
from server.security.keys import (
    PrivateKey,
    SigningKey,
    create_private_key_file,
    generate_private_key,
    load_private_key_pem,
    public_jwk,
)

DEFAULT_DEMO_KEYS_DIR = Path(".priorgate") / "demo-keys"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"

_SUBMITTER_SCOPES = (
    "system/Claim.crs system/ClaimResponse.rs system/Questionnaire.rs system/QuestionnaireResponse.cruds "
    "system/Subscription.cruds system/Bundle.rs system/Communication.crs system/DocumentReference.crs "
    "system/Patient.crs system/Coverage.crs system/Organization.rs system/Practitioner.rs "
    "system/ValueSet.rs system/CodeSystem.rs system/Library.rs"
)


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    name: str
    algorithm: str
    tenants: tuple[str, ...]
    scopes: str
    roles: tuple[str, ...] = ("submitter",)


DEMO_CLIENTS: tuple[DemoClient, ...] = (
    DemoClient("demo-ehr", "Demo EHR (DEMO ONLY)", "ES384", ("org-demo-clinic",), _SUBMITTER_SCOPES),
    DemoClient(
        "demo-intermediary",
        "Demo clearinghouse (DEMO ONLY)",
        "RS384",
        ("org-demo-clinic", "org-demo-hospital"),
        _SUBMITTER_SCOPES,
    ),
    DemoClient(
        "demo-reviewer",
        "Demo payer reviewer (DEMO ONLY)",
        "ES384",
        ("payer",),
        "system/*.rs system/ClaimResponse.cu system/Communication.cu system/CommunicationRequest.cu "
        "system/Task.cu",
        ("reviewer",),
    ),
    DemoClient(
        "demo-auditor", "Demo auditor (DEMO ONLY)", "ES384", ("payer",), "system/AuditEvent.rs", ("auditor",)
    ),
)

_README = """DEMO ONLY. These private keys belong to PriorGate's demo clients (server/security/demo.py).
Anyone holding them can obtain tokens as those clients. Never use them with real data.
"""


def demo_key(folder: Path, client: DemoClient) -> PrivateKey:
    """The demo client's private key from ``folder``, generated and written (0600) on first use."""
    path = folder / f"{client.client_id}.private-key.pem"
    if path.exists():
        return load_private_key_pem(path.read_bytes(), source=str(path))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.txt").write_text(_README)
    return create_private_key_file(path, generate_private_key(client.algorithm))


def demo_clients(folder: Path = DEFAULT_DEMO_KEYS_DIR) -> tuple[RegisteredClient, ...]:
    """The demo client registrations, with inline JWKS from their (possibly new) demo keys."""
    out = []
    for client in DEMO_CLIENTS:
        key = demo_key(folder, client)
        out.append(
            register_client(
                client.client_id,
                name=client.name,
                tenants=client.tenants,
                scopes=client.scopes,
                jwks={"keys": [public_jwk(key, client.algorithm)]},
                roles=client.roles,
            )
        )
    return tuple(out)


def demo_signing_key(client_id: str, folder: Path = DEFAULT_DEMO_KEYS_DIR) -> SigningKey:
    """The demo client's key with its ``kid`` and algorithm, for signing assertions."""
    client = next((c for c in DEMO_CLIENTS if c.client_id == client_id), None)
    if client is None:
        raise KeyError(f"no demo client {client_id!r}; known: {', '.join(c.client_id for c in DEMO_CLIENTS)}")
    return SigningKey.of(demo_key(folder, client), client.algorithm)


def request_token(
    client_id: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    folder: Path = DEFAULT_DEMO_KEYS_DIR,
    scope: str | None = None,
    http: httpx.Client | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Obtain an access token for a demo client from a running server; returns the token response."""
    key = demo_signing_key(client_id, folder)
    wanted = scope or next(c.scopes for c in DEMO_CLIENTS if c.client_id == client_id)
    return fetch_token(
        client_id,
        key,
        token_url=base_url.rstrip("/") + TOKEN_PATH,
        scope=wanted,
        now=now or datetime.now(UTC),
        http=http,
    )
