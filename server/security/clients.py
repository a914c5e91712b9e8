"""Registered clients (SMART Backend Services, "Registering a client"): who may ask for tokens.

A registration names the client, the organizations it acts for (its tenants), the scopes it may be
granted, its staff roles, and its public keys: a JWK Set inline or a ``jwks_url`` PriorGate fetches.
Registrations live in a JSON or TOML file (``{"clients": [...]}`` / ``[[clients]]``) loaded at start;
``register_client`` builds one record for the CLI (``priorgate clients register``) to append.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from server.security.scopes import ScopeSyntaxError, parse_scopes

KNOWN_ROLES = frozenset({"submitter", "reviewer", "auditor", "admin"})


class ClientRegistrationError(ValueError):
    """A registration record is invalid; the message names the client and the field."""


@dataclass(frozen=True)
class RegisteredClient:
    """One registered client. Exactly one of ``jwks`` (inline JWK Set) and ``jwks_url`` is set."""

    client_id: str
    name: str
    tenants: frozenset[str]
    scopes: str  # space-separated SMART scopes the client may be granted
    jwks: Mapping[str, Any] | None = None
    jwks_url: str | None = None
    roles: frozenset[str] = frozenset()
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "name": self.name,
            "tenants": sorted(self.tenants),
            "scopes": self.scopes,
            "roles": sorted(self.roles),
        }
        if self.jwks is not None:
            out["jwks"] = dict(self.jwks)
        if self.jwks_url is not None:
            out["jwks_url"] = self.jwks_url
        if not self.enabled:
            out["enabled"] = False
        return out


def register_client(
    client_id: str,
    *,
    name: str | None = None,
    tenants: Iterable[str],
    scopes: str,
    jwks: Mapping[str, Any] | None = None,
    jwks_url: str | None = None,
    roles: Iterable[str] = (),
    allow_http_jwks_url: bool = False,
) -> RegisteredClient:
    """Validate and build a registration record (the CLI's ``clients register`` calls this).

    Raises :class:`ClientRegistrationError` naming the bad field.
    """
    if not client_id or not client_id.strip() or any(c.isspace() for c in client_id):
        raise ClientRegistrationError("client_id must be a non-empty string without spaces")
    tenant_set = frozenset(t for t in tenants if t)
    if not tenant_set:
        raise ClientRegistrationError(
            f"client {client_id}: at least one tenant (organization id) is required"
        )
    try:
        parsed = parse_scopes(scopes)
    except ScopeSyntaxError as exc:
        raise ClientRegistrationError(f"client {client_id}: {exc}") from None
    if parsed.restricted:
        raise ClientRegistrationError(f"client {client_id}: scope query restrictions are not supported")
    role_set = frozenset(roles)
    unknown = role_set - KNOWN_ROLES
    if unknown:
        raise ClientRegistrationError(f"client {client_id}: unknown role(s) {sorted(unknown)}")
    if (jwks is None) == (jwks_url is None):
        raise ClientRegistrationError(f"client {client_id}: give exactly one of jwks and jwks_url")
    if jwks is not None:
        _check_jwks(client_id, jwks)
    if jwks_url is not None:
        scheme = urlsplit(jwks_url).scheme
        if scheme != "https" and not (allow_http_jwks_url and scheme == "http"):
            raise ClientRegistrationError(f"client {client_id}: jwks_url must be https")
    return RegisteredClient(
        client_id=client_id,
        name=name or client_id,
        tenants=tenant_set,
        scopes=parsed.to_string(),
        jwks=jwks,
        jwks_url=jwks_url,
        roles=role_set,
    )


def _check_jwks(client_id: str, jwks: Mapping[str, Any]) -> None:
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ClientRegistrationError(f"client {client_id}: jwks must be a JWK Set with at least one key")
    for key in keys:
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
            raise ClientRegistrationError(f"client {client_id}: every JWK needs a kid")
        if "d" in key or "p" in key:
            raise ClientRegistrationError(f"client {client_id}: jwks must hold public keys only")
        if key.get("kty") not in ("RSA", "EC"):
            raise ClientRegistrationError(f"client {client_id}: only RSA and EC keys are supported")


def client_from_json(record: Mapping[str, Any], *, allow_http_jwks_url: bool = False) -> RegisteredClient:
    """A registration from its JSON/TOML form (the shape ``RegisteredClient.to_json`` writes)."""
    client_id = record.get("client_id")
    if not isinstance(client_id, str):
        raise ClientRegistrationError("a client record has no client_id")
    client = register_client(
        client_id,
        name=record.get("name"),
        tenants=_strings(record.get("tenants"), client_id, "tenants"),
        scopes=str(record.get("scopes", "")),
        jwks=record.get("jwks"),
        jwks_url=record.get("jwks_url"),
        roles=_strings(record.get("roles", []), client_id, "roles"),
        allow_http_jwks_url=allow_http_jwks_url,
    )
    if record.get("enabled") is False:
        client = replace(client, enabled=False)
    return client


def _strings(value: Any, client_id: str, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClientRegistrationError(f"client {client_id}: {name} must be a list of strings")
    return value


class ClientRegistry(Protocol):
    """Looks up registered clients; the database-backed registry implements the same protocol."""

    async def get(self, client_id: str) -> RegisteredClient | None: ...


@dataclass(frozen=True)
class InMemoryClientRegistry:
    """Clients held in memory, from a file, settings or the demo definitions."""

    clients: Mapping[str, RegisteredClient] = field(default_factory=dict)

    async def get(self, client_id: str) -> RegisteredClient | None:
        client = self.clients.get(client_id)
        return client if client is not None and client.enabled else None

    def all(self) -> tuple[RegisteredClient, ...]:
        return tuple(self.clients.values())

    @classmethod
    def of(cls, clients: Iterable[RegisteredClient]) -> InMemoryClientRegistry:
        table: dict[str, RegisteredClient] = {}
        for client in clients:
            if client.client_id in table:
                raise ClientRegistrationError(f"client {client.client_id} is registered twice")
            table[client.client_id] = client
        return cls(table)

    @classmethod
    def from_file(cls, path: Path, *, allow_http_jwks_url: bool = False) -> InMemoryClientRegistry:
        """Load ``{"clients": [...]}`` from a ``.json`` file or ``[[clients]]`` from a ``.toml`` file."""
        records = registry_records(path, "clients", ClientRegistrationError)
        return cls.of(client_from_json(r, allow_http_jwks_url=allow_http_jwks_url) for r in records)


def registry_records(path: Path, key: str, error: type[ValueError]) -> list[Any]:
    """The records of a registry file: the list under ``key`` of a ``.json`` file (``{"<key>": [...]}``)
    or a ``.toml`` file (``[[<key>]]``); ``error`` (one line naming the file) when it is neither."""
    raw = path.read_bytes()
    try:
        doc: Any = tomllib.loads(raw.decode()) if path.suffix == ".toml" else orjson.loads(raw)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    records = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise error(f"{path}: expected a top-level '{key}' list")
    return records


def dump_clients(clients: Iterable[RegisteredClient]) -> bytes:
    """The JSON registry file content for ``clients`` (what ``clients register`` writes back)."""
    return orjson.dumps({"clients": [c.to_json() for c in clients]}, option=orjson.OPT_INDENT_2)
