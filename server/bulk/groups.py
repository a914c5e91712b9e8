"""Attribution Groups: who is in a Provider Access or Payer-to-Payer export, and who may ask for it.

A Group (``type`` person, ``actual`` true) lists the attributed members as ``member.entity`` Patient
references; ``managingEntity`` names the Organization the export is for: the provider organization
(Provider Access) or the requesting payer (Payer-to-Payer, ``Group.code`` ``payer-to-payer`` from
:data:`~server.bulk.codes.EXPORT_PURPOSE_SYSTEM`). Members marked ``inactive`` or whose ``period`` has
ended are left out.

Who writes: payer administrators (the ``admin`` role; the tenant rule makes Group a staff-written type),
usually into the managing organization's tenant (``X-PriorGate-Organization``) so that organization can
read its Group too; and ``$member-match``, which keeps each requesting payer's Payer-to-Payer Group of
matched members in that payer's tenant (``server/member_match/payer_group.py``). Who exports: an
administrator, or a caller acting for the managing organization
(its tenant is the Organization id). Anyone else gets 404 when the Group is not theirs to see, 403 when
they can read it but it names another organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from igs.outcome import Failure, OperationOutcomeError
from server.consent.codes import PAYER_ID_SYSTEM
from server.consent.decision import Payer
from server.search.values import parse_date_range, timestamp
from server.security.access import READ_EVERYWHERE
from server.security.principal import Principal
from server.security.tenancy import Role, not_found_error, read_filter
from server.storage.repository import Repository

from .codes import EXPORT_PURPOSE_SYSTEM, Purpose


def payer_view(repository: Repository) -> Repository:
    """The payer's own read-only view of every tenant (what an export reads)."""
    return repository.acting_for(READ_EVERYWHERE)


@dataclass(frozen=True)
class AttributionGroup:
    group_id: str
    tenant: str
    purpose: Purpose
    managing_entity: str  # "Organization/<id>"
    managing_identifier: str | None  # a payer-id given on the reference itself
    members: tuple[str, ...]  # Patient ids, in Group order

    @property
    def reference(self) -> str:
        return f"Group/{self.group_id}"


def _purpose(group: dict[str, Any]) -> Purpose:
    code = group.get("code")
    for coding in code.get("coding") or () if isinstance(code, dict) else ():
        if isinstance(coding, dict) and coding.get("system") == EXPORT_PURPOSE_SYSTEM:
            try:
                return Purpose(str(coding.get("code")))
            except ValueError:
                raise OperationOutcomeError.of(
                    Failure.UNPROCESSABLE,
                    f"Group.code {coding.get('code')!r} is not an export purpose of {EXPORT_PURPOSE_SYSTEM}",
                    code="business-rule",
                ) from None
    return Purpose.PROVIDER_ACCESS


def _active(member: dict[str, Any], now: str) -> bool:
    if member.get("inactive") is True:
        return False
    period = member.get("period")
    end = period.get("end") if isinstance(period, dict) else None
    ended = parse_date_range(end) if isinstance(end, str) else None
    return ended is None or ended.high >= now


def _patient_id(reference: Any) -> str | None:
    text = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(text, str):
        return None
    parts = text.split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] else None


def attribution_group(group: dict[str, Any], tenant: str, now: datetime) -> AttributionGroup:
    """Read an attribution Group (422 without a managing Organization)."""
    entity = group.get("managingEntity")
    reference = entity.get("reference") if isinstance(entity, dict) else None
    if not isinstance(reference, str) or not reference.startswith("Organization/"):
        raise OperationOutcomeError.of(
            Failure.UNPROCESSABLE,
            "an exportable Group names the Organization it is for in managingEntity (Organization/<id>)",
            code="business-rule",
        )
    identifier = entity.get("identifier") if isinstance(entity, dict) else None
    payer_id = (
        identifier.get("value")
        if isinstance(identifier, dict) and identifier.get("system") == PAYER_ID_SYSTEM
        else None
    )
    stamp = timestamp(now)
    members: dict[str, None] = {}  # in Group order, each patient once
    for member in group.get("member") or ():
        if isinstance(member, dict) and _active(member, stamp):
            patient = _patient_id(member.get("entity"))
            if patient is not None:
                members[patient] = None
    return AttributionGroup(
        group_id=str(group.get("id")),
        tenant=tenant,
        purpose=_purpose(group),
        managing_entity=reference,
        managing_identifier=payer_id if isinstance(payer_id, str) else None,
        members=tuple(members),
    )


def find_group(payer: Repository, group_id: str) -> tuple[dict[str, Any], str]:
    """The Group as the payer holds it (any tenant) and its tenant; 404 when unknown or deleted."""
    with payer.reading() as tx:
        stored = tx.find("Group", group_id)
    if stored is None or stored.deleted:
        raise not_found_error("Group", group_id)
    return stored.resource(), stored.tenant


def load_group(payer: Repository, group_id: str, now: datetime) -> AttributionGroup:
    group, tenant = find_group(payer, group_id)
    return attribution_group(group, tenant, now)


def _managing_reference(group: dict[str, Any]) -> str | None:
    entity = group.get("managingEntity")
    reference = entity.get("reference") if isinstance(entity, dict) else None
    return reference if isinstance(reference, str) else None


def ensure_may_export(principal: Principal | None, group: dict[str, Any], tenant: str) -> None:
    """Raise unless ``principal`` may export ``group`` stored in ``tenant`` (``None``: authentication
    is off). Checked before anything else about the Group is said, so nothing leaks to strangers."""
    if principal is None or principal.has_role(Role.ADMIN.value):
        return
    managing = _managing_reference(group)
    if managing is not None and any(managing == f"Organization/{t}" for t in principal.tenants):
        return
    group_id = str(group.get("id"))
    if read_filter(principal, "Group").admits(tenant):
        raise OperationOutcomeError.of(
            Failure.FORBIDDEN, f"Group/{group_id} is managed by another organization; it may not export it"
        )
    raise not_found_error("Group", group_id)


def requesting_payer(payer: Repository, group: AttributionGroup) -> Payer:
    """The payer a Payer-to-Payer export is for: the managing Organization, by its reference and by its
    ``https://priorgate.org/fhir/sid/payer-id`` identifiers (on the Organization or the reference)."""
    ids: set[str] = {group.managing_identifier} if group.managing_identifier else set()
    org_id = group.managing_entity.split("/", 1)[1]
    with payer.reading() as tx:
        stored = tx.find("Organization", org_id)
    if stored is not None and not stored.deleted:
        for identifier in stored.resource().get("identifier") or ():
            if isinstance(identifier, dict) and identifier.get("system") == PAYER_ID_SYSTEM:
                value = identifier.get("value")
                if isinstance(value, str):
                    ids.add(value)
    return Payer(organizations=frozenset({group.managing_entity}), payer_ids=frozenset(ids))
