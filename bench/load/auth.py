"""Security for the load run, as in production (``PRIORGATE_AUTH_MODE=local``): clients registered in a
temporary clients file, an access token fetched once per client, and a trusted CDS client whose JWT
signs every CRD call (one per call: CDS Hooks refuses a replayed ``jti``).

Clients: ``load-ehr`` submits for ``org-load`` (CRD, DTR, PAS, Subscriptions); ``load-reviewer`` decides
pended requests in the review queue (``reviewer`` role, payer staff).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.security.backend_client import fetch_token
from server.security.clients import dump_clients, register_client
from server.security.keys import SigningKey, generate_private_key, public_jwk

CDS_ISSUER = "https://ehr.load.example"
CDS_SERVICE = "/cds-services/order-sign-crd"
JWT_MAX_AGE_S = 480.0  # CDS Hooks JWTs older than 10 minutes are refused: mint again before then
CLIENTS = {
    # client_id: tenants, scopes, roles
    "load-ehr": (
        ("org-load",),
        "system/Claim.crs system/ClaimResponse.rs system/Questionnaire.rs system/Subscription.cruds",
        (),
    ),
    "load-reviewer": (("payer",), "system/*.rs system/ClaimResponse.cu", ("reviewer",)),
}


@dataclass
class LoadSecurity:
    """What the server needs (``env``) and what the load clients send (``headers``, ``cds_jwt``)."""

    folder: Path
    keys: dict[str, SigningKey]
    cds_key: bytes  # PEM
    tokens: dict[str, str]

    @classmethod
    def create(cls, folder: Path) -> LoadSecurity:
        keys = {cid: SigningKey.of(generate_private_key("ES384"), "ES384") for cid in CLIENTS}
        registrations = [
            register_client(
                cid,
                tenants=tenants,
                scopes=scopes,
                roles=roles,
                jwks={"keys": [public_jwk(keys[cid].private_key, "ES384")]},
            )
            for cid, (tenants, scopes, roles) in CLIENTS.items()
        ]
        (folder / "clients.json").write_bytes(dump_clients(registrations))
        signing = ec.generate_private_key(ec.SECP256R1())  # shared by every worker: no race to create one
        (folder / "token-signing-key.pem").write_bytes(_pem(signing))
        cds = ec.generate_private_key(ec.SECP384R1())
        cds_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(cds.public_key())) | {
            "kid": "load",
            "alg": "ES384",
        }
        (folder / "cds-clients.json").write_text(
            json.dumps([{"iss": CDS_ISSUER, "jwks": {"keys": [cds_jwk]}}])
        )
        return cls(folder, keys, _pem(cds), {})

    def env(self, base: str) -> dict[str, str]:
        return {
            "PRIORGATE_AUTH_MODE": "local",
            "PRIORGATE_BASE_URL": base,  # the token issuer and audience, and the CDS JWT audience
            "PRIORGATE_SECURITY_DIR": str(self.folder),
            "PRIORGATE_CLIENTS_FILE": str(self.folder / "clients.json"),
            "PRIORGATE_DEMO_CLIENTS": "false",
            "PRIORGATE_TOKEN_SIGNING_KEY": str(self.folder / "token-signing-key.pem"),
            "PRIORGATE_ACCESS_TOKEN_LIFETIME": "3600",  # fetched once per client for the whole run
            "PRIORGATE_CDS_DEVELOPMENT_MODE": "false",
            "PRIORGATE_CDS_TRUSTED_ISSUERS_FILE": str(self.folder / "cds-clients.json"),
        }

    def fetch_tokens(self, base: str) -> None:
        """One access token per client (SMART Backend Services client_credentials)."""
        with httpx.Client(timeout=30) as http:
            for cid, (_, scopes, _) in CLIENTS.items():
                body = fetch_token(
                    cid,
                    self.keys[cid],
                    token_url=f"{base}/auth/token",
                    scope=scopes,
                    now=datetime.now(UTC),
                    http=http,
                )
                if "access_token" not in body:
                    raise SystemExit(f"no access token for {cid}: {body}")
                self.tokens[cid] = str(body["access_token"])

    def headers(self, client_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[client_id]}"}

    def cds_jwts(self, base: str, count: int) -> list[str]:
        """``count`` CDS client JWTs for the order-sign service, each with its own ``jti``."""
        now = int(time.time())
        claims = {"iss": CDS_ISSUER, "aud": base + CDS_SERVICE, "iat": now, "exp": now + 600}
        headers = {"kid": "load", "typ": "JWT"}
        return [
            jwt.encode(claims | {"jti": str(uuid.uuid4())}, self.cds_key, algorithm="ES384", headers=headers)
            for _ in range(count)
        ]


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
