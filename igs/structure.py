"""Validation plans compiled from StructureDefinition snapshots.

A plan is the snapshot's flat ``element`` list turned into a tree of :class:`ElementNode` keyed by JSON
property name, with slices hanging off the sliced element
(https://hl7.org/fhir/R4/elementdefinition.html#slicing, ``id`` grammar ``path:sliceName``). Plans are built
once per profile and cached by :class:`Profiles`; each node also caches the children it validates against
once type profiles and base datatypes are merged in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from igs.packages import Package
from igs.registry import Registry

CORE_SD = "http://hl7.org/fhir/StructureDefinition/"

# FHIR R4 primitive types, with the JSON kind each is carried in.
PRIMITIVES: dict[str, str] = {
    "boolean": "bool",
    "integer": "int",
    "unsignedInt": "int",
    "positiveInt": "int",
    "integer64": "int",
    "decimal": "number",
    "string": "str",
    "code": "str",
    "id": "str",
    "markdown": "str",
    "uri": "str",
    "url": "str",
    "canonical": "str",
    "oid": "str",
    "uuid": "str",
    "base64Binary": "str",
    "instant": "str",
    "date": "str",
    "dateTime": "str",
    "time": "str",
    "xhtml": "str",
}
# FHIRPath system types appear as the type of ``id``, ``Extension.url`` and primitive ``value`` elements.
SYSTEM_TYPES: dict[str, str] = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
ALL_TYPES = (
    *PRIMITIVES,
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Distance",
    "Duration",
    "HumanName",
    "Identifier",
    "Money",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "Timing",
    "ContactDetail",
    "Contributor",
    "DataRequirement",
    "Expression",
    "ParameterDefinition",
    "RelatedArtifact",
    "TriggerDefinition",
    "UsageContext",
    "Dosage",
    "Meta",
)


@dataclass(frozen=True)
class TypeRef:
    """One ``ElementDefinition.type``: a type code plus optional profiles and reference target profiles."""

    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Discriminator:
    type: str  # value | pattern | type | profile | exists
    path: str


@dataclass(frozen=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str  # closed | open | openAtEnd
    ordered: bool


@dataclass(frozen=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str


class ElementNode:
    """One element of a snapshot, with its children and slices."""

    __slots__ = (
        "plan",
        "id",
        "path",
        "name",
        "slice_name",
        "min",
        "max",
        "types",
        "fixed",
        "pattern",
        "binding_strength",
        "binding_value_set",
        "constraints",
        "content_reference",
        "children",
        "slicing",
        "slices",
        "base",
        "is_choice",
        "repeats",
        "merged",
        "key_maps",
        "expectations",
    )

    def __init__(self, plan: Plan, element: dict[str, Any]) -> None:
        self.plan = plan
        self.id: str = element.get("id") or element["path"]
        self.path: str = element["path"]
        self.name: str = self.path.rsplit(".", 1)[-1]
        self.slice_name: str | None = element.get("sliceName")
        self.is_choice: bool = self.name.endswith("[x]")
        self.min: int = int(element.get("min", 0))
        raw_max = element.get("max", "*")
        self.max: int | None = None if raw_max == "*" else int(raw_max)
        base_max = (element.get("base") or {}).get("max", raw_max)
        self.repeats: bool = base_max == "*" or int(base_max) > 1  # JSON array in the base resource
        self.types: tuple[TypeRef, ...] = tuple(
            TypeRef(
                SYSTEM_TYPES.get(t["code"], t["code"]),
                tuple(t.get("profile", ())),
                tuple(t.get("targetProfile", ())),
            )
            for t in element.get("type", ())
        )
        self.fixed: Any = None
        self.pattern: Any = None
        for key, value in element.items():
            if key.startswith("fixed"):
                self.fixed = value
            elif key.startswith("pattern"):
                self.pattern = value
        binding = element.get("binding") or {}
        self.binding_strength: str | None = binding.get("strength") if binding.get("valueSet") else None
        self.binding_value_set: str | None = binding.get("valueSet")
        self.constraints: tuple[Constraint, ...] = tuple(
            Constraint(c["key"], c.get("severity", "error"), c.get("human", ""), c["expression"])
            for c in element.get("constraint", ())
            if c.get("expression")
        )
        ref = element.get("contentReference")
        self.content_reference: str | None = ref.split("#", 1)[1] if ref else None
        self.children: dict[str, ElementNode] = {}
        raw_slicing = element.get("slicing")
        self.slicing: Slicing | None = (
            Slicing(
                tuple(Discriminator(d["type"], d["path"]) for d in raw_slicing.get("discriminator", ())),
                raw_slicing.get("rules", "open"),
                bool(raw_slicing.get("ordered", False)),
            )
            if raw_slicing
            else None
        )
        self.slices: list[ElementNode] = []
        # Caches filled by the validator: merged children per type code, JSON key map, slice expectations.
        self.base: ElementNode | None = None  # for a slice: the sliced element
        self.merged: dict[str, dict[str, ElementNode]] = {}
        self.key_maps: dict[str, dict[str, tuple[ElementNode, str]]] = {}
        self.expectations: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ElementNode({self.id})"

    @property
    def max_repr(self) -> str:
        return "*" if self.max is None else str(self.max)


class Plan:
    """A compiled StructureDefinition: its root element tree and identity."""

    def __init__(self, sd: dict[str, Any], package: Package | None) -> None:
        self.url: str = sd["url"]
        self.version: str = sd.get("version", "")
        self.key: str = f"{self.url}|{self.version}" if self.version else self.url
        self.type: str = sd["type"]
        self.kind: str = sd.get("kind", "")
        self.derivation: str = sd.get("derivation", "specialization")
        self.base_definition: str | None = sd.get("baseDefinition")
        self.package = package
        self.context: tuple[tuple[str, str], ...] = tuple(
            (c.get("type", "element"), c.get("expression", "")) for c in sd.get("context", ())
        )
        self.by_id: dict[str, ElementNode] = {}
        elements = (sd.get("snapshot") or {}).get("element") or []
        if not elements:
            raise ValueError(f"StructureDefinition {self.url} has no snapshot")
        root: ElementNode | None = None
        for element in elements:
            node = ElementNode(self, element)
            self.by_id[node.id] = node
            if root is None:
                root = node
                continue
            parent_id, last = _split_id(node.id)
            if ":" in last and "." not in last.split(":", 1)[1]:
                base_name = last.split(":", 1)[0]
                base = self.by_id.get(f"{parent_id}.{base_name}" if parent_id else base_name)
                if base is None:
                    # Re-slices (``a:b/c``) hang off their parent slice.
                    base = self.by_id.get(f"{parent_id}.{last.rsplit('/', 1)[0]}")
                if base is not None:
                    node.base = base
                    base.slices.append(node)
                continue
            parent = self.by_id.get(parent_id)
            if parent is not None:
                parent.children[node.name] = node
        assert root is not None
        self.root = root

    def __repr__(self) -> str:
        return f"Plan({self.key})"


def _split_id(element_id: str) -> tuple[str, str]:
    """Split an element id at its last ``.`` that is not inside a slice name."""
    depth = 0
    for i in range(len(element_id) - 1, -1, -1):
        ch = element_id[i]
        if ch == "." and depth == 0:
            return element_id[:i], element_id[i + 1 :]
        if ch in "])":
            depth += 1
        elif ch in "[(":
            depth -= 1
    return "", element_id


class Profiles:
    """Resolves and caches plans for StructureDefinitions in a registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._plans: dict[tuple[str, str | None], Plan | None] = {}

    def plan(self, canonical: str, context: Package | None = None) -> Plan | None:
        key = (canonical, context.key if context is not None else None)
        if key in self._plans:
            return self._plans[key]
        found = self.registry.resolve_entry(canonical, context=context)
        plan: Plan | None = None
        if found is not None:
            package, entry = found
            sd = package.read(entry.filename)
            if sd.get("resourceType") == "StructureDefinition" and sd.get("snapshot"):
                plan = Plan(sd, package)
        self._plans[key] = plan
        return plan

    def core(self, type_name: str) -> Plan | None:
        return self.plan(CORE_SD + type_name)
