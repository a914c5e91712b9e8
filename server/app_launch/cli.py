"""``priorgate patients`` and ``priorgate patient-apps``: patient logins and patient-facing apps.

* ``priorgate patients add USERNAME --patient ID --tenant ORG [--name "Pat Doe"]`` creates a patient
  login linked to ``Patient/ID`` in the tenant ``ORG`` (the organization holding the member's data, where
  its prior-authorization ExplanationOfBenefits are stored); the password comes
  from ``PRIORGATE_PATIENT_PASSWORD`` or, without it, standard input (prompting on a terminal).
  ``priorgate patients list`` lists them.
* ``priorgate patient-apps register --client-id APP --redirect-uri URI [--redirect-uri URI2]
  [--scopes "launch/patient openid fhirUser offline_access patient/*.rs"] [--confidential]
  [--jwks-file jwks.json | --jwks-url URL] [--name N] [--file patient-apps.json]`` adds an app to
  ``PRIORGATE_PATIENT_APPS_FILE``; a confidential app's secret is printed once (only its SHA-256 is
  stored); with keys it authenticates with ``private_key_jwt`` instead.
  ``priorgate patient-apps list`` lists them.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from server.app_launch.accounts import AccountError, AccountStore, new_account
from server.app_launch.apps import AppRegistrationError, PatientApps, dump_apps, new_secret, register_app
from server.ops.auth import Passwords

EXIT_USAGE = 2
DEFAULT_APPS_FILE = Path("priorgate-patient-apps.json")
DEFAULT_APP_SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"


def _password() -> str:
    given = os.environ.get("PRIORGATE_PATIENT_PASSWORD")
    if given is not None:
        return given
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\n")


def patients(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="priorgate patients", description="Patient logins")
    parser.add_argument("--database-url", help="SQLAlchemy URL (PRIORGATE_DATABASE_URL)")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a patient login")
    add.add_argument("username", help="user name or e-mail address")
    add.add_argument("--patient", required=True, help="the FHIR Patient id the login reads as")
    add.add_argument("--tenant", default="", help="organization id holding the patient's data (required)")
    add.add_argument("--name", default="", help="display name")
    sub.add_parser("list", help="list patient logins")
    args = parser.parse_args(argv)

    from server.settings import load_settings
    from server.storage.engine import make_engine
    from server.storage.migrate import upgrade

    settings = load_settings(**({"database_url": args.database_url} if args.database_url else {}))
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        store = AccountStore(engine)
        if args.action == "list":
            for account in store.all():
                state = "" if account.active else " (inactive)"
                print(f"{account.username}\t{account.tenant}\tPatient/{account.patient_id}{state}")
            return 0
        try:
            account = new_account(
                args.username,
                tenant=args.tenant,
                patient_id=args.patient,
                password=_password(),
                passwords=Passwords(),
                display_name=args.name,
            )
            store.add(account, datetime.now(UTC))
        except AccountError as exc:
            print(f"priorgate patients: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except IntegrityError:
            print(f"priorgate patients: a login named {args.username!r} exists", file=sys.stderr)
            return EXIT_USAGE
        print(f"added {account.username} (Patient/{account.patient_id})")
        return 0
    finally:
        engine.dispose()


def _apps_file(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    from server.security.config import SecuritySettings

    return SecuritySettings().patient_apps_file or DEFAULT_APPS_FILE


def patient_apps(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="priorgate patient-apps", description="Patient-facing apps")
    sub = parser.add_subparsers(dest="action", required=True)
    reg = sub.add_parser("register", help="register a patient-facing app (SMART App Launch)")
    reg.add_argument("--client-id", required=True)
    reg.add_argument("--name")
    reg.add_argument("--redirect-uri", action="append", required=True, help="exact redirect URI (repeatable)")
    reg.add_argument("--scopes", default=DEFAULT_APP_SCOPES, help=f'default "{DEFAULT_APP_SCOPES}"')
    reg.add_argument("--confidential", action="store_true", help="a confidential app (client_secret_basic)")
    keys = reg.add_mutually_exclusive_group()
    keys.add_argument("--jwks-file", type=Path, help="confidential app's public JWK Set (private_key_jwt)")
    keys.add_argument("--jwks-url", help="https URL of a confidential app's JWK Set (private_key_jwt)")
    reg.add_argument("--file", type=Path, help="patient apps file (PRIORGATE_PATIENT_APPS_FILE)")
    listing = sub.add_parser("list", help="list patient-facing apps")
    listing.add_argument("--file", type=Path, help="patient apps file (PRIORGATE_PATIENT_APPS_FILE)")
    args = parser.parse_args(argv)
    path = _apps_file(args.file)
    try:
        existing = PatientApps.from_file(path).all() if path.exists() else ()
        if args.action == "list":
            for app in existing:
                print(f"{app.client_id}\t{app.client_type}\t{' '.join(app.redirect_uris)}\t{app.scopes}")
            return 0
        asymmetric = args.jwks_file is not None or args.jwks_url is not None
        secret, digest = new_secret() if args.confidential and not asymmetric else (None, None)
        app = register_app(
            args.client_id,
            redirect_uris=args.redirect_uri,
            scopes=args.scopes,
            client_type="confidential" if args.confidential or asymmetric else "public",
            name=args.name,
            secret_sha256=digest,
            jwks=json.loads(args.jwks_file.read_text()) if args.jwks_file else None,
            jwks_url=args.jwks_url,
        )
        registry = PatientApps.of([*existing, app])  # raises on a duplicate client_id
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(dump_apps(registry.all()))
        os.replace(temporary, path)
    except (AppRegistrationError, OSError, json.JSONDecodeError) as exc:
        print(f"priorgate patient-apps: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"registered {app.client_id} ({app.client_type}) in {path}")
    if secret is not None:
        print(f"client_secret (shown once; keep it safe): {secret}")
    return 0
