"""Security subcommands for the ``priorgate`` CLI (``server/cli.py`` adds them to its ``COMMANDS``):

* ``priorgate token --client demo-ehr`` prints a token response for a demo client; for any other
  registered client pass ``--key private.pem`` (and ``--scope``).
* ``priorgate clients register --client-id ehr-1 --tenant org-a --scopes "system/Claim.crs"
  (--jwks-file jwks.json | --jwks-url https://...) [--role submitter] [--file clients.json]`` validates
  a registration and writes it into the clients file (``PRIORGATE_CLIENTS_FILE``).
* ``priorgate clients list [--file clients.json]`` lists registered clients.

They also run as ``.venv/bin/python -m server.security.cli token --client demo-ehr``.
Tokens are printed on request only; nothing here logs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from server.security.backend_client import fetch_token
from server.security.clients import (
    ClientRegistrationError,
    InMemoryClientRegistry,
    RegisteredClient,
    dump_clients,
    register_client,
)
from server.security.config import SecuritySettings
from server.security.constants import TOKEN_PATH
from server.security.demo import DEMO_CLIENTS, demo_signing_key
from server.security.keys import KeyMaterialError, SigningKey, algorithm_for, load_private_key_pem

EXIT_USAGE = 2
DEFAULT_CLIENTS_FILE = Path("priorgate-clients.json")


def _default_base_url() -> str:
    base = os.environ.get("PRIORGATE_BASE_URL")
    if base:
        return base
    host = os.environ.get("PRIORGATE_HOST", "127.0.0.1")
    port = os.environ.get("PRIORGATE_PORT", "8080")
    return f"http://{host}:{port}"


def token(argv: Sequence[str]) -> int:
    """``priorgate token``: obtain an access token (SMART Backend Services) and print the response."""
    parser = argparse.ArgumentParser(prog="priorgate token", description="Obtain an access token")
    parser.add_argument("--client", default="demo-ehr", help="client_id (default demo-ehr)")
    parser.add_argument("--key", type=Path, help="PEM private key of a non-demo client")
    parser.add_argument("--scope", help="scopes to request (default: all of a demo client's scopes)")
    parser.add_argument("--base-url", default=None, help="server base URL (PRIORGATE_BASE_URL)")
    parser.add_argument("--keys", type=Path, help="demo key folder (default <security_dir>/demo-keys)")
    args = parser.parse_args(argv)
    base_url = (args.base_url or _default_base_url()).rstrip("/")
    demo = next((c for c in DEMO_CLIENTS if c.client_id == args.client), None)
    try:
        if args.key is not None:
            private = load_private_key_pem(args.key.read_bytes(), source=str(args.key))
            key = SigningKey.of(private, algorithm_for(private, rsa_algorithm="RS384"))
        elif demo is not None:
            folder = args.keys or SecuritySettings().security_dir / "demo-keys"
            key = demo_signing_key(args.client, folder)
        else:
            print(f"priorgate token: {args.client} is not a demo client; pass --key", file=sys.stderr)
            return EXIT_USAGE
    except (KeyMaterialError, OSError) as exc:
        print(f"priorgate token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    scope = args.scope or (demo.scopes if demo is not None else None)
    if not scope:
        print("priorgate token: --scope is required for non-demo clients", file=sys.stderr)
        return EXIT_USAGE
    try:
        body = fetch_token(
            args.client, key, token_url=base_url + TOKEN_PATH, scope=scope, now=datetime.now(UTC)
        )
    except httpx.HTTPError as exc:
        print(f"priorgate token: request to {base_url} failed ({type(exc).__name__})", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0 if "access_token" in body else 1


def _clients_file(explicit: Path | None) -> Path:
    return explicit or SecuritySettings().clients_file or DEFAULT_CLIENTS_FILE


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def add_client(path: Path, client: RegisteredClient) -> None:
    """Add ``client`` to the clients file at ``path`` (created when absent); a duplicate id is an error."""
    existing = InMemoryClientRegistry.from_file(path).all() if path.exists() else ()
    registry = InMemoryClientRegistry.of([*existing, client])  # raises on a duplicate client_id
    _write_atomically(path, dump_clients(registry.all()))


def clients(argv: Sequence[str]) -> int:
    """``priorgate clients register|list``."""
    parser = argparse.ArgumentParser(prog="priorgate clients", description="Registered clients")
    sub = parser.add_subparsers(dest="action", required=True)
    reg = sub.add_parser("register", help="register a client (SMART Backend Services)")
    reg.add_argument("--client-id", required=True)
    reg.add_argument("--name")
    reg.add_argument("--tenant", action="append", required=True, help="organization id (repeatable)")
    reg.add_argument("--scopes", required=True, help='e.g. "system/Claim.crs system/ClaimResponse.rs"')
    keys = reg.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks-file", type=Path, help="the client's public JWK Set (JSON)")
    keys.add_argument("--jwks-url", help="https URL of the client's JWK Set")
    reg.add_argument("--role", action="append", default=[], help="submitter, reviewer, auditor or admin")
    reg.add_argument("--file", type=Path, help="clients file (PRIORGATE_CLIENTS_FILE)")
    listing = sub.add_parser("list", help="list registered clients")
    listing.add_argument("--file", type=Path, help="clients file (PRIORGATE_CLIENTS_FILE)")
    args = parser.parse_args(argv)
    path = _clients_file(args.file)
    try:
        if args.action == "list":
            registered = InMemoryClientRegistry.from_file(path).all() if path.exists() else ()
            for client in registered:
                print(f"{client.client_id}\t{','.join(sorted(client.tenants))}\t{client.scopes}")
            return 0
        jwks = json.loads(args.jwks_file.read_text()) if args.jwks_file else None
        client = register_client(
            args.client_id,
            name=args.name,
            tenants=args.tenant,
            scopes=args.scopes,
            jwks=jwks,
            jwks_url=args.jwks_url,
            roles=args.role,
        )
        add_client(path, client)
    except (ClientRegistrationError, OSError, json.JSONDecodeError) as exc:
        print(f"priorgate clients: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"registered {client.client_id} in {path}")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"token": token, "clients": clients}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print("usage: python -m server.security.cli {token,clients} ...", file=sys.stderr)
        return EXIT_USAGE
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
