"""Patient-facing apps PriorGate authorizes (SMART App Launch 2.1.0, "Register App with EHR"):
a ``client_id``, its exact redirect URIs, the scopes it may be granted, and how it authenticates at the
token endpoint: ``public`` (no secret; PKCE only) or ``confidential``, either symmetric
(``client_secret_basic``; only the secret's SHA-256 is kept, the secret itself is shown once when
registered) or asymmetric (``private_key_jwt`` with a JWK Set inline or at a ``jwks_url``, verified as
for Backend Services clients).

Registrations live in a JSON or TOML file (``{"apps": [...]}`` / ``[[apps]]``,
``PRIORGATE_PATIENT_APPS_FILE``) beside the Backend Services clients file, loaded at start;
``priorgate patient-apps register`` appends one. A patient app may only ever hold ``patient/`` scopes
and ``openid fhirUser launch/patient offline_access online_access``: never ``system/`` or ``user/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from server.ops.auth import new_token, same_token, token_hash
from server.security.clients import (
    ClientRegistrationError,
    RegisteredClient,
    register_client,
    registry_records,
)
from server.security.scopes import ScopeSyntaxError, parse_scopes

ClientType = Literal["public", "confidential"]
# The non-resource scopes a patient app may hold (SMART "Scopes and Launch Context").
PATIENT_APP_OTHER_SCOPES = frozenset(
    {"openid", "fhirUser", "launch/patient", "offline_access", "online_access"}
)
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
# The tenant of a patient app's key registration: unused (a patient token takes its patient's tenant).
KEYS_ONLY_TENANT = "patient-app"


class AppRegistrationError(ValueError):
    """A patient app registration is invalid; the message names the app and the field."""


@dataclass(frozen=True)
class PatientApp:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    scopes: str  # space-separated scopes the app may be granted
    client_type: ClientType = "public"
    secret_sha256: str | None = None  # confidential symmetric apps only
    enabled: bool = True
    keys: RegisteredClient | None = None  # confidential asymmetric apps: their JWK Set (or its URL)

    @property
    def confidential(self) -> bool:
        return self.client_type == "confidential"

    @property
    def auth_method(self) -> str:
        if self.keys is not None:
            return "private_key_jwt"
        return "client_secret_basic" if self.secret_sha256 is not None else "none"

    def secret_matches(self, secret: str) -> bool:
        if self.secret_sha256 is None:
            return False
        return same_token(self.secret_sha256, token_hash(secret))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "name": self.name,
            "client_type": self.client_type,
            "redirect_uris": list(self.redirect_uris),
            "scopes": self.scopes,
        }
        if self.secret_sha256 is not None:
            out["secret_sha256"] = self.secret_sha256
        if self.keys is not None and self.keys.jwks is not None:
            out["jwks"] = dict(self.keys.jwks)
        if self.keys is not None and self.keys.jwks_url is not None:
            out["jwks_url"] = self.keys.jwks_url
        if not self.enabled:
            out["enabled"] = False
        return out


def _check_redirect_uri(client_id: str, uri: str) -> None:
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "#" in uri:
        raise AppRegistrationError(
            f"app {client_id}: redirect URI {uri!r} must be absolute, without a fragment"
        )
    if parts.scheme == "https" and parts.netloc:
        return
    if parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS:
        return  # RFC 8252 §7.3: loopback redirects for native apps
    if parts.scheme not in ("http", "https") and "." in parts.scheme:
        return  # RFC 8252 §7.1: a private-use (reverse domain name) scheme
    raise AppRegistrationError(
        f"app {client_id}: redirect URI {uri!r} must be https, http on a loopback address, "
        "or a private-use scheme such as com.example.app:/callback"
    )


def register_app(
    client_id: str,
    *,
    redirect_uris: Iterable[str],
    scopes: str,
    client_type: ClientType = "public",
    name: str | None = None,
    secret_sha256: str | None = None,
    jwks: Mapping[str, Any] | None = None,
    jwks_url: str | None = None,
    allow_http_jwks_url: bool = False,
) -> PatientApp:
    """Validate and build a registration; raises :class:`AppRegistrationError` naming the bad field.
    A confidential app has exactly one of ``secret_sha256``, ``jwks`` and ``jwks_url``."""
    if not client_id or len(client_id) > 128 or any(c.isspace() for c in client_id):
        raise AppRegistrationError("client_id must be 1 to 128 characters without spaces")
    uris = tuple(dict.fromkeys(u for u in redirect_uris if u))
    if not uris:
        raise AppRegistrationError(f"app {client_id}: at least one redirect URI is required")
    for uri in uris:
        _check_redirect_uri(client_id, uri)
    try:
        parsed = parse_scopes(scopes)
    except ScopeSyntaxError as exc:
        raise AppRegistrationError(f"app {client_id}: {exc}") from None
    wrong = [s.text for s in parsed.resource_scopes if s.context != "patient" or s.restricted]
    wrong += [o for o in parsed.other if o not in PATIENT_APP_OTHER_SCOPES]
    if wrong:
        raise AppRegistrationError(
            f"app {client_id}: a patient app may hold only unrestricted patient/ scopes and "
            f"{' '.join(sorted(PATIENT_APP_OTHER_SCOPES))}; not {' '.join(wrong)}"
        )
    if not parsed.resource_scopes:
        raise AppRegistrationError(f"app {client_id}: at least one patient/ scope is required")
    if client_type not in ("public", "confidential"):
        raise AppRegistrationError(f"app {client_id}: client_type must be public or confidential")
    credentials = [c for c in (secret_sha256, jwks, jwks_url) if c is not None]
    if len(credentials) != (1 if client_type == "confidential" else 0):
        raise AppRegistrationError(
            f"app {client_id}: a confidential app has one of a secret, jwks or jwks_url; a public app none"
        )
    keys = None
    if jwks is not None or jwks_url is not None:
        try:
            keys = register_client(
                client_id,
                tenants=[KEYS_ONLY_TENANT],
                scopes=parsed.to_string(),
                jwks=jwks,
                jwks_url=jwks_url,
                allow_http_jwks_url=allow_http_jwks_url,
            )
        except ClientRegistrationError as exc:
            raise AppRegistrationError(str(exc).replace("client ", "app ", 1)) from None
    return PatientApp(
        client_id, name or client_id, uris, parsed.to_string(), client_type, secret_sha256, keys=keys
    )


def new_secret() -> tuple[str, str]:
    """A fresh client secret and its SHA-256 (hex): the secret is shown once, the digest stored."""
    secret = new_token()
    return secret, token_hash(secret)


def app_from_json(record: Mapping[str, Any], *, allow_http_jwks_url: bool = False) -> PatientApp:
    client_id = record.get("client_id")
    if not isinstance(client_id, str):
        raise AppRegistrationError("an app record has no client_id")
    uris = record.get("redirect_uris")
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise AppRegistrationError(f"app {client_id}: redirect_uris must be a list of strings")
    secret = record.get("secret_sha256")
    app = register_app(
        client_id,
        redirect_uris=uris,
        scopes=str(record.get("scopes", "")),
        client_type=record.get("client_type", "public"),
        name=record.get("name"),
        secret_sha256=secret if isinstance(secret, str) else None,
        jwks=record.get("jwks"),
        jwks_url=record.get("jwks_url"),
        allow_http_jwks_url=allow_http_jwks_url,
    )
    if record.get("enabled") is False:
        app = replace(app, enabled=False)
    return app


@dataclass(frozen=True)
class PatientApps:
    """The registered patient apps, by ``client_id``."""

    apps: Mapping[str, PatientApp] = field(default_factory=dict)

    def get(self, client_id: str | None) -> PatientApp | None:
        app = self.apps.get(client_id or "")
        return app if app is not None and app.enabled else None

    async def keys_of(self, client_id: str) -> RegisteredClient | None:
        """The key registration of an asymmetric app (``ClientRegistry``, for ``verify_client_assertion``)."""
        app = self.get(client_id)
        return app.keys if app is not None else None

    def all(self) -> tuple[PatientApp, ...]:
        return tuple(self.apps.values())

    @classmethod
    def of(cls, apps: Iterable[PatientApp]) -> PatientApps:
        table: dict[str, PatientApp] = {}
        for app in apps:
            if app.client_id in table:
                raise AppRegistrationError(f"app {app.client_id} is registered twice")
            table[app.client_id] = app
        return cls(table)

    @classmethod
    def from_file(cls, path: Path, *, allow_http_jwks_url: bool = False) -> PatientApps:
        records = registry_records(path, "apps", AppRegistrationError)
        return cls.of(app_from_json(r, allow_http_jwks_url=allow_http_jwks_url) for r in records)


def dump_apps(apps: Iterable[PatientApp]) -> bytes:
    return orjson.dumps({"apps": [a.to_json() for a in apps]}, option=orjson.OPT_INDENT_2)
