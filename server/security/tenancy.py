"""The tenant rule: every stored resource belongs to one organization (its *tenant*), and a caller
sees only its own organizations' resources unless a staff role widens that.

How the storage layer uses it:

* on create, stamp the resource with :func:`write_tenant` (stored beside the resource, never inside it);
  a resource answering another tenant's resource (a reviewer's ClaimResponse, Communication or Task
  for a submitter's Claim) is stamped with the *answered* resource's tenant, passed as ``requested``,
  so the submitter can read it;
* on read/vread/history/update/delete by id, load the row's tenant and call :func:`ensure_readable` /
  :func:`ensure_writable`: another tenant's resource answers **404** exactly as a missing one does
  (:func:`not_found_error`), never 403, so existence is not confirmed;
* on search, ``_include``/``_revinclude``, ``$inquire`` and every other query, put
  :func:`read_filter` into the SQL ``WHERE`` (``tenant IN (...)``) of *every* statement, including the
  one fetching included resources, so paging counts and totals stay correct and nothing leaks.

Shared (published) content such as Questionnaires, Libraries and ValueSets lives in the publisher
tenant, is readable by every authenticated caller (scopes still apply) and writable only by ``admin``.

Storage note: resource ids must be unique across tenants (server-assigned UUIDs) for filters spanning
several tenants (intermediaries, reviewers) to identify one resource by type and id. AuditEvents are never
writable through the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from igs.outcome import Failure, OperationOutcomeError
from server.security.principal import Principal


class Role(StrEnum):
    """Staff roles a client registration (or external token) may carry."""

    SUBMITTER = "submitter"  # the default: an EHR, intermediary or app acting for its organization(s)
    REVIEWER = "reviewer"  # payer UM staff: reads every tenant's requests, writes decisions
    AUDITOR = "auditor"  # reads AuditEvents of every tenant
    ADMIN = "admin"  # payer administrators: everything, including published content


ALL_TYPES: Literal["*"] = "*"
Reach = frozenset[str] | Literal["*"]  # the resource types a role reaches across tenants

SHARED_TYPES: frozenset[str] = frozenset(
    {
        "ActivityDefinition",
        "CapabilityStatement",
        "CodeSystem",
        "ConceptMap",
        "ImplementationGuide",
        "Library",
        "NamingSystem",
        "OperationDefinition",
        "PlanDefinition",
        "Questionnaire",
        "SearchParameter",
        "StructureDefinition",
        "SubscriptionTopic",
        "ValueSet",
    }
)

# The PA exchange and its supporting clinical data: what a reviewer works on.
_REVIEW_TYPES: frozenset[str] = frozenset(
    {
        "Binary",
        "Bundle",
        "Claim",
        "ClaimResponse",
        "Communication",
        "CommunicationRequest",
        "Condition",
        "Coverage",
        "DeviceRequest",
        "DocumentReference",
        "Encounter",
        "Location",
        "MedicationRequest",
        "NutritionOrder",
        "Observation",
        "Organization",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "ServiceRequest",
        "Task",
        "VisionPrescription",
    }
)


@dataclass(frozen=True)
class TenancyRule:
    """Which types are shared, what each role may reach across tenants, what is never writable."""

    shared_types: frozenset[str] = SHARED_TYPES
    # The tenant holding the payer's published content: the storage layer's default tenant ("", see
    # server/storage/repository.py), where demo content and IG content are loaded.
    publisher_tenant: str = ""
    cross_tenant_read: Mapping[str, Reach] = field(
        default_factory=lambda: MappingProxyType(
            {
                Role.REVIEWER.value: _REVIEW_TYPES,
                Role.AUDITOR.value: frozenset({"AuditEvent"}),
                Role.ADMIN.value: ALL_TYPES,
            }
        )
    )
    cross_tenant_write: Mapping[str, Reach] = field(
        default_factory=lambda: MappingProxyType(
            {
                Role.REVIEWER.value: frozenset(
                    {"ClaimResponse", "Communication", "CommunicationRequest", "Task"}
                ),
                Role.ADMIN.value: ALL_TYPES,
            }
        )
    )
    api_read_only_types: frozenset[str] = frozenset({"AuditEvent"})
    # Types only roles writing across tenants (payer administrators) write: attribution Groups decide
    # whose data a bulk export discloses (server/bulk/groups.py).
    staff_written_types: frozenset[str] = frozenset({"Group"})

    def is_shared(self, resource_type: str) -> bool:
        return resource_type in self.shared_types

    def _role_reaches(self, table: Mapping[str, Reach], roles: frozenset[str], rt: str) -> bool:
        for role in roles:
            reach = table.get(role)
            if reach == ALL_TYPES or (isinstance(reach, frozenset) and rt in reach):
                return True
        return False

    def reads_all_tenants(self, principal: Principal, resource_type: str) -> bool:
        return self._role_reaches(self.cross_tenant_read, principal.roles, resource_type)

    def writes_all_tenants(self, principal: Principal, resource_type: str) -> bool:
        return self._role_reaches(self.cross_tenant_write, principal.roles, resource_type)


DEFAULT_TENANCY = TenancyRule()


@dataclass(frozen=True)
class TenantFilter:
    """The tenant condition of a query: either unrestricted, or ``tenant IN tenants`` (maybe empty)."""

    unrestricted: bool
    tenants: frozenset[str] = frozenset()

    def sql_values(self) -> tuple[str, ...] | None:
        """``None`` = no tenant condition; otherwise the sorted values for ``tenant IN (...)``.

        An empty tuple means the query must return nothing (emit ``1 = 0``, not ``IN ()``).
        """
        return None if self.unrestricted else tuple(sorted(self.tenants))

    def admits(self, tenant: str | None) -> bool:
        return self.unrestricted or (tenant is not None and tenant in self.tenants)


def read_filter(
    principal: Principal, resource_type: str, rule: TenancyRule = DEFAULT_TENANCY
) -> TenantFilter:
    """The tenant filter for reading or searching ``resource_type`` as ``principal``.

    Shared (published) types add the publisher tenant to the caller's own; staff roles reaching the
    type across tenants get no tenant condition.
    """
    if rule.reads_all_tenants(principal, resource_type):
        return TenantFilter(unrestricted=True)
    if rule.is_shared(resource_type):
        return TenantFilter(unrestricted=False, tenants=principal.tenants | {rule.publisher_tenant})
    return TenantFilter(unrestricted=False, tenants=principal.tenants)


def not_found_error(resource_type: str, resource_id: str) -> OperationOutcomeError:
    """The one 404 for "absent" and "another tenant's": identical text, so neither is distinguishable."""
    return OperationOutcomeError.of(Failure.NOT_FOUND, f"{resource_type}/{resource_id} is not known")


def ensure_readable(
    principal: Principal,
    resource_type: str,
    resource_id: str,
    owner_tenant: str | None,
    rule: TenancyRule = DEFAULT_TENANCY,
) -> None:
    """Raise the 404 of :func:`not_found_error` unless ``principal`` may see this stored resource."""
    if not read_filter(principal, resource_type, rule).admits(owner_tenant):
        raise not_found_error(resource_type, resource_id)


def ensure_writable(
    principal: Principal,
    resource_type: str,
    resource_id: str,
    owner_tenant: str | None,
    rule: TenancyRule = DEFAULT_TENANCY,
) -> None:
    """Check an update/patch/delete of an existing resource: 404 when unseen, 403 when seen but not
    writable (shared content for non-admins, a reviewer touching a submitter-only type)."""
    ensure_readable(principal, resource_type, resource_id, owner_tenant, rule)
    _ensure_type_writable(principal, resource_type, rule)
    if owner_tenant in principal.tenants and not rule.is_shared(resource_type):
        return
    if not rule.writes_all_tenants(principal, resource_type):
        raise OperationOutcomeError.of(
            Failure.FORBIDDEN, f"this client may not modify {resource_type} resources of other organizations"
        )


def _ensure_type_writable(principal: Principal, resource_type: str, rule: TenancyRule) -> None:
    if resource_type in rule.api_read_only_types:
        raise OperationOutcomeError.of(
            Failure.METHOD_NOT_ALLOWED, f"{resource_type} resources cannot be changed through the API"
        )
    if rule.is_shared(resource_type) and not rule.writes_all_tenants(principal, resource_type):
        raise OperationOutcomeError.of(
            Failure.FORBIDDEN, f"{resource_type} is published content; only administrators change it"
        )
    if resource_type in rule.staff_written_types and not rule.writes_all_tenants(principal, resource_type):
        raise OperationOutcomeError.of(
            Failure.FORBIDDEN, f"{resource_type} resources are written by payer administrators only"
        )


def write_tenant(
    principal: Principal,
    resource_type: str,
    requested: str | None = None,
    rule: TenancyRule = DEFAULT_TENANCY,
) -> str:
    """The tenant a newly created resource belongs to.

    Shared content belongs to the publisher tenant. Otherwise: the ``requested`` tenant (e.g. from the
    submitting organization) if the caller acts for it or may write across tenants, else the caller's
    only tenant; a caller with several tenants must name one (422 otherwise).
    """
    _ensure_type_writable(principal, resource_type, rule)
    if rule.is_shared(resource_type):
        return rule.publisher_tenant
    if requested is not None:
        if requested in principal.tenants or rule.writes_all_tenants(principal, resource_type):
            return requested
        raise OperationOutcomeError.of(
            Failure.FORBIDDEN, f"this client does not act for organization {requested}"
        )
    if len(principal.tenants) == 1:
        return next(iter(principal.tenants))
    raise OperationOutcomeError.of(
        Failure.UNPROCESSABLE,
        "this client acts for several organizations; name the one this resource belongs to",
        code="business-rule",
    )
