"""Fixtures for the CRD service tests: signing keys, an EHR-side FHIR server (httpx MockTransport),
hook request builders and an in-process app."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import types
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

from cds_hooks import CdsClientVerifier, CdsServices, InMemoryFeedbackSink, InMemoryJtiStore, TrustedIssuer
from cds_hooks.policies import DEMO_POLICY_DIR
from cds_hooks.policy import load_policies
from cds_hooks.urls import SID_NPI, SID_PAYER_ID
from server.api.cds_hooks import build_router
from server.errors import install_error_handlers

T = TypeVar("T")
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
BASE = "https://crd.test"
EHR = "https://ehr.test/fhir"
ISS = "https://ehr.test"
JKU = "https://ehr.test/.well-known/jwks.json"
TOKEN = "ehr-access-token"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def ig_dir() -> Path:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw or not Path(raw).is_dir():
        pytest.skip("PRIORGATE_IG_PATH is not set")
    return Path(raw)


# -- FHIR content ----------------------------------------------------------------------------------

PATIENT = {"resourceType": "Patient", "id": "pat1", "gender": "female", "birthDate": "1960-04-12"}
COVERAGE = {
    "resourceType": "Coverage",
    "id": "cov1",
    "status": "active",
    "beneficiary": {"reference": "Patient/pat1"},
    "payor": [
        {"identifier": {"system": SID_PAYER_ID, "value": "PGDEMO"}, "display": "PriorGate Demo Health Plan"}
    ],
    "class": [
        {
            "type": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan"}]
            },
            "value": "gold",
        }
    ],
}
ENCOUNTER = {"resourceType": "Encounter", "id": "enc1", "status": "in-progress", "class": {"code": "AMB"}}
PRACTITIONER = {
    "resourceType": "Practitioner",
    "id": "prac1",
    "identifier": [{"system": SID_NPI, "value": "1111111112"}],
}


def bundle(*resources: dict[str, Any], kind: str = "searchset") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"fullUrl": f"{EHR}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }


def service_request(rid: str, system: str, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/pat1"},
        "requester": {"reference": "Practitioner/prac1"},
        **extra,
    }


def device_request(rid: str, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "DeviceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "codeCodeableConcept": {"coding": [{"system": HCPCS, "code": code}]},
        "subject": {"reference": "Patient/pat1"},
        "requester": {"reference": "Practitioner/prac1"},
        **extra,
    }


def medication_request(rid: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": HCPCS, "code": "J1745"}]},
        "subject": {"reference": "Patient/pat1"},
        "requester": {"reference": "Practitioner/prac1"},
        "reasonCode": [{"coding": [{"system": ICD10, "code": "K50.90"}]}],
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "wk"}}}],
        "dispenseRequest": {"quantity": {"value": 50.0, "unit": "10 mg"}},
        **extra,
    }


# -- the EHR's FHIR server -------------------------------------------------------------------------


@dataclass
class FhirServer:
    """A tiny FHIR server behind httpx.MockTransport: reads, `_id` and `patient` searches."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    fail: bool = False
    jwks: dict[str, Any] = field(default_factory=dict)
    token: str = TOKEN

    def add(self, *resources: dict[str, Any]) -> None:
        for r in resources:
            self.resources[f"{r['resourceType']}/{r['id']}"] = r

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        if url == JKU:
            return httpx.Response(200, json=self.jwks)
        if self.fail:
            return httpx.Response(503, json={"resourceType": "OperationOutcome", "issue": []})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401)
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) >= 2 and segments[-2][:1].isupper():
            found = self.resources.get("/".join(segments[-2:]))
            return httpx.Response(200, json=found) if found else httpx.Response(404)
        path = segments[-1]
        query = parse_qs(parts.query)
        matches = [r for k, r in self.resources.items() if k.startswith(path + "/")]
        if "_id" in query:
            ids = query["_id"][0].split(",")
            matches = [r for r in matches if r["id"] in ids]
        if "patient" in query:
            pid = query["patient"][0]
            matches = [
                r
                for r in matches
                if pid in json.dumps(r.get("subject") or r.get("beneficiary") or r.get("patient") or {})
            ]
        return httpx.Response(200, json=bundle(*matches))


# -- keys and tokens -------------------------------------------------------------------------------


@dataclass
class Keys:
    ec: ec.EllipticCurvePrivateKey
    rsa: rsa.RSAPrivateKey

    def jwks(self) -> dict[str, Any]:
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        return {
            "keys": [{**ec_jwk, "kid": "ec1", "alg": "ES384"}, {**rsa_jwk, "kid": "rsa1", "alg": "RS384"}]
        }

    def token(
        self,
        aud: str,
        *,
        alg: str = "ES384",
        kid: str | None = None,
        exp_in: int = 300,
        iat_offset: int = 0,
        jti: str | None = None,
        jku: str | None = JKU,
        iss: str = ISS,
    ) -> str:
        now = int(NOW.timestamp())
        claims = {
            "iss": iss,
            "aud": aud,
            "exp": now + exp_in,
            "iat": now + iat_offset,
            "jti": jti or str(uuid.uuid4()),
        }
        headers: dict[str, Any] = {"typ": "JWT", "kid": kid or ("ec1" if alg.startswith("ES") else "rsa1")}
        if jku:
            headers["jku"] = jku
        key: Any = self.ec if alg.startswith("ES") else self.rsa
        return jwt.encode(claims, key, algorithm=alg, headers=headers)


