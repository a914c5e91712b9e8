"""A batch of patients' resources, across every tenant: the payer's view of what it holds about its
members (Provider Access and Payer-to-Payer share what the payer holds, whoever submitted it).

One statement per batch: resources of the wanted types whose ``patient``, ``subject`` or ``beneficiary``
search reference names one of the patients (from the search index), plus the Patient resources
themselves; current, undeleted versions only, with their exact stored JSON.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, select, text

from server.storage.schema import idx_reference, resource, resource_version

# Search parameters linking a resource to its patient (R4 patient compartment, as indexed).
PATIENT_PARAMS: tuple[str, ...] = ("patient", "subject", "beneficiary")


@dataclass(frozen=True)
class PatientResource:
    patient_id: str
    resource_type: str
    resource_id: str
    last_updated: str  # stored timestamp
    raw: bytes
    tenant: str = ""  # who recorded it


def _current() -> tuple[object, ...]:
    return (
        resource.c.tenant,
        resource.c.resource_type,
        resource.c.resource_id,
        resource.c.last_updated,
        resource_version.c.raw,
    )


def _joined_versions() -> object:
    return resource.join(
        resource_version,
        and_(
            resource_version.c.tenant == resource.c.tenant,
            resource_version.c.resource_type == resource.c.resource_type,
            resource_version.c.resource_id == resource.c.resource_id,
            resource_version.c.version_id == resource.c.version_id,
        ),
    )


# The distinct tenants, one index probe each (a "loose index scan" over pk_resource, which leads with
# tenant): naming them lets every statement below use the tenant-leading indexes.
_TENANTS = text(
    "WITH RECURSIVE t(tenant) AS (SELECT MIN(tenant) FROM resource UNION ALL "
    "SELECT (SELECT MIN(r.tenant) FROM resource r WHERE r.tenant > t.tenant) FROM t "
    "WHERE t.tenant IS NOT NULL) "
    "SELECT tenant FROM t WHERE tenant IS NOT NULL"
)


def tenants(connection: Connection) -> list[str]:
    """Every tenant holding resources."""
    return [str(row[0]) for row in connection.execute(_TENANTS)]


def patient_resources(
    connection: Connection,
    patient_ids: Sequence[str],
    types: Collection[str],
    in_tenants: Sequence[str] | None = None,
) -> list[PatientResource]:
    """Every current resource of ``types`` about one of ``patient_ids`` (each resource once), in every
    tenant (``in_tenants``: the result of :func:`tenants`, when the caller already has it)."""
    if not patient_ids or not types:
        return []
    every = list(in_tenants) if in_tenants is not None else tenants(connection)
    found: dict[tuple[str, str], PatientResource] = {}
    if "Patient" in types:
        rows = connection.execute(
            select(*_current())  # type: ignore[call-overload]
            .select_from(_joined_versions())
            .where(
                resource.c.tenant.in_(every),
                resource.c.resource_type == "Patient",
                resource.c.resource_id.in_(list(patient_ids)),
                resource.c.deleted.is_(False),
            )
        ).all()
        for row in rows:
            found[("Patient", row.resource_id)] = PatientResource(
                row.resource_id, "Patient", row.resource_id, row.last_updated, bytes(row.raw), row.tenant
            )
    others = sorted(set(types) - {"Patient"})
    if others:
        rows = connection.execute(
            select(idx_reference.c.target_id, *_current())
            .select_from(
                idx_reference.join(
                    resource,
                    and_(
                        resource.c.tenant == idx_reference.c.tenant,
                        resource.c.resource_type == idx_reference.c.resource_type,
                        resource.c.resource_id == idx_reference.c.resource_id,
                    ),
                ).join(
                    resource_version,
                    and_(
                        resource_version.c.tenant == resource.c.tenant,
                        resource_version.c.resource_type == resource.c.resource_type,
                        resource_version.c.resource_id == resource.c.resource_id,
                        resource_version.c.version_id == resource.c.version_id,
                    ),
                )
            )
            .where(
                idx_reference.c.tenant.in_(every),
                idx_reference.c.target_type == "Patient",
                idx_reference.c.target_id.in_(list(patient_ids)),
                idx_reference.c.param.in_(PATIENT_PARAMS),
                idx_reference.c.resource_type.in_(others),
                resource.c.deleted.is_(False),
            )
        ).all()
        for row in rows:
            key = (row.resource_type, row.resource_id)
            if key not in found:
                found[key] = PatientResource(
                    row.target_id,
                    row.resource_type,
                    row.resource_id,
                    row.last_updated,
                    bytes(row.raw),
                    row.tenant,
                )
    return list(found.values())
