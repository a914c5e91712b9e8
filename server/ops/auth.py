"""Staff login for the operations pages: argon2id password hashes, server-side sessions behind an opaque
cookie (only its SHA-256 is stored), a per-session CSRF token on every form, and the role table.

Roles: ``reviewer`` works requests it is assigned (approve, modify, ask for information, extend,
peer-to-peer); ``clinician-reviewer`` can also deny (42 CFR 422.566(d): adverse decisions need a
clinician) and record appeal outcomes; ``manager`` assigns work and records appeals; ``admin`` assigns
work. Everyone signed in sees the queue, requests and dashboard.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Role(StrEnum):
    REVIEWER = "reviewer"
    CLINICIAN_REVIEWER = "clinician-reviewer"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final[Mapping[Role, str]] = MappingProxyType(
    {
        Role.REVIEWER: "Reviewer",
        Role.CLINICIAN_REVIEWER: "Clinician reviewer",
        Role.MANAGER: "Manager",
        Role.ADMIN: "Administrator",
    }
)


class Permission(StrEnum):
    DECIDE = "decide"  # approve, modify, request information, extend, peer-to-peer
    DENY = "deny"
    ASSIGN = "assign"  # assign any open request to anyone
    TAKE = "take"  # assign an open request to oneself
    APPEAL = "appeal"  # record an appeal and its outcome


PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = MappingProxyType(
    {
        Role.REVIEWER: frozenset({Permission.DECIDE, Permission.TAKE}),
        Role.CLINICIAN_REVIEWER: frozenset(
            {Permission.DECIDE, Permission.DENY, Permission.TAKE, Permission.APPEAL}
        ),
        Role.MANAGER: frozenset({Permission.ASSIGN, Permission.TAKE, Permission.APPEAL}),
        Role.ADMIN: frozenset({Permission.ASSIGN}),
    }
)


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False


SESSION_COOKIE: Final = "priorgate_ops"
LOGIN_CSRF_COOKIE: Final = "priorgate_ops_login"


class Passwords:
    """argon2id hashing (RFC 9106 parameters from argon2-cffi's defaults, or cheaper ones for tests)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verifying against this on an unknown user keeps login timing the same as for a wrong password.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def origin_of(base_url: str | None) -> str | None:
    """``scheme://host[:port]`` of a base URL (``PRIORGATE_BASE_URL``), or ``None``."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def same_origin(origin: str | None, own: str, public: str | None) -> bool:
    """A form post's ``Origin`` check: no header (older browsers, same-origin GET-then-POST), or this
    server's own origin: the request's (``own``), or the public one behind a proxy (``public``)."""
    return origin is None or origin == own or (public is not None and origin == public)
