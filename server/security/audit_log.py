"""Where AuditEvents go: FHIR AuditEvent resources in the repository, in their own tenant.

The audit tenant (``access.AUDIT_TENANT``) belongs to no client, so only roles reaching AuditEvent
across tenants (``auditor``, ``admin``) find them with ``GET /fhir/AuditEvent``, and the tenant rule
refuses every API write to an AuditEvent (405). Events are searchable like any resource (``date``,
``agent``, ``entity``, ``outcome``, ``subtype``...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from server.security.access import AUDIT_TENANT
from server.security.audit import AuditSource
from server.storage.repository import Repository


class AuditWriter(Protocol):
    """Where a background worker's AuditEvents go (an :class:`AuditLog`): a blocking write, run in a
    thread by async callers."""

    @property
    def source(self) -> AuditSource: ...

    def write(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class AuditLog:
    """Stores AuditEvents (the ``AuditTrail`` middleware's sink; PAS decisions call :meth:`record`)."""

    repository: Repository  # already ``for_tenant(AUDIT_TENANT)``
    source: AuditSource
    now: Callable[[], datetime]

    @classmethod
    def over(cls, repository: Repository, source: AuditSource, now: Callable[[], datetime]) -> AuditLog:
        return cls(repository.for_tenant(AUDIT_TENANT), source, now)

    def write(self, event: dict[str, Any]) -> None:
        self.repository.create("AuditEvent", event)

    async def record(self, event: dict[str, Any]) -> None:
        await run_in_threadpool(self.write, event)
