"""The registry of what this server actually serves, rendered as its CapabilityStatement.

Spec: https://hl7.org/fhir/R4/capabilitystatement.html and https://hl7.org/fhir/R4/http.html#capabilities.
Routers register what they mount (resource types, interactions, search parameters, operations); later
features add their operations with :meth:`Capabilities.add_operation`. Nothing here is hand-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from server.search.definitions import SearchRegistry
from server.search.query import COLUMN_PARAMS

FHIR_VERSION: Final = "4.0.1"
SOFTWARE_NAME: Final = "PriorGate"

TYPE_INTERACTIONS: Final = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SYSTEM_INTERACTIONS: Final = ("transaction", "batch", "history-system")

_SEARCH_PARAM_DEFINITIONS: Final = "http://hl7.org/fhir/SearchParameter"


@dataclass(frozen=True)
class Operation:
    """An operation (``$submit``) with its OperationDefinition canonical."""

    name: str
    definition: str


@dataclass(frozen=True)
class SearchParamEntry:
    name: str
    type: str
    definition: str | None = None


@dataclass
class ResourceCapability:
    """What the server does with one resource type."""

    interactions: list[str] = field(default_factory=list)
    search_params: list[SearchParamEntry] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    revincludes: list[str] = field(default_factory=list)


@dataclass
class Capabilities:
    """Built once per app in ``create_app``; mutated only while routers are being mounted."""

    software_version: str
    resources: dict[str, ResourceCapability] = field(default_factory=dict)
    system_interactions: list[str] = field(default_factory=list)
    system_operations: list[Operation] = field(default_factory=list)
    implementation_guides: list[str] = field(default_factory=list)
    security: dict[str, Any] | None = None  # CapabilityStatement.rest.security (SMART), when enforced

    def add_resource(self, resource_type: str, interactions: tuple[str, ...] = TYPE_INTERACTIONS) -> None:
        entry = self.resources.setdefault(resource_type, ResourceCapability())
        entry.interactions.extend(i for i in interactions if i not in entry.interactions)

    def add_search_params(self, resource_type: str, registry: SearchRegistry) -> None:
        """Advertise every parameter the search engine understands for ``resource_type``."""
        entry = self.resources.setdefault(resource_type, ResourceCapability())
        for code, param in COLUMN_PARAMS.items():
            entry.search_params.append(
                SearchParamEntry(code, param.type.value, f"{_SEARCH_PARAM_DEFINITIONS}/Resource-{code[1:]}")
            )
        for param in registry.params(resource_type).values():
            entry.search_params.append(SearchParamEntry(param.code, param.type.value))
            if param.type.value == "reference":
                entry.includes.append(f"{resource_type}:{param.code}")

    def add_operation(self, resource_type: str | None, name: str, definition_canonical: str) -> None:
        """Register ``$name`` on a type (or system-wide when ``resource_type`` is None)."""
        operation = Operation(name.lstrip("$"), definition_canonical)
        if resource_type is None:
            self.system_operations.append(operation)
        else:
            self.resources.setdefault(resource_type, ResourceCapability()).operations.append(operation)

    def add_profile(self, resource_type: str, profile_canonical: str) -> None:
        self.resources.setdefault(resource_type, ResourceCapability()).profiles.append(profile_canonical)

    def add_system_interaction(self, code: str) -> None:
        if code not in self.system_interactions:
            self.system_interactions.append(code)

    def add_implementation_guide(self, canonical: str) -> None:
        if canonical not in self.implementation_guides:
            self.implementation_guides.append(canonical)

    def to_fhir(self, base_url: str, date: datetime) -> dict[str, Any]:
        """Render the CapabilityStatement (kind ``instance``)."""
        resources = []
        for resource_type in sorted(self.resources):
            cap = self.resources[resource_type]
            entry: dict[str, Any] = {"type": resource_type}
            if cap.profiles:
                entry["supportedProfile"] = list(cap.profiles)
            entry["interaction"] = [{"code": code} for code in cap.interactions]
            if "update" in cap.interactions:
                entry["versioning"] = "versioned-update"
                entry["readHistory"] = True
                entry["updateCreate"] = True
            if "create" in cap.interactions:
                entry["conditionalCreate"] = True
            if cap.includes:
                entry["searchInclude"] = list(cap.includes)
            if cap.search_params:
                entry["searchParam"] = [_param(p) for p in cap.search_params]
            if cap.operations:
                entry["operation"] = [{"name": op.name, "definition": op.definition} for op in cap.operations]
            resources.append(entry)
        rest: dict[str, Any] = {"mode": "server"}
        if self.security is not None:
            rest["security"] = self.security
        rest["resource"] = resources
        if self.system_interactions:
            rest["interaction"] = [{"code": code} for code in self.system_interactions]
        if self.system_operations:
            rest["operation"] = [
                {"name": op.name, "definition": op.definition} for op in self.system_operations
            ]
        statement: dict[str, Any] = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": date.isoformat(timespec="seconds"),
            "publisher": SOFTWARE_NAME,
            "kind": "instance",
            "software": {"name": SOFTWARE_NAME, "version": self.software_version},
            "implementation": {"description": f"{SOFTWARE_NAME} FHIR server", "url": base_url},
            "fhirVersion": FHIR_VERSION,
            "format": ["application/fhir+json", "json"],
        }
        if self.implementation_guides:
            statement["implementationGuide"] = list(self.implementation_guides)
        statement["rest"] = [rest]
        return statement


def _param(entry: SearchParamEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"name": entry.name, "type": entry.type}
    if entry.definition:
        out["definition"] = entry.definition
    return out
