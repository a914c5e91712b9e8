"""PriorGate's own SMART App Launch for patients (standalone launch) on SQLite and PostgreSQL, end to end
over HTTP against the in-process app: discovery, the sign-in and approval page (CSRF), the authorization
code with PKCE S256, the patient-context token reading only the patient's own record, refresh token
rotation, and the security properties (redirect URI, aud, PKCE, expiry, reuse, wrong password, audit)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import orjson
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from server.app import create_app
from server.app_launch.accounts import AccountStore, new_account
from server.app_launch.apps import PatientApps, dump_apps, new_secret, register_app
from server.ops.auth import Passwords, Role
from server.search.definitions import load_registry
from server.security.assertions import sign_client_assertion
from server.security.config import SecuritySettings
from server.security.keys import SigningKey, generate_private_key, public_jwk
from server.settings import Settings
from server.storage.engine import make_engine
from server.storage.repository import Repository
from server.storage.schema import resource_version

BASE = "http://testserver"
FHIR = BASE + "/fhir"
APP_REDIRECT = "https://app.example.org/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"
PASSWORD = "correct horse battery staple"
SECRET, SECRET_SHA256 = new_secret()
APP_KEY = SigningKey.of(generate_private_key("ES384"), "ES384")


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def apps_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("app-launch")
    apps = [
        register_app("pha", redirect_uris=[APP_REDIRECT], scopes=SCOPE, name="Prior Auth Viewer"),
        register_app(
            "pha-confidential",
            redirect_uris=[APP_REDIRECT],
            scopes=SCOPE,
            client_type="confidential",
            secret_sha256=SECRET_SHA256,
        ),
        register_app(
            "pha-keys",
            redirect_uris=[APP_REDIRECT],
            scopes=SCOPE,
            client_type="confidential",
            jwks={"keys": [public_jwk(APP_KEY.private_key, "ES384")]},
        ),
    ]
    path = folder / "patient-apps.json"
    path.write_bytes(dump_apps(apps))
    return path


@dataclass
class Launch:
    http: TestClient
    clock: Any
    database_url: str
    patient_id: str
    other_patient_id: str

    def authorize_url(self, **overrides: str) -> tuple[str, dict[str, str]]:
        verifier = secrets.token_urlsafe(48)
        params = {
            "response_type": "code",
            "client_id": "pha",
            "redirect_uri": APP_REDIRECT,
            "scope": SCOPE,
            "state": secrets.token_urlsafe(12),
            "aud": FHIR,
            "code_challenge": challenge_of(verifier),
            "code_challenge_method": "S256",
            "nonce": "n-0S6_WzA2Mj",
        } | overrides
        return "/auth/authorize", params | {"_verifier": verifier}

    def page(self, params: dict[str, str]) -> tuple[Any, str]:
        query = {k: v for k, v in params.items() if not k.startswith("_")}
        answer = self.http.get("/auth/authorize", params=query, follow_redirects=False)
        found = re.search(r'name="csrf" value="([^"]+)"', answer.text)
        return answer, found.group(1) if found else ""

    def sign_in(
        self,
        params: dict[str, str],
        *,
        username: str = "pat@example.org",
        password: str = PASSWORD,
        decision: str = "allow",
    ) -> Any:
        _, csrf = self.page(params)
        form = {k: v for k, v in params.items() if not k.startswith("_")}
        form |= {"csrf": csrf, "username": username, "password": password, "decision": decision}
        return self.http.post("/auth/authorize", data=form, follow_redirects=False)

    def code(self, **overrides: str) -> tuple[str, dict[str, str]]:
        _, params = self.authorize_url(**overrides)
        answer = self.sign_in(params)
        assert answer.status_code == 303, answer.text
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["state"] == [params["state"]]
        return query["code"][0], params

    def token(self, form: dict[str, str], **kwargs: Any) -> Any:
        return self.http.post("/auth/token", data=form, **kwargs)

    def redeem(self, code: str, params: dict[str, str], **changes: str) -> Any:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
            "code_verifier": params["_verifier"],
            "client_id": params["client_id"],
        } | changes
        return self.token(form)

    def audit_events(self) -> list[dict[str, Any]]:
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(resource_version.c.raw).where(resource_version.c.resource_type == "AuditEvent")
                ).all()
        finally:
            engine.dispose()
        return [orjson.loads(r[0]) for r in rows]


@pytest.fixture
def launch(database_url: str, clock: Any, apps_file: Path, tmp_path: Path) -> Iterator[Launch]:
    engine = make_engine(database_url)
    repository = Repository(engine, load_registry(), now=clock).for_tenant("org-a")
    mine = repository.create("Patient", {"resourceType": "Patient", "name": [{"family": "Doe"}]}).stored.id
    other = repository.create("Patient", {"resourceType": "Patient", "name": [{"family": "Roe"}]}).stored.id
    account = new_account(
        "Pat@Example.org", tenant="org-a", patient_id=mine, password=PASSWORD, passwords=Passwords()
    )
    AccountStore(engine).add(account, clock())
    engine.dispose()
    settings = Settings(database_url=database_url, demo_content=False, base_url=BASE)
    security = SecuritySettings(
        auth_mode="local", security_dir=tmp_path, demo_clients=False, patient_apps_file=apps_file
    )
    with TestClient(create_app(settings, now=clock, security=security), base_url=BASE) as http:
        yield Launch(http, clock, database_url, mine, other)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_standalone_launch_end_to_end(launch: Launch) -> None:
    smart = launch.http.get("/fhir/.well-known/smart-configuration").json()
    assert smart["authorization_endpoint"] == BASE + "/auth/authorize"
    assert smart["token_endpoint"] == BASE + "/auth/token"
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        smart["grant_types_supported"]
    )
    assert {
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "context-standalone-patient",
        "permission-patient",
        "permission-v2",
        "permission-offline",
    } <= set(smart["capabilities"])
    assert "patient/*.rs" in smart["scopes_supported"]
    statement = launch.http.get("/fhir/metadata").json()
    uris = statement["rest"][0]["security"]["extension"][0]
    assert {e["url"]: e["valueUri"] for e in uris["extension"]} == {
        "authorize": BASE + "/auth/authorize",
        "token": BASE + "/auth/token",
    }

    _, params = launch.authorize_url()
    page, csrf = launch.page(params)
    assert page.status_code == 200 and csrf
    assert "Prior Auth Viewer" in page.text and "<script" not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    signed = launch.sign_in(params, username="  PAT@example.org ")
    assert signed.status_code == 303
    location = urlsplit(signed.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == APP_REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == [params["state"]]

    answer = launch.redeem(query["code"][0], params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["patient"] == launch.patient_id
    assert set(body["scope"].split()) == set(SCOPE.split())
    keys = launch.http.get("/auth/jwks").json()["keys"]
    key = jwt.PyJWK(keys[0])
    identity = jwt.decode(
        body["id_token"],
        key.key,
        algorithms=[key.algorithm_name],
        audience="pha",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert identity["fhirUser"] == f"{FHIR}/Patient/{launch.patient_id}"
    assert identity["iss"] == BASE and identity["sub"] == "pat@example.org"
    assert identity["nonce"] == params["nonce"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["patient"] == launch.patient_id and claims["tenants"] == ["org-a"]
    assert launch.http.get("/.well-known/openid-configuration").json()["issuer"] == BASE

    token = body["access_token"]
    own = launch.http.get(f"/fhir/Patient/{launch.patient_id}", headers=_bearer(token))
    assert own.status_code == 200 and own.json()["name"] == [{"family": "Doe"}]
    assert (
        launch.http.get(f"/fhir/Patient/{launch.other_patient_id}", headers=_bearer(token)).status_code == 404
    )
    patients = launch.http.get("/fhir/Patient", headers=_bearer(token))  # narrowed to the patient itself
    assert patients.status_code == 200
    assert [e["resource"]["id"] for e in patients.json().get("entry", [])] == [launch.patient_id]
    assert launch.http.get("/fhir/Claim", headers=_bearer(token)).status_code == 403
    eobs = launch.http.get("/fhir/ExplanationOfBenefit", headers=_bearer(token))  # Patient Access
    assert eobs.status_code == 200 and eobs.json()["resourceType"] == "Bundle"
    assert launch.http.post("/fhir/Claim/$submit", headers=_bearer(token)).status_code == 403
    assert launch.http.post("/pas/2.2.1/Claim/$inquire", headers=_bearer(token)).status_code == 403

    refreshed = launch.token(
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "pha"}
    )
    assert refreshed.status_code == 200, refreshed.text
    again = refreshed.json()
    assert again["patient"] == launch.patient_id and again["refresh_token"] != body["refresh_token"]
    assert (
        launch.http.get(
            f"/fhir/Patient/{launch.patient_id}", headers=_bearer(again["access_token"])
        ).status_code
        == 200
    )

    # Rotation with reuse detection: the old refresh token again revokes the whole grant.
    replayed = launch.token(
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "pha"}
    )
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    revoked = launch.token(
        {"grant_type": "refresh_token", "refresh_token": again["refresh_token"], "client_id": "pha"}
    )
    assert revoked.status_code == 400 and revoked.json()["error"] == "invalid_grant"

    events = launch.audit_events()
    steps = [(e["subtype"][0]["code"], e["outcome"]) for e in events if e["type"]["code"] != "rest"]
    assert ("110122", "0") in steps  # login
    assert ("authorization-code", "0") in steps and ("access-token", "0") in steps
    assert ("refresh", "0") in steps and ("refresh", "4") in steps
    assert all(PASSWORD not in str(e) and body["access_token"] not in str(e) for e in events)


def test_wrong_pkce_verifier_is_refused(launch: Launch) -> None:
    code, params = launch.code()
    answer = launch.redeem(code, params, code_verifier=secrets.token_urlsafe(48))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert "code_verifier" in answer.json()["error_description"]


def test_redirect_uri_mismatch_is_never_redirected(launch: Launch) -> None:
    _, params = launch.authorize_url(redirect_uri="https://evil.example.org/callback")
    page, _ = launch.page(params)
    assert page.status_code == 400 and "location" not in page.headers
    assert "redirect_uri is not registered" in page.text
    _, params = launch.authorize_url(client_id="nobody")
    page, _ = launch.page(params)
    assert page.status_code == 400 and "location" not in page.headers
    # At the token endpoint, a redirect_uri other than the authorization request's is refused.
    code, params = launch.code()
    answer = launch.redeem(code, params, redirect_uri=APP_REDIRECT + "?x=1")
    assert answer.json()["error"] == "invalid_grant"


def test_errors_after_the_redirect_uri_is_known_are_redirected(launch: Launch) -> None:
    for changes, error in (
        ({"aud": "https://elsewhere.example.org/fhir"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "system/*.rs"}, "invalid_scope"),
    ):
        _, params = launch.authorize_url(**changes)
        page, _ = launch.page(params)
        assert page.status_code == 303, changes
        query = parse_qs(urlsplit(page.headers["location"]).query)
        assert query["error"] == [error] and query["state"] == [params["state"]], changes


def test_a_patient_app_never_gets_system_or_user_scopes(launch: Launch) -> None:
    code, params = launch.code(scope="system/*.rs user/*.rs patient/Patient.rs openid")
    body = launch.redeem(code, params).json()
    assert body["scope"].split() == ["patient/Patient.rs", "openid"]
    assert "refresh_token" not in body  # no offline_access requested
    with pytest.raises(ValueError, match="patient/ scopes"):
        register_app("bad", redirect_uris=[APP_REDIRECT], scopes="system/*.rs patient/*.rs")


def test_an_expired_code_is_refused(launch: Launch) -> None:
    code, params = launch.code()
    launch.clock.current += timedelta(seconds=61)
    answer = launch.redeem(code, params)
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "the authorization code has expired",
    }


def test_a_reused_code_is_refused_and_revokes_its_tokens(launch: Launch) -> None:
    code, params = launch.code()
    first = launch.redeem(code, params)
    assert first.status_code == 200
    second = launch.redeem(code, params)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    refresh = launch.token(
        {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"], "client_id": "pha"}
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_a_wrong_password_shows_the_form_again_and_is_audited(launch: Launch) -> None:
    _, params = launch.authorize_url()
    wrong = launch.sign_in(params, password="not the password at all")
    unknown = launch.sign_in(params, username="nobody@example.org")
    for answer in (wrong, unknown):
        assert answer.status_code == 401 and "location" not in answer.headers
        assert "Unknown user name or wrong password." in answer.text
        assert 'name="password"' in answer.text
    failures = [
        e for e in launch.audit_events() if e["subtype"][0]["code"] == "110122" and e["outcome"] == "4"
    ]
    assert {f["agent"][0]["who"]["identifier"]["value"] for f in failures} == {
        "pat@example.org",
        "nobody@example.org",
    }


def test_the_form_needs_its_csrf_token_and_deny_is_redirected(launch: Launch) -> None:
    _, params = launch.authorize_url()
    launch.page(params)
    form = {k: v for k, v in params.items() if not k.startswith("_")}
    forged = launch.http.post(
        "/auth/authorize",
        data=form
        | {"csrf": "guess", "username": "pat@example.org", "password": PASSWORD, "decision": "allow"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "location" not in forged.headers
    denied = launch.sign_in(params, decision="deny")
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == [params["state"]]


def test_a_confidential_app_authenticates_with_client_secret_basic(launch: Launch) -> None:
    code, params = launch.code(client_id="pha-confidential")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": APP_REDIRECT,
        "code_verifier": params["_verifier"],
    }
    anonymous = launch.token(form | {"client_id": "pha-confidential"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    wrong = launch.token(form, auth=("pha-confidential", "not-the-secret"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
    answer = launch.token(form, auth=("pha-confidential", SECRET))
    assert answer.status_code == 200, answer.text
    assert answer.json()["patient"] == launch.patient_id
    # The public app cannot redeem the confidential app's code (and gets nothing from trying).
    code, params = launch.code(client_id="pha-confidential")
    stolen = launch.redeem(code, params, client_id="pha")
    assert stolen.json()["error"] == "invalid_grant"


def test_patient_apps_file_round_trips(tmp_path: Path) -> None:
    app = register_app(
        "native",
        redirect_uris=["com.example.app:/cb", "http://127.0.0.1:8765/cb"],
        scopes="patient/*.read openid",
    )
    (tmp_path / "apps.json").write_bytes(dump_apps([app]))
    assert PatientApps.from_file(tmp_path / "apps.json").get("native") == app
    with pytest.raises(ValueError, match="redirect URI"):
        register_app("web", redirect_uris=["http://app.example.org/cb"], scopes="patient/*.rs")


def test_repeated_failures_lock_the_login(launch: Launch) -> None:
    _, params = launch.authorize_url()
    for _ in range(5):
        assert launch.sign_in(params, password="not the password at all").status_code == 401
    assert launch.sign_in(params).status_code == 401  # locked: even the right password waits
    launch.clock.current += timedelta(minutes=16)
    assert launch.sign_in(params).status_code == 303


def test_a_refresh_may_narrow_the_access_token_but_keeps_the_grant(launch: Launch) -> None:
    code, params = launch.code()
    first = launch.redeem(code, params).json()
    refresh = {"grant_type": "refresh_token", "client_id": "pha"}
    wider = launch.token(refresh | {"refresh_token": first["refresh_token"], "scope": "patient/*.cruds"})
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrow = launch.token(refresh | {"refresh_token": first["refresh_token"], "scope": "patient/Patient.rs"})
    assert narrow.status_code == 200 and narrow.json()["scope"] == "patient/Patient.rs"
    again = launch.token(refresh | {"refresh_token": narrow.json()["refresh_token"]})
    assert set(again.json()["scope"].split()) == set(SCOPE.split())
    unknown = launch.token(refresh | {"client_id": "nobody", "refresh_token": again.json()["refresh_token"]})
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    refused = [
        e for e in launch.audit_events() if e["subtype"][0]["code"] == "refresh" and e["outcome"] == "4"
    ]
    assert {e["agent"][1]["who"]["identifier"]["value"] for e in refused} == {"pha", "nobody"}


def _staff_sign_in(http: TestClient, username: str, password: str) -> None:
    http.cookies.clear()
    page = http.get("/ops/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "username": username, "password": password, "next": "/ops/queue"}
    assert http.post("/ops/login", data=form, follow_redirects=False).status_code == 303


def test_an_administrator_adds_a_patient_login_in_the_operations_pages(launch: Launch) -> None:
    ops = launch.http.app.state.ops  # type: ignore[attr-defined]
    ops.add_user("admin", "Avery Admin", Role.ADMIN, "admin-password")
    ops.add_user("rev", "Riley Reviewer", Role.REVIEWER, "rev-password")
    _staff_sign_in(launch.http, "rev", "rev-password")
    assert launch.http.get("/ops/patients").status_code == 403
    _staff_sign_in(launch.http, "admin", "admin-password")
    page = launch.http.get("/ops/patients")
    assert page.status_code == 200 and "pat@example.org" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "username": "kim@example.org", "patient": launch.other_patient_id}
    short = launch.http.post("/ops/patients", data=form | {"tenant": "org-a", "password": "short"})
    assert short.status_code == 422 and "at least 12 characters" in short.text
    forged = launch.http.post("/ops/patients", data=form | {"csrf": "guess", "password": PASSWORD})
    assert forged.status_code == 403
    added = launch.http.post(
        "/ops/patients", data=form | {"tenant": "org-a", "password": PASSWORD}, follow_redirects=False
    )
    assert added.status_code == 303
    assert "kim@example.org" in launch.http.get("/ops/patients").text
    # The new login signs in to a patient app and reads its own record.
    _, params = launch.authorize_url()
    answer = launch.sign_in(params, username="kim@example.org")
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    body = launch.redeem(code, params).json()
    assert body["patient"] == launch.other_patient_id


def test_an_asymmetric_app_authenticates_with_private_key_jwt(launch: Launch) -> None:
    code, params = launch.code(client_id="pha-keys")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": APP_REDIRECT,
        "code_verifier": params["_verifier"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }

    def assertion(audience: str = BASE + "/auth/token") -> str:
        return sign_client_assertion(
            "pha-keys", audience, APP_KEY.private_key, algorithm="ES384", kid=APP_KEY.kid, now=launch.clock()
        )

    public = launch.token(form | {"client_assertion_type": "", "client_id": "pha-keys"})
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    elsewhere = launch.token(form | {"client_assertion": assertion("https://elsewhere.example.org/token")})
    assert elsewhere.status_code == 401
    signed = assertion()
    answer = launch.token(form | {"client_assertion": signed})
    assert answer.status_code == 200, answer.text
    assert answer.json()["patient"] == launch.patient_id
    refresh = {"grant_type": "refresh_token", "refresh_token": answer.json()["refresh_token"]}
    replayed = launch.token(
        refresh | {"client_assertion_type": form["client_assertion_type"], "client_assertion": signed}
    )
    assert replayed.status_code == 401  # each assertion once
    fresh = {"client_assertion_type": form["client_assertion_type"], "client_assertion": assertion()}
    assert launch.token(refresh | fresh).status_code == 200
