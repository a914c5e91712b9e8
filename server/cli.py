"""The ``priorgate`` command: a dispatch table of subcommands.

``priorgate serve [--host] [--port] [--database-url] [--workers N]``, ``priorgate db upgrade``,
``priorgate igs list|install``, ``priorgate validate FILE``, ``priorgate x12 ...``, ``priorgate token`` and
``priorgate clients``, ``priorgate staff add|list``, ``priorgate patients add|list`` and
``priorgate patient-apps register|list``, ``priorgate demo patient-token``. Another
package adds a subcommand with one line in :data:`COMMANDS` (e.g. ``"x12": x12_cli.main``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from igs import cli as igs_cli
from igs.outcome import OperationOutcomeError
from server.app_launch import cli as app_launch_cli
from server.app_launch import demo as app_launch_demo
from server.ops import cli as ops_cli
from server.security import cli as security_cli
from server.settings import Settings, SettingsError, load_settings
from x12 import cli as x12_cli

EXIT_USAGE = 2


def _settings(overrides: dict[str, object]) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def serve(argv: Sequence[str]) -> int:
    """Upgrade the schema, load demo content into an empty database, then run uvicorn."""
    parser = argparse.ArgumentParser(prog="priorgate serve", description="Run the PriorGate FHIR server")
    parser.add_argument("--host", help="interface to bind (PRIORGATE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (PRIORGATE_PORT, default 8080)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (PRIORGATE_DATABASE_URL)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; all state is in the database, so N > 1 is safe",
    )
    args = parser.parse_args(argv)
    settings = _settings({"host": args.host, "port": args.port, "database_url": args.database_url})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    import uvicorn

    from server.database import prepare
    from server.search.definitions import load_registry
    from server.storage.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        prepare(engine, load_registry(), demo_content=settings.demo_content)
    finally:
        engine.dispose()
    if settings.demo_content:
        from server.ops.demo import load_app_demo

        load_app_demo(settings)  # demo staff users and review work (server/ops/demo.py)
        from server.patient_access.demo import load_app_demo as load_patient_access_demo

        load_patient_access_demo(settings)  # the demo member's requests and login (Patient Access)
    # Worker processes read their settings from the environment: pass the flags on.
    os.environ["PRIORGATE_DATABASE_URL"] = settings.database_url
    os.environ["PRIORGATE_HOST"] = (
        settings.host
    )  # the token issuer and audience when PRIORGATE_BASE_URL is unset
    os.environ["PRIORGATE_PORT"] = str(settings.port)
    uvicorn.run(
        "server.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=max(args.workers, 1),
        log_level=settings.log_level,
        proxy_headers=True,
    )
    return 0


def db(argv: Sequence[str]) -> int:
    """``priorgate db upgrade [--database-url URL]``: bring the schema to the latest revision."""
    parser = argparse.ArgumentParser(prog="priorgate db", description="Database schema")
    parser.add_argument("action", choices=["upgrade"])
    parser.add_argument("--database-url", help="SQLAlchemy URL (PRIORGATE_DATABASE_URL)")
    args = parser.parse_args(argv)
    settings = _settings({"database_url": args.database_url})

    from server.storage.engine import make_engine
    from server.storage.migrate import current_revision, upgrade

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        print(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


def x12(argv: Sequence[str]) -> int:
    """``priorgate x12 to-278|from-278|validate|simulate ...``: the X12 278 bridge."""
    return x12_cli.main(list(argv))


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "serve": serve,
    "db": db,
    "igs": igs_cli.main,
    "validate": igs_cli.validate_main,
    "x12": x12,
    "token": security_cli.token,
    "clients": security_cli.clients,
    "staff": ops_cli.main,
    "patients": app_launch_cli.patients,
    "patient-apps": app_launch_cli.patient_apps,
    "demo": app_launch_demo.demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(f"usage: priorgate {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else EXIT_USAGE
    try:
        return COMMANDS[args[0]](args[1:])
    except SettingsError as exc:
        print(f"priorgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OperationOutcomeError as exc:
        print(f"priorgate: {exc.message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
