"""The secured application (create_app in PRIORGATE_AUTH_MODE=local) on SQLite and PostgreSQL: every
protected route refuses anonymous calls, each kind of bad token is refused, scopes are enforced, tenants
never see each other's resources (by id, search, _include, $inquire), AuditEvents are recorded and only
auditors read them, and nobody changes them through the API."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from starlette.testclient import TestClient

from conformance.suites import pas_server
from server.app import create_app
from server.security.backend_client import fetch_token
from server.security.clients import dump_clients, register_client
from server.security.config import SecuritySettings
from server.security.keys import SigningKey, generate_private_key, load_private_key_pem, public_jwk
from server.settings import Settings
from server.storage.engine import make_engine as create_engine_for
from server.storage.schema import pas_outbox

BASE = "http://testserver"
TOKEN_URL = BASE + "/auth/token"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
SUBMITTER = "system/Claim.crs system/ClaimResponse.rs system/Patient.cruds system/Subscription.cruds"

CLIENTS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    # client_id: tenants, scopes, roles
    "clinic-a": (("org-a",), SUBMITTER, ()),
    "clinic-b": (("org-b",), SUBMITTER, ()),
    "auditor": (("payer",), "system/AuditEvent.rs", ("auditor",)),
    "admin": (("payer",), "system/*.cruds", ("admin",)),
    "reviewer": (("payer",), "system/*.rs system/ClaimResponse.cu", ("reviewer",)),
}


@dataclass(frozen=True)
class Keys:
    by_client: dict[str, SigningKey]
    folder: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("security")
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
    return Keys(by_client, folder)


@dataclass
class Secured:
    http: TestClient
    keys: Keys
    clock: Any

    def token(self, client_id: str, scope: str | None = None) -> str:
        body = fetch_token(
            client_id,
            self.keys.by_client[client_id],
            token_url=TOKEN_URL,
            scope=scope or CLIENTS[client_id][1],
            now=self.clock(),
            http=self.http,
        )
        assert "access_token" in body, body
        return str(body["access_token"])

    def as_(self, client_id: str, scope: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(client_id, scope)}"}


@pytest.fixture
def secured(database_url: str, clock: Any, keys: Keys) -> Iterator[Secured]:
    settings = Settings(database_url=database_url, demo_content=False, base_url=BASE)
    security = SecuritySettings(
        auth_mode="local",
        security_dir=keys.folder,
        clients_file=keys.folder / "clients.json",
        demo_clients=False,
    )
    with TestClient(create_app(settings, now=clock, security=security), base_url=BASE) as http:
        yield Secured(http, keys, clock)


def _issue(response: Any) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0].get("diagnostics", ""))


# -- anonymous callers ---------------------------------------------------------------------------------

PUBLIC = {"/fhir/metadata", "/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"}
# CDS JWTs; OAuth; API docs; payer staff pages (their own sign-in and session cookie); public CMS metrics
OWN_AUTHENTICATION = ("/cds-services", "/auth/", "/docs", "/openapi.json", "/ops", "/metrics/cms-0057")


def test_every_protected_route_refuses_anonymous_calls(secured: Secured) -> None:
    checked = 0
    paths = secured.http.app.openapi()["paths"]  # type: ignore[attr-defined]
    for route_path, operations in paths.items():
        if route_path in PUBLIC or route_path.startswith(OWN_AUTHENTICATION):
            continue
        path = re.sub(r"\{version\}", "2.2.1", route_path)
        path = re.sub(r"\{[a-z_]+\}", "Patient", path)
        for method in operations:
            answer = secured.http.request(method.upper(), path, headers=FHIR_JSON, content=b"{}")
            assert answer.status_code == 401, f"{method} {route_path} answered {answer.status_code}"
            assert answer.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked > 30
    statement = secured.http.get("/fhir/metadata").json()
    assert statement["rest"][0]["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    smart = secured.http.get("/.well-known/smart-configuration").json()
    assert smart["token_endpoint"] == TOKEN_URL
    assert "private_key_jwt" in smart["token_endpoint_auth_methods_supported"]
    assert secured.http.get("/cds-services").status_code == 200  # discovery is public
    staff_page = secured.http.get("/ops/queue", follow_redirects=False)  # staff sign in first
    assert staff_page.status_code in (302, 303) and "/ops/login" in staff_page.headers["location"]
    assert secured.http.get("/metrics/cms-0057.json").status_code == 200  # public, as CMS-0057-F requires


# -- tokens --------------------------------------------------------------------------------------------


def _claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _server_key(keys: Keys) -> SigningKey:
    path = keys.folder / "token-signing-key.pem"
    return SigningKey.of(load_private_key_pem(path.read_bytes(), source=str(path)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _handmade(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return signing_input + "." + _b64(signature)


def _refused(secured: Secured, token: str) -> str:
    answer = secured.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    return _issue(answer)


def test_a_valid_token_is_accepted(secured: Secured) -> None:
    assert secured.http.get("/fhir/Patient", headers=secured.as_("clinic-a")).status_code == 200


def test_missing_and_malformed_authorization_are_401(secured: Secured) -> None:
    assert secured.http.get("/fhir/Patient").status_code == 401
    assert secured.http.get("/fhir/Patient", headers={"Authorization": "Basic abc"}).status_code == 401
    assert secured.http.get("/fhir/Patient", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401


def test_an_expired_token_is_401(secured: Secured) -> None:
    token = secured.token("clinic-a")
    fine = secured.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert fine.status_code == 200  # verified once, then remembered until it expires
    secured.clock.current += timedelta(minutes=10)  # access tokens live 5 minutes
    _refused(secured, token)


def test_a_token_for_another_audience_is_401(secured: Secured) -> None:
    claims = _claims_of(secured.token("clinic-a")) | {"aud": "https://elsewhere.example.org/fhir"}
    key = _server_key(secured.keys)
    forged = jwt.encode(
        claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "at+jwt"}
    )
    _refused(secured, forged)


def test_alg_none_is_401(secured: Secured) -> None:
    claims = _claims_of(secured.token("clinic-a"))
    kid = _server_key(secured.keys).kid
    _refused(secured, _handmade({"alg": "none", "typ": "at+jwt", "kid": kid}, claims, None))


def test_hs256_signed_with_the_public_key_is_401(secured: Secured) -> None:
    claims = _claims_of(secured.token("clinic-a"))
    key = _server_key(secured.keys)
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _refused(secured, _handmade({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, claims, public_pem))


def test_an_unknown_kid_is_401(secured: Secured) -> None:
    claims = _claims_of(secured.token("clinic-a"))
    stranger = SigningKey.of(generate_private_key("ES256"), "ES256")
    forged = jwt.encode(
        claims, stranger.private_key, algorithm="ES256", headers={"kid": "unknown", "typ": "at+jwt"}
    )
    _refused(secured, forged)


def test_a_replayed_client_assertion_is_refused(secured: Secured) -> None:
    from server.security.backend_client import token_request_form

    form = token_request_form(
        "clinic-a", secured.keys.by_client["clinic-a"], TOKEN_URL, SUBMITTER, secured.clock()
    )
    first = secured.http.post(TOKEN_URL, data=form)
    assert first.status_code == 200 and "access_token" in first.json()
    again = secured.http.post(TOKEN_URL, data=form)
    assert again.status_code in (400, 401)
    assert "access_token" not in again.json() and again.json()["error"] in ("invalid_client", "invalid_grant")


def test_a_scope_that_does_not_cover_the_call_is_403(secured: Secured) -> None:
    narrow = secured.as_("clinic-a", "system/Patient.rs")
    assert secured.http.get("/fhir/Patient", headers=narrow).status_code == 200
    refused = secured.http.get("/fhir/Claim", headers=narrow)
    assert refused.status_code == 403 and "insufficient_scope" in refused.headers["www-authenticate"]
    assert (
        secured.http.post(
            "/fhir/Patient", json={"resourceType": "Patient"}, headers=narrow | FHIR_JSON
        ).status_code
        == 403
    )
    bundle = pas_server.request_bundle("SCOPE-1")
    assert (
        secured.http.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=narrow | FHIR_JSON).status_code
        == 403
    )
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Claim"}, "request": {"method": "POST", "url": "Claim"}}],
    }
    assert secured.http.post("/fhir", json=transaction, headers=narrow | FHIR_JSON).status_code == 403
    # v1 scopes keep working: system/*.read covers a read
    assert CLIENTS["admin"][2] == ("admin",)
    assert secured.http.get("/fhir/Claim", headers=secured.as_("admin", "system/*.read")).status_code == 200


# -- tenants -------------------------------------------------------------------------------------------


def _create(secured: Secured, headers: dict[str, str], body: dict[str, Any]) -> str:
    answer = secured.http.post(f"/fhir/{body['resourceType']}", json=body, headers=headers | FHIR_JSON)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_a_tenant_never_reads_another_tenants_resources(secured: Secured) -> None:
    a, b = secured.as_("clinic-a"), secured.as_("clinic-b")
    patient = _create(secured, a, {"resourceType": "Patient", "name": [{"family": "Alpha"}]})
    claim = _create(
        secured,
        a,
        {"resourceType": "Claim", "status": "active", "patient": {"reference": f"Patient/{patient}"}},
    )
    # A sees its own, with _include
    own = secured.http.get("/fhir/Claim?_include=Claim:patient", headers=a).json()
    assert {e["resource"]["id"] for e in own["entry"]} == {claim, patient}

    # by id: 404, exactly as for an id nobody uses
    for path in (
        f"/fhir/Patient/{patient}",
        f"/fhir/Claim/{claim}",
        f"/fhir/Patient/{patient}/_history",
        f"/fhir/Patient/{patient}/_history/1",
    ):
        answer = secured.http.get(path, headers=b)
        assert answer.status_code == 404, path
    unknown = secured.http.get("/fhir/Patient/no-such-id", headers=b)
    assert _issue(secured.http.get(f"/fhir/Patient/{patient}", headers=b)).replace(patient, "X") == _issue(
        unknown
    ).replace("no-such-id", "X")
    assert secured.http.delete(f"/fhir/Patient/{patient}", headers=b).status_code == 404

    # by search, also by _id, with totals and paging counted in SQL
    for query in (
        "/fhir/Patient",
        f"/fhir/Patient?_id={patient}",
        "/fhir/Claim?_total=accurate",
        "/fhir/Patient?family=Alpha",
        f"/fhir/Claim?patient=Patient/{patient}",
        "/fhir/Claim?patient.family=Alpha",
    ):
        found = secured.http.get(query, headers=b).json()
        assert not found.get("entry"), query
        assert found.get("total", 0) == 0, query
    assert not secured.http.get("/fhir/Patient/_history", headers=b).json().get("entry")

    # by _include / _revinclude from B's own resource pointing at A's Patient
    own_claim = _create(
        secured,
        b,
        {"resourceType": "Claim", "status": "active", "patient": {"reference": f"Patient/{patient}"}},
    )
    included = secured.http.get("/fhir/Claim?_include=Claim:patient", headers=b).json()
    assert [e["resource"]["id"] for e in included["entry"]] == [own_claim]
    b_patient = _create(secured, b, {"resourceType": "Patient"})
    rev = secured.http.get(f"/fhir/Patient?_id={b_patient}&_revinclude=Claim:patient", headers=b).json()
    assert [e["resource"]["id"] for e in rev["entry"]] == [b_patient]

    # paging stays right: A pages through its two Patients' worth of results only
    _create(secured, a, {"resourceType": "Patient"})
    page = secured.http.get("/fhir/Patient?_count=1&_total=accurate", headers=a).json()
    assert page["total"] == 2 and len(page["entry"]) == 1


def test_inquire_of_another_tenant_finds_nothing(secured: Secured) -> None:
    a, b = secured.as_("clinic-a"), secured.as_("clinic-b")
    bundle = pas_server.request_bundle("TENANT-1", ("72148",))
    submitted = secured.http.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=a | FHIR_JSON)
    assert submitted.status_code == 200, submitted.text
    inquiry = copy.deepcopy(bundle)
    inquiry["meta"] = {"profile": [PAS + "profile-pas-inquiry-request-bundle"]}
    inquiry["entry"][0]["resource"]["meta"] = {"profile": [PAS + "profile-claim-inquiry"]}
    inquiry["entry"][0]["resource"]["identifier"][0]["value"] = "TENANT-1-Q"

    def returned(headers: dict[str, str]) -> list[Any]:
        answer = secured.http.post("/pas/2.2.1/Claim/$inquire", json=inquiry, headers=headers | FHIR_JSON)
        assert answer.status_code == 200, answer.text
        return [p for p in answer.json().get("parameter", []) if p["name"] == "return"]

    assert len(returned(a)) == 1
    assert returned(b) == []
    default = secured.http.post("/fhir/Claim/$inquire", json=inquiry, headers=b | FHIR_JSON)
    assert default.status_code == 200
    assert [p for p in default.json().get("parameter", []) if p["name"] == "return"] == []
    # the Claim and ClaimResponse $submit stored are A's: B cannot find them under /fhir either
    assert secured.http.get("/fhir/ClaimResponse", headers=a).json()["entry"]
    assert not secured.http.get("/fhir/ClaimResponse", headers=b).json().get("entry")
    # the review queue: A sees its pended item, B none, the reviewer every organization's
    assert secured.http.get("/pas/review", headers=b).json() == []
    queue = secured.http.get("/pas/review", headers=secured.as_("reviewer")).json()
    assert len(queue) == 1 and len(secured.http.get("/pas/review", headers=a).json()) == 1
    decision = {"reviewer": {"id": "rev-1"}, "decisions": [{"itemSequence": 1, "action": "approve"}]}
    assert (
        secured.http.post(f"/pas/review/{queue[0]['id']}/decision", json=decision, headers=a).status_code
        == 403
    )
    decided = secured.http.post(
        f"/pas/review/{queue[0]['id']}/decision", json=decision, headers=secured.as_("reviewer")
    )
    assert decided.status_code == 200, decided.text
    # the decided ClaimResponse stays A's
    responses = secured.http.get("/fhir/ClaimResponse", headers=a).json()["entry"]
    assert responses[0]["resource"]["outcome"] == "complete"
    trail = secured.http.get("/fhir/AuditEvent?_count=200", headers=secured.as_("auditor")).json()
    decisions = [e for e in trail["entry"] if e["resource"]["type"]["code"] != "rest"]
    queue_reads = [e for e in trail["entry"] if "pas/review" in json.dumps(e["resource"].get("entity", []))]
    assert len(queue_reads) == 3  # the reviewer's, A's and B's looks at the queue
    assert (
        len(decisions) == 1
        and decisions[0]["resource"]["agent"][0]["who"]["identifier"]["value"] == "reviewer"
    )


def test_subscriptions_belong_to_their_organization_and_hear_only_its_results(
    database_url: str, clock: Any, keys: Keys
) -> None:
    settings = Settings(
        database_url=database_url, demo_content=False, base_url=BASE, notification_worker=False
    )
    security = SecuritySettings(
        auth_mode="local",
        security_dir=keys.folder,
        clients_file=keys.folder / "clients.json",
        demo_clients=False,
    )
    with TestClient(create_app(settings, now=clock, security=security), base_url=BASE) as http:
        secured = Secured(http, keys, clock)
        a, b, reviewer = secured.as_("clinic-a"), secured.as_("clinic-b"), secured.as_("reviewer")
        body = pas_server.subscription("https://ehr-a.example.org/hook", "2.2.1")
        created = http.post("/pas/2.2.1/Subscription", json=body, headers=a | FHIR_JSON)
        assert created.status_code == 201, created.text
        url = f"/pas/2.2.1/Subscription/{created.json()['id']}"
        assert http.get(url, headers=a).status_code == 200
        assert http.get(url, headers=b).status_code == 404
        assert http.get(url + "/$status", headers=b).status_code == 404
        assert http.delete(url, headers=b).status_code == 404
        assert http.get("/pas/2.2.1/Subscription", headers=b).json()["total"] == 0
        assert http.get("/pas/2.2.1/Subscription", headers=a).json()["total"] == 1
        # B subscribes with the same org filter, but results of A's requests are A's business
        assert http.post("/pas/2.2.1/Subscription", json=body, headers=b | FHIR_JSON).status_code == 201
        bundle = pas_server.request_bundle("TENANT-SUB", ("72148",))
        assert http.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=a | FHIR_JSON).status_code == 200
        (item,) = http.get("/pas/review", headers=reviewer).json()
        decision = {"reviewer": {"id": "rev-1"}, "decisions": [{"itemSequence": 1, "action": "approve"}]}
        decided = http.post(f"/pas/review/{item['id']}/decision", json=decision, headers=reviewer)
        assert decided.status_code == 200, decided.text
        engine = create_engine_for(database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(pas_outbox.c.tenant).where(pas_outbox.c.kind == "event-notification")
                ).all()
        finally:
            engine.dispose()
        assert [row.tenant for row in rows] == ["org-a"]
        # the X12 exchange log and a legacy payer's late answers are for payer staff only
        assert http.get("/pas/submissions/unknown/x12", headers=a).status_code == 403
        assert http.get("/pas/submissions/unknown/x12", headers=reviewer).status_code == 404


# -- audit ---------------------------------------------------------------------------------------------


def test_audit_events_record_calls_and_only_auditors_read_them(secured: Secured) -> None:
    a = secured.as_("clinic-a")
    patient = _create(secured, a, {"resourceType": "Patient"})
    assert secured.http.get(f"/fhir/Patient/{patient}", headers=a).status_code == 200
    assert secured.http.get("/fhir/Claim").status_code == 401
    assert secured.http.get("/fhir/AuditEvent", headers=a).status_code == 403  # no scope

    trail = secured.http.get("/fhir/AuditEvent?_count=200", headers=secured.as_("auditor")).json()
    events = [e["resource"] for e in trail["entry"]]
    seen = {
        (e["subtype"][0]["code"], e["outcome"], e["agent"][0]["who"].get("identifier", {}).get("value"))
        for e in events
    }
    assert ("create", "0", "clinic-a") in seen
    assert ("read", "0", "clinic-a") in seen
    assert ("search-type", "4", None) in seen  # the anonymous search, refused
    read = next(e for e in events if e["subtype"][0]["code"] == "read")
    assert read["entity"][0]["what"]["reference"] == f"Patient/{patient}"
    assert read["agent"][0]["network"]["address"]
    assert read["recorded"]

    # searchable like any resource: the refusals only
    refusals = secured.http.get("/fhir/AuditEvent?outcome=4", headers=secured.as_("auditor")).json()
    assert refusals["entry"] and all(e["resource"]["outcome"] == "4" for e in refusals["entry"])

    # an admin with every scope still cannot change the trail
    admin = secured.as_("admin")
    event_id = events[0]["id"]
    assert secured.http.get(f"/fhir/AuditEvent/{event_id}", headers=admin).status_code == 200
    assert secured.http.post("/fhir/AuditEvent", json=events[0], headers=admin | FHIR_JSON).status_code == 405
    assert (
        secured.http.put(
            f"/fhir/AuditEvent/{event_id}", json=events[0], headers=admin | FHIR_JSON
        ).status_code
        == 405
    )
    assert secured.http.delete(f"/fhir/AuditEvent/{event_id}", headers=admin).status_code == 405
    # a submitter never finds them, even with an AuditEvent scope granted at registration it lacks
    assert secured.http.get(f"/fhir/AuditEvent/{event_id}", headers=a).status_code == 403


# -- external authorization server ---------------------------------------------------------------------

IDP = "https://idp.example.org"


def test_external_mode_trusts_the_configured_issuer_only(
    database_url: str, clock: Any, tmp_path: Path
) -> None:
    import httpx

    idp_key = SigningKey.of(generate_private_key("ES384"), "ES384")
    jwks_calls: list[str] = []

    def jwks(request: httpx.Request) -> httpx.Response:
        jwks_calls.append(str(request.url))
        return httpx.Response(200, json={"keys": [idp_key.public_jwk]})

    settings = Settings(database_url=database_url, demo_content=False, base_url=BASE)
    security = SecuritySettings(
        auth_mode="external",
        security_dir=tmp_path,
        external_issuer=IDP,
        external_jwks_url=IDP + "/jwks",
        external_token_endpoint=IDP + "/token",
    )
    outbound = httpx.AsyncClient(transport=httpx.MockTransport(jwks))
    app = create_app(settings, now=clock, security=security, http=outbound)

    def token(key: SigningKey = idp_key, **overrides: Any) -> dict[str, str]:
        now = int(clock().timestamp())
        claims = {
            "iss": IDP,
            "aud": BASE + "/fhir",
            "sub": "svc-1",
            "client_id": "partner-ehr",
            "iat": now,
            "exp": now + 300,
            "jti": f"ext-{now}",
            "scope": "system/Patient.cruds",
            "tenants": ["org-x"],
        } | overrides
        signed = jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})
        return {"Authorization": f"Bearer {signed}"}

    with TestClient(app, base_url=BASE) as http:
        smart = http.get("/.well-known/smart-configuration").json()
        assert smart["token_endpoint"] == IDP + "/token"
        assert http.post(TOKEN_URL, data={}).status_code in (404, 405)  # PriorGate issues no tokens here
        created = http.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=token() | FHIR_JSON)
        assert created.status_code == 201
        patient = created.json()["id"]
        assert http.get(f"/fhir/Patient/{patient}", headers=token()).status_code == 200
        assert http.get(f"/fhir/Patient/{patient}", headers=token(tenants=["org-y"])).status_code == 404
        assert http.get("/fhir/Patient", headers=token(iss="https://evil.example.org")).status_code == 401
        assert http.get("/fhir/Patient", headers=token(aud="https://other/fhir")).status_code == 401
        stranger = SigningKey.of(generate_private_key("ES384"), "ES384")
        assert http.get("/fhir/Patient", headers=token(stranger)).status_code == 401
        assert http.get("/fhir/Claim", headers=token()).status_code == 403
        assert http.get("/fhir/Patient").status_code == 401
    assert jwks_calls and all(url == IDP + "/jwks" for url in jwks_calls)


def test_tokens_and_assertions_never_reach_the_logs(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from server.security.backend_client import token_request_form

    with caplog.at_level(logging.DEBUG):
        form = token_request_form(
            "clinic-a", secured.keys.by_client["clinic-a"], TOKEN_URL, SUBMITTER, secured.clock()
        )
        token = secured.http.post(TOKEN_URL, data=form).json()["access_token"]
        secured.http.post(TOKEN_URL, data=form)  # replayed: refused
        secured.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
        secured.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}x"})  # refused
    text = caplog.text
    assert form["client_assertion"] not in text
    assert token not in text and token.split(".")[2] not in text


def test_cds_hooks_calls_are_audited_with_their_patient(database_url: str, clock: Any, keys: Keys) -> None:
    settings = Settings(
        database_url=database_url, demo_content=False, base_url=BASE, cds_development_mode=True
    )
    security = SecuritySettings(
        security_dir=keys.folder, clients_file=keys.folder / "clients.json", demo_clients=False
    )
    with TestClient(create_app(settings, now=clock, security=security), base_url=BASE) as http:
        secured = Secured(http, keys, clock)
        service = next(
            s["id"] for s in http.get("/cds-services").json()["services"] if s["hook"] == "order-sign"
        )
        hook = {
            "hook": "order-sign",
            "hookInstance": "0d3f1c9e-0000-4000-8000-000000000001",
            "context": {
                "userId": "Practitioner/prac1",
                "patientId": "pat9",
                "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []},
            },
        }
        answered = http.post(f"/cds-services/{service}", json=hook)
        trail = http.get("/fhir/AuditEvent?_count=200", headers=secured.as_("auditor")).json()
    hooks = [
        e["resource"]
        for e in trail["entry"]
        if any(c["code"] == f"$cds-hooks:{service}" for c in e["resource"].get("subtype", []))
    ]
    assert len(hooks) == 1
    event = hooks[0]
    assert {"reference": "Patient/pat9"} in [e.get("what") for e in event["entity"]]
    assert event["outcome"] == ("0" if answered.status_code < 400 else "4")
    assert event["agent"][0]["who"] == {"display": "unauthenticated"}  # development mode: no client JWT


def test_a_verified_hook_client_is_named_in_the_audit_record() -> None:
    from server.security.audit_hooks import hook_client

    token = jwt.encode(
        {"iss": "https://ehr.example.org", "sub": "ehr-client", "jti": "j-1", "tenant": "org-a"},
        "a-secret-long-enough-for-hs256-signing",
        algorithm="HS256",
    )
    principal = hook_client(f"Bearer {token}")
    assert principal is not None
    assert (principal.client_id, principal.issuer, principal.token_id) == (
        "ehr-client",
        "https://ehr.example.org",
        "j-1",
    )
    assert principal.tenants == frozenset({"org-a"})
    assert hook_client(None) is None and hook_client("Bearer nonsense") is None
