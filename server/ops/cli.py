"""``priorgate staff add|list``: staff users of the operations pages.

``priorgate staff add USERNAME --role clinician-reviewer --name "Dr. Lee" [--npi N]`` reads the password
from ``PRIORGATE_STAFF_PASSWORD`` or, without it, from standard input (prompting on a terminal).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from server.settings import load_settings

from .auth import Passwords, Role
from .store import OpsStore, StaffUser

MIN_PASSWORD = 12


def _password() -> str:
    given = os.environ.get("PRIORGATE_STAFF_PASSWORD")
    if given is not None:
        return given
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\n")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="priorgate staff", description="Staff users of the operations pages"
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL (PRIORGATE_DATABASE_URL)")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a staff user")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--npi", help="the reviewer's NPI (shown as the ClaimResponse reviewer)")
    sub.add_parser("list", help="list staff users")
    args = parser.parse_args(argv)
    overrides = {"database_url": args.database_url} if args.database_url else {}
    settings = load_settings(**overrides)

    from datetime import UTC, datetime

    from server.storage.engine import make_engine
    from server.storage.migrate import upgrade

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        store = OpsStore(engine)
        if args.action == "list":
            for user in store.users():
                state = "" if user.active else " (inactive)"
                print(f"{user.username}\t{user.role}\t{user.display_name}{state}")
            return 0
        password = _password()
        if len(password) < MIN_PASSWORD:
            print(f"priorgate: a staff password has at least {MIN_PASSWORD} characters", file=sys.stderr)
            return 2
        user = StaffUser(args.username, args.name, args.role, Passwords().hash(password), args.npi)
        try:
            store.add_user(user, datetime.now(UTC))
        except IntegrityError:
            print(f"priorgate: staff user {args.username!r} exists", file=sys.stderr)
            return 2
        print(f"added {args.username} ({args.role})")
        return 0
    finally:
        engine.dispose()
