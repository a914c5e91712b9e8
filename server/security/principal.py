"""The authenticated caller of a request, as every protected route sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from igs.outcome import Failure, OperationOutcomeError
from server.security.scopes import Interaction, Scope, operation_allowed, operation_requirement, scope_allows

PrincipalKind = Literal["system", "user", "patient"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a registered client (SMART Backend Services) or an externally issued token.

    ``tenants`` are the organization ids the caller acts for (tenancy.py); ``roles`` are staff roles
    (``reviewer``, ``auditor``, ``admin``) granted at registration; ``kind`` is the SMART context of the
    granted scopes (``system`` for Backend Services). ``token_id`` is the access token's ``jti``, kept
    for audit records, never the token itself.
    """

    client_id: str
    tenants: frozenset[str]
    scopes: tuple[Scope, ...]
    roles: frozenset[str] = frozenset()
    kind: PrincipalKind = "system"
    subject: str = ""
    issuer: str = ""
    token_id: str = ""
    patient: str | None = None  # patient context, for patient/ scopes
    extra: tuple[tuple[str, str], ...] = field(default=())

    def allows(self, resource_type: str, interaction: Interaction) -> bool:
        return scope_allows(self.scopes, resource_type, interaction)

    def allows_operation(self, operation: str, resource_type: str | None = None) -> bool:
        return operation_allowed(self.scopes, operation, resource_type)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def scope_string(self) -> str:
        return " ".join(s.text or s.to_v2() for s in self.scopes)


def kind_of(scopes: tuple[Scope, ...]) -> PrincipalKind:
    """The principal's kind from its scopes: the narrowest context present (patient < user < system)."""
    contexts = {s.context for s in scopes}
    if "patient" in contexts:
        return "patient"
    if "user" in contexts:
        return "user"
    return "system"


def insufficient_scope(needed: str) -> OperationOutcomeError:
    """403 with the RFC 6750 §3.1 ``insufficient_scope`` challenge naming the scope that was missing."""
    return OperationOutcomeError.of(
        Failure.FORBIDDEN,
        f"the access token's scopes do not cover {needed}",
        code="forbidden",
        headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
    )


def authorize(principal: Principal, resource_type: str, interaction: Interaction) -> None:
    """Raise 403 unless the principal's scopes permit ``interaction`` on ``resource_type``.

    For routes whose resource type is a path parameter (``/fhir/{type}/{id}``).
    """
    if not principal.allows(resource_type, interaction):
        raise insufficient_scope(f"system/{resource_type}.{interaction}")


def authorize_operation(principal: Principal, operation: str, resource_type: str | None = None) -> None:
    """Raise 403 unless the principal's scopes permit the FHIR operation (scopes.OPERATION_REQUIREMENTS)."""
    if not principal.allows_operation(operation, resource_type):
        req = operation_requirement(operation, resource_type)
        letters = "".join(sorted(req.any_of, key="cruds".index))
        raise insufficient_scope(f"system/{req.resource_type}.{letters}")
