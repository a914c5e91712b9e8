"""The storage view of one caller: :class:`PrincipalAccess` answers the repository's ``TenantAccess``
questions (which tenants it reads, where its new resources go, whether it may change one) from the
tenant rule in ``tenancy.py``.

A client acting for several organizations (an intermediary) names the one a new resource belongs to
with the ``X-PriorGate-Organization`` request header (:data:`ORGANIZATION_HEADER`); reads cover all of
its organizations.
"""

from __future__ import annotations

from dataclasses import dataclass

from igs.outcome import Failure, OperationOutcomeError
from server.security.principal import Principal
from server.security.tenancy import (
    ALL_TYPES,
    DEFAULT_TENANCY,
    TenancyRule,
    ensure_writable,
    read_filter,
    write_tenant,
)

ORGANIZATION_HEADER = "x-priorgate-organization"

# The tenant AuditEvents are stored in: no client acts for it, so only roles reaching AuditEvent across
# tenants (auditor, admin) read them, and nobody writes there through the API.
AUDIT_TENANT = "audit"


@dataclass(frozen=True)
class PrincipalAccess:
    """``TenantAccess`` for ``principal``; ``requested`` is the organization named for new resources."""

    principal: Principal
    requested: str | None = None
    rule: TenancyRule = DEFAULT_TENANCY

    def readable(self, resource_type: str | None) -> tuple[str, ...] | None:
        if resource_type is None:
            # System-level history: the caller's own tenants; every tenant for a role reaching all types.
            if any(self.rule.cross_tenant_read.get(role) == ALL_TYPES for role in self.principal.roles):
                return None
            return tuple(sorted(self.principal.tenants))
        return read_filter(self.principal, resource_type, self.rule).sql_values()

    def tenant_for_new(self, resource_type: str) -> str:
        return write_tenant(self.principal, resource_type, self.requested, self.rule)

    def check_write(self, resource_type: str, resource_id: str, owner: str) -> None:
        ensure_writable(self.principal, resource_type, resource_id, owner, self.rule)


@dataclass(frozen=True)
class OpenAccess:
    """``TenantAccess`` without authentication (``PRIORGATE_AUTH_MODE=off``): everything in one tenant,
    but read-only types (AuditEvent) still refuse API writes (405)."""

    tenant: str = ""
    rule: TenancyRule = DEFAULT_TENANCY

    def readable(self, resource_type: str | None) -> tuple[str, ...] | None:
        return (self.tenant,)

    def tenant_for_new(self, resource_type: str) -> str:
        self._check_type(resource_type)
        return self.tenant

    def check_write(self, resource_type: str, resource_id: str, owner: str) -> None:
        self._check_type(resource_type)

    def _check_type(self, resource_type: str) -> None:
        if resource_type in self.rule.api_read_only_types:
            raise OperationOutcomeError.of(
                Failure.METHOD_NOT_ALLOWED, f"{resource_type} resources cannot be changed through the API"
            )


class ReadEverywhere:
    """``TenantAccess`` reading every tenant and writing nowhere: the payer's own lookups (a member by
    identifier, the members of an export), never a caller's view."""

    def readable(self, resource_type: str | None) -> tuple[str, ...] | None:
        return None

    def tenant_for_new(self, resource_type: str) -> str:
        raise OperationOutcomeError.of(Failure.INTERNAL, "a read-only view of every tenant cannot write")

    def check_write(self, resource_type: str, resource_id: str, owner: str) -> None:
        raise OperationOutcomeError.of(Failure.INTERNAL, "a read-only view of every tenant cannot write")


READ_EVERYWHERE = ReadEverywhere()
