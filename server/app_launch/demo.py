"""The demo patient app and patient login, registered out of the box so Patient Access can be tried at
once (``make run``), and ``priorgate demo patient-token``: the standalone launch a patient app makes.

DEMO ONLY, like the demo Backend Services clients (``server/security/demo.py``) and with the same switch
(``PRIORGATE_DEMO_CLIENTS``): the public app ``demo-patient-app`` (PKCE, loopback redirect URI) is added
to the registered patient apps, and ``priorgate serve`` with demo content creates the login ``patient``
(password ``patient-demo``) of the demo member ``Patient/pgdemo-member`` (``server/demo/member.json``)
in its organization. Never enable them on a server holding real data.

Getting the member's token, one command (server running on the default port)::

    .venv/bin/priorgate demo patient-token

authorizes with PKCE S256 at ``/auth/authorize``, signs in as the demo patient and allows, exchanges the
code at ``/auth/token`` and prints the token response. Then:
``curl -H "Authorization: Bearer <access_token>" http://127.0.0.1:8080/fhir/ExplanationOfBenefit``.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy.exc import IntegrityError

from server.app_launch.accounts import AccountStore, new_account
from server.app_launch.apps import PatientApp, PatientApps, register_app
from server.app_launch.exchange import s256
from server.demo import DEMO_MEMBER_PATIENT_ID, DEMO_MEMBER_TENANT
from server.ops.auth import Passwords
from server.security.constants import AUTHORIZE_PATH, FHIR_BASE_PATH, TOKEN_PATH

DEMO_PATIENT_APP_ID: Final = "demo-patient-app"
# A loopback redirect (RFC 8252 §7.3): the command reads the code from the redirect, nothing listens there.
DEMO_PATIENT_APP_REDIRECT: Final = "http://127.0.0.1:8765/callback"
DEMO_PATIENT_APP_SCOPES: Final = "launch/patient openid fhirUser offline_access patient/*.rs"
# The demo patient login; the password is for the demo only: README lists it.
DEMO_PATIENT_USERNAME: Final = "patient"
DEMO_PATIENT_PASSWORD: Final = "patient-demo"
DEMO_PATIENT_NAME: Final = "Jordan Rivera (demo member)"
DEFAULT_BASE_URL: Final = "http://127.0.0.1:8080"
EXIT_USAGE: Final = 2
_CSRF: Final = re.compile(r'name="csrf" value="([^"]+)"')


def demo_patient_app() -> PatientApp:
    """The demo patient app: public (PKCE only), loopback redirect URI, read-only patient scopes."""
    return register_app(
        DEMO_PATIENT_APP_ID,
        redirect_uris=[DEMO_PATIENT_APP_REDIRECT],
        scopes=DEMO_PATIENT_APP_SCOPES,
        name="PriorGate demo patient app (DEMO ONLY)",
    )


def with_demo_app(apps: PatientApps) -> PatientApps:
    """``apps`` plus the demo app; an app of the same ``client_id`` registered in the file wins."""
    if DEMO_PATIENT_APP_ID in apps.apps:
        return apps
    return PatientApps.of([*apps.all(), demo_patient_app()])


def load_demo_login(
    store: AccountStore, now: Callable[[], datetime], passwords: Passwords | None = None
) -> int:
    """Create the demo patient login unless it exists; how many were added (0 or 1)."""
    if store.get(DEMO_PATIENT_USERNAME) is not None:
        return 0
    account = new_account(
        DEMO_PATIENT_USERNAME,
        tenant=DEMO_MEMBER_TENANT,
        patient_id=DEMO_MEMBER_PATIENT_ID,
        password=DEMO_PATIENT_PASSWORD,
        passwords=passwords or Passwords(),
        display_name=DEMO_PATIENT_NAME,
    )
    try:
        store.add(account, now())
    except IntegrityError:  # another process added it first
        return 0
    return 1


class LaunchError(Exception):
    """The standalone launch stopped; the message says at which step and why."""


def patient_token(
    *,
    base_url: str = DEFAULT_BASE_URL,
    username: str = DEMO_PATIENT_USERNAME,
    password: str = DEMO_PATIENT_PASSWORD,
    client_id: str = DEMO_PATIENT_APP_ID,
    redirect_uri: str = DEMO_PATIENT_APP_REDIRECT,
    scope: str = DEMO_PATIENT_APP_SCOPES,
    http: httpx.Client | None = None,
) -> dict[str, Any]:
    """Run a standalone patient launch against a running server as a public app would, the patient
    signing in with ``username``/``password`` and allowing; returns the token response."""
    base = base_url.rstrip("/")
    client = http or httpx.Client(timeout=10.0)
    try:
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(12)
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "aud": base + FHIR_BASE_PATH,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        page = client.get(base + AUTHORIZE_PATH, params=params, follow_redirects=False)
        if page.status_code == 303:
            raise LaunchError(f"the authorization request was refused: {_redirected_error(page)}")
        found = _CSRF.search(page.text) if page.status_code == 200 else None
        if found is None:
            raise LaunchError(
                f"the sign-in page answered {page.status_code}{_why(page)}; is {client_id} registered "
                "(PRIORGATE_DEMO_CLIENTS on)?"
            )
        form = params | {
            "csrf": found.group(1),
            "username": username,
            "password": password,
            "decision": "allow",
        }
        signed = client.post(base + AUTHORIZE_PATH, data=form, follow_redirects=False)
        if signed.status_code != 303:
            raise LaunchError(f"signing in as {username!r} failed ({signed.status_code}){_why(signed)}")
        answer = parse_qs(urlsplit(signed.headers.get("location", "")).query)
        if answer.get("state") != [state] or "code" not in answer:
            raise LaunchError(f"the authorization was refused: {_redirected_error(signed)}")
        token = client.post(
            base + TOKEN_PATH,
            data={
                "grant_type": "authorization_code",
                "code": answer["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                "client_id": client_id,
            },
        )
        body: dict[str, Any] = token.json()
        if token.status_code != 200:
            raise LaunchError(
                f"the token request failed: {body.get('error')}: {body.get('error_description')}"
            )
        return body
    finally:
        if http is None:
            client.close()


def _redirected_error(response: httpx.Response) -> str:
    """``error (error_description)`` of a redirect back to the app (RFC 6749 §4.1.2.1)."""
    answer = parse_qs(urlsplit(response.headers.get("location", "")).query)
    error = answer.get("error", ["no code"])[0]
    described = answer.get("error_description")
    return f"{error} ({described[0]})" if described else error


def _why(response: httpx.Response) -> str:
    shown = re.search(r'role="alert">([^<]+)<', response.text)
    return f": {shown.group(1).strip()}" if shown else ""


def demo(argv: Sequence[str]) -> int:
    """``priorgate demo patient-token``: the demo patient's access token (standalone launch)."""
    parser = argparse.ArgumentParser(prog="priorgate demo", description="Try the demo content")
    sub = parser.add_subparsers(dest="action", required=True)
    launch = sub.add_parser(
        "patient-token", help="sign in as the demo patient through the demo patient app; print the token"
    )
    launch.add_argument(
        "--base-url", help=f"server base URL (PRIORGATE_BASE_URL, default {DEFAULT_BASE_URL})"
    )
    launch.add_argument("--username", default=DEMO_PATIENT_USERNAME)
    launch.add_argument("--password", default=DEMO_PATIENT_PASSWORD)
    launch.add_argument("--client-id", default=DEMO_PATIENT_APP_ID)
    launch.add_argument("--redirect-uri", default=DEMO_PATIENT_APP_REDIRECT)
    launch.add_argument("--scope", default=DEMO_PATIENT_APP_SCOPES)
    args = parser.parse_args(argv)
    from server.settings import load_settings

    settings = load_settings()
    base_url = (args.base_url or settings.base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    try:
        body = patient_token(
            base_url=base_url,
            username=args.username,
            password=args.password,
            client_id=args.client_id,
            redirect_uri=args.redirect_uri,
            scope=args.scope,
        )
    except LaunchError as exc:
        print(f"priorgate demo: {exc}", file=sys.stderr)
        return 1
    except (httpx.HTTPError, ValueError) as exc:
        print(f"priorgate demo: request to {base_url} failed ({type(exc).__name__})", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0