_KEYS: Keys | None = None


@pytest.fixture(scope="session")
def keys() -> Keys:
    global _KEYS  # noqa: PLW0603 - generating RSA keys is slow; once per session
    if _KEYS is None:
        _KEYS = Keys(ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048))
    return _KEYS


@pytest.fixture(scope="session")
def policies() -> Any:
    return load_policies(DEMO_POLICY_DIR)


@pytest.fixture
def fhir(keys: Keys) -> FhirServer:
    server = FhirServer(jwks=keys.jwks())
    server.add(PATIENT, COVERAGE, ENCOUNTER, PRACTITIONER)
    return server


@dataclass
class Crd:
    services: CdsServices
    fhir: FhirServer
    keys: Keys
    feedback: InMemoryFeedbackSink
    app: FastAPI
    results: list[Any]
    callers: list[Any]

    async def post(
        self, path: str, body: Any, *, token: str | None = "auto", raw: bytes | None = None
    ) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if token == "auto":
            token = self.keys.token(f"{BASE}{path}")
        if token:
            headers["authorization"] = f"Bearer {token}"
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            content = raw if raw is not None else json.dumps(body).encode()
            response = await client.post(path, content=content, headers=headers)
        if response.status_code == 200 and not path.endswith("/feedback"):
            self._check_card_rules(path, json.loads(content), response.json())
        return response

    def _check_card_rules(self, path: str, request: Any, response: Any) -> None:
        """Every successful hook response in every test obeys the card and systemAction rules."""
        from cds_hooks import negotiate_version, response_problems

        version = negotiate_version((request.get("extension") or {}).get("davinci-crd.requestedVersion"))
        spec = self.services.spec(path.rsplit("/", 1)[-1])
        problems = response_problems(response, version, primary=spec.primary)
        assert problems == [], problems

    async def get(self, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return await client.get(path)

    def call(self, service: str, body: Any, **kw: Any) -> httpx.Response:
        return run(self.post(f"/cds-services/{service}", body, **kw))


def make_crd(policies: Any, fhir: FhirServer, keys: Keys, *, development_mode: bool = False) -> Crd:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fhir.handler))
    sink = InMemoryFeedbackSink()
    services = CdsServices(policies, http_client=client, now=lambda: NOW, feedback_sink=sink)
    verifier = CdsClientVerifier(
        [TrustedIssuer(ISS, allowed_jku=frozenset({JKU}))], client, InMemoryJtiStore(), lambda: NOW
    )
    results: list[Any] = []
    callers: list[Any] = []

    async def keep(result: Any, caller: Any) -> None:
        results.append(result)
        callers.append(caller)

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(
        build_router(
            services,
            verifier=None if development_mode else verifier,
            development_mode=development_mode,
            on_result=keep,
        )
    )
    return Crd(services, fhir, keys, sink, app, results, callers)


@pytest.fixture
def crd(policies: Any, fhir: FhirServer, keys: Keys) -> Crd:
    return make_crd(policies, fhir, keys)


# -- hook requests ---------------------------------------------------------------------------------


def hook_request(
    hook: str,
    context: dict[str, Any],
    *,
    prefetch: dict[str, Any] | None = None,
    version: str | None = "2.2",
    configuration: dict[str, Any] | None = None,
    fhir_server: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if fhir_server:
        body["fhirServer"] = EHR
        body["fhirAuthorization"] = {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 30,
            "scope": "user/Patient.read user/Coverage.read",
            "subject": "priorgate",
        }
    if prefetch is not None:
        body["prefetch"] = prefetch
    extension: dict[str, Any] = {}
    if version:
        extension["davinci-crd.requestedVersion"] = version
    if configuration is not None:
        extension["davinci-crd.configuration"] = configuration
    if extension:
        body["extension"] = extension
    return body


def full_prefetch() -> dict[str, Any]:
    return {"patient": PATIENT, "coverage": bundle(COVERAGE), "encounter": ENCOUNTER}


def order_sign(*orders: dict[str, Any], prefetch: bool = True, **kw: Any) -> dict[str, Any]:
    context = {
        "userId": "Practitioner/prac1",
        "patientId": "pat1",
        "encounterId": "enc1",
        "draftOrders": bundle(*orders, kind="collection"),
    }
    return hook_request("order-sign", context, prefetch=full_prefetch() if prefetch else None, **kw)


def coverage_information(resource: dict[str, Any]) -> dict[str, Any]:
    """The coverage-information extension of a returned resource, as a {url: [values]} dict."""
    from cds_hooks.urls import EXT_COVERAGE_INFORMATION

    found = [e for e in resource.get("extension", []) if e["url"] == EXT_COVERAGE_INFORMATION]
    assert len(found) == 1, found
    out: dict[str, list[Any]] = {}
    for sub in found[0]["extension"]:
        value = next((v for k, v in sub.items() if k.startswith("value")), sub.get("extension"))
        out.setdefault(sub["url"], []).append(value)
    return out


Factory = Callable[..., Crd]


@pytest.fixture(scope="session")
def kit() -> types.ModuleType:
    """This module, so tests reach the builders above (tests run in importlib mode)."""
    return sys.modules[__name__]
