"""The patient sign-in and approval page in Debian's Chromium (Playwright), with JavaScript off, against
the app served by uvicorn: the page's Content-Security-Policy lets the form redirect to the app, the code
it hands over redeems at the token endpoint, and the token reads the patient's record."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from server.app import create_app
from server.app_launch.accounts import AccountStore, new_account
from server.app_launch.apps import dump_apps, register_app
from server.ops.auth import Passwords
from server.search.definitions import load_registry
from server.security.config import SecuritySettings
from server.settings import Settings
from server.storage.engine import make_engine
from server.storage.repository import Repository

from .test_ops_browser import CHROMIUM, Clock, _free_port, _serving, _shot, playwright_api

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"
)
CALLBACK = "http://127.0.0.1:9/callback"  # never reached: the browser's request is answered in the test
PASSWORD = "correct horse battery staple"


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    clock = Clock()
    engine = make_engine(database_url)
    repository = Repository(engine, load_registry(), now=clock).for_tenant("org-a")
    patient = repository.create("Patient", {"resourceType": "Patient", "name": [{"family": "Doe"}]}).stored.id
    account = new_account("pat", tenant="org-a", patient_id=patient, password=PASSWORD, passwords=Passwords())
    AccountStore(engine).add(account, clock())
    engine.dispose()
    apps = tmp_path / "apps.json"
    apps.write_bytes(
        dump_apps([register_app("viewer", redirect_uris=[CALLBACK], scopes="patient/*.rs openid")])
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=database_url, demo_content=False, base_url=base, ig_path=tmp_path / "none"
    )
    security = SecuritySettings(
        auth_mode="local", security_dir=tmp_path, demo_clients=False, patient_apps_file=apps
    )
    with _serving(create_app(settings, now=clock, security=security), port) as base_url:
        yield base_url, patient


def test_a_patient_signs_in_and_the_app_gets_a_working_token(
    served: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    base_url, patient = served
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": "viewer",
        "redirect_uri": CALLBACK,
        "scope": "openid patient/*.rs",
        "state": "s-123",
        "aud": base_url + "/fhir",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    arrived: list[str] = []

    def callback(route: Any) -> None:
        arrived.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="back in the app")

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.route(CALLBACK + "*", callback)
            page.goto(f"{base_url}/auth/authorize?{urlencode(query)}")
            assert "viewer" in page.content()
            page.get_by_label("User name").fill("pat")
            page.get_by_label("Password").fill("wrong password, twelve+")
            page.get_by_role("button", name="Sign in and allow").click()
            assert "Unknown user name or wrong password." in page.content()
            page.get_by_label("Password").fill(PASSWORD)
            _shot(page, "patient-sign-in", request)
            page.get_by_role("button", name="Sign in and allow").click()
            page.wait_for_url(CALLBACK + "*")
        finally:
            browser.close()
    returned = parse_qs(urlsplit(arrived[-1]).query)
    assert returned["state"] == ["s-123"]
    with httpx.Client(base_url=base_url) as http:
        form = {
            "grant_type": "authorization_code",
            "code": returned["code"][0],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": "viewer",
        }
        token = http.post("/auth/token", data=form).json()
        assert token["patient"] == patient and "id_token" in token
        record = http.get(
            f"/fhir/Patient/{patient}", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert record.status_code == 200
