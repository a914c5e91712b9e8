"""Profile validation of FHIR R4 JSON against StructureDefinition snapshots.

Checks, per https://hl7.org/fhir/R4/profiling.html and https://hl7.org/fhir/R4/validation.html: unknown
elements, JSON shape of primitives and arrays, cardinality, types and choice types (``value[x]``),
``fixed[x]``/``pattern[x]``, slicing (value, pattern, type, profile and exists discriminators; closed, open,
openAtEnd; ordered), extensions (URL resolution, declared context, value type), reference target types
(Bundle-internal ``fullUrl``/``urn:uuid`` and contained references, ``targetProfile``), required and
extensible bindings expandable from loaded packages, and FHIRPath invariants. A resource is validated against
an explicit profile, else its ``meta.profile``, else its base type; Bundle entries also against the profiles
the Bundle profile's entry slices require.

Issue ``expression`` paths are simple FHIRPath: ``Bundle.entry[2].resource.item[0].productOrService``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from igs.invariants import NATIVE_KEYS, Invariants, native_check
from igs.outcome import Issue, Severity, operation_outcome
from igs.packages import Package
from igs.registry import Registry
from igs.structure import ALL_TYPES, CORE_SD, PRIMITIVES, Constraint, ElementNode, Plan, Profiles, TypeRef
from igs.suppressions import Suppression, apply_suppressions, load_suppressions
from igs.terminology import Terminology

# Cross-version extensions are defined by packages generated on the fly by the HL7 tooling; no package here
# carries them, so they cannot be resolved (a warning, not an error).
UNRESOLVABLE_EXTENSION_PREFIXES = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-",
    "http://hl7.org/fhir/4.3/StructureDefinition/extension-",
    "http://hl7.org/fhir/3.0/StructureDefinition/extension-",
)

_FORMATS: dict[str, re.Pattern[str]] = {
    "date": re.compile(
        r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
    ),
    "dateTime": re.compile(
        r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
        r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
    ),
    "instant": re.compile(
        r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
        r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
    ),
    "time": re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"),
    "id": re.compile(r"[A-Za-z0-9\-\.]{1,64}"),
    "code": re.compile(r"[^\s]+( [^\s]+)*"),
    "uri": re.compile(r"\S*"),
    "url": re.compile(r"\S*"),
    "canonical": re.compile(r"\S*"),
    "oid": re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+"),
    "uuid": re.compile(
        r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    ),
}
CORE_PACKAGE, CORE_VERSION = "hl7.fhir.r4.core", "4.0.1"
_RESOURCE_BASES = frozenset({"Resource", "DomainResource"})
_STRUCTURAL = frozenset({"BackboneElement", "Element", "Extension", "Resource", "DomainResource"})
# An extension context path is tracked from the resource root and, after the separator, from the innermost
# complex datatype (contexts may be written either way: ``MedicationRequest.dosageInstruction.timing`` or
# ``Dosage.timing``).
_CTX_SEP = "|"
# Built lazily as (parent, child name) pairs from a root path string; names starting with _CTX_SEP start a
# datatype-rooted path. Only an extension context check turns it into strings (see _ctx_parts).
Ctx = str | tuple[Any, str]


@dataclass(frozen=True)
class Finding:
    """An issue plus the profile whose rule produced it (suppressions match on it)."""

    issue: Issue
    profile: str


@dataclass(frozen=True)
class Visit:
    """One value the validator checked: where, against which element definition, as which type."""

    path: str
    node: ElementNode
    type_code: str
    value: Any


@dataclass
class _Run:
    """Mutable state of one validation call."""

    findings: list[Finding] = field(default_factory=list)
    bundle: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    root: dict[str, Any] = field(default_factory=dict)
    conforms: dict[tuple[int, str], int] = field(default_factory=dict)
    # Findings of a resource against one profile, with paths relative to the resource, reused when the
    # same Bundle entry is checked again (as a reference target and as an entry).
    walked: dict[tuple[int, str], list[Finding]] = field(default_factory=dict)
    plan: Plan | None = None
    visits: list[Visit] | None = None
    package: Package | None = None  # resolve canonicals within this IG package (and its dependencies) first
    container: dict[str, Any] = field(default_factory=dict)


class Validator:
    """Validates resources against profiles loaded in a :class:`~igs.registry.Registry`.

    Profiles, value set expansions and compiled FHIRPath are cached on the instance: keep one per process.
    """

    def __init__(
        self,
        registry: Registry,
        suppressions: Sequence[Suppression] | None = None,
        *,
        package: Package | None = None,
        invariants: bool = True,
    ) -> None:
        self.registry = registry
        self.profiles = Profiles(registry)
        self.terminology = Terminology(registry)
        self.invariants = Invariants()
        self.check_invariants = invariants
        self.suppressions: tuple[Suppression, ...] = tuple(
            load_suppressions() if suppressions is None else suppressions
        )
        self.package = package

    # -- public API --------------------------------------------------------------------------------------

    def validate(
        self, resource: Any, profile: str | Sequence[str] | None = None, *, package: Package | None = None
    ) -> list[Issue]:
        """Validate ``resource`` against ``profile`` (or its ``meta.profile``, or its base type).

        ``package`` (default: the validator's) decides which IG version a canonical without ``|version``
        resolves to: that package and its dependencies first.

        Returns the issues left after suppressions, errors first. Spec: https://hl7.org/fhir/R4/validation.html
        """
        return [f.issue for f in self.findings(resource, profile, package=package)]

    def findings(
        self,
        resource: Any,
        profile: str | Sequence[str] | None = None,
        visits: list[Visit] | None = None,
        *,
        package: Package | None = None,
    ) -> list[Finding]:
        """Like :meth:`validate`, keeping each issue's profile; ``visits`` collects every value checked."""
        self.registry.require(CORE_PACKAGE, CORE_VERSION)
        run = _Run(visits=visits, package=package or self.package)
        if not isinstance(resource, dict):
            self._add(run, "error", "structure", "A resource must be a JSON object", "", "")
            return run.findings
        rt = resource.get("resourceType")
        path = rt if isinstance(rt, str) else "Resource"
        profiles = [profile] if isinstance(profile, str) else list(profile or ())
        explicit = bool(profiles)
        self._resource(run, resource, profiles, path, include_declared=not explicit)
        kept = apply_suppressions(_dedupe(run.findings), self.suppressions)
        order = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
        return sorted(kept, key=lambda f: order[f.issue.severity])

    def outcome(
        self, resource: Any, profile: str | Sequence[str] | None = None, *, package: Package | None = None
    ) -> dict[str, Any]:
        """The OperationOutcome for ``$validate`` (https://hl7.org/fhir/R4/resource-operation-validate.html)."""
        return operation_outcome(self.validate(resource, profile, package=package))

    def preload(self, canonicals: Iterable[str]) -> int:
        """Compile the plans for these profiles ahead of the first request; returns how many were found."""
        return sum(1 for url in canonicals if self.profiles.plan(url, self.package) is not None)

    # -- issues ------------------------------------------------------------------------------------------

    def _add(self, run: _Run, severity: Severity, code: str, message: str, path: str, profile: str) -> None:
        run.findings.append(Finding(Issue(message, code, severity, (path,) if path else ()), profile))

    def _profile_key(self, run: _Run) -> str:
        plan = run.plan
        return plan.key if plan is not None else ""

    # -- resources ---------------------------------------------------------------------------------------

    def _resource(
        self,
        run: _Run,
        res: dict[str, Any],
        profiles: Sequence[str],
        path: str,
        include_declared: bool = True,
    ) -> None:
        rt = res.get("resourceType")
        if not isinstance(rt, str):
            self._add(run, "error", "structure", "The resource has no resourceType", path, "")
            return
        base = self.profiles.core(rt)
        if base is None or base.kind != "resource":
            self._add(run, "error", "structure", f"Unknown resource type '{rt}'", path, "")
            return
        wanted = list(profiles)
        if include_declared:
            meta = res.get("meta")
            declared = meta.get("profile") if isinstance(meta, dict) else None
            if isinstance(declared, list):
                wanted.extend(p for p in declared if isinstance(p, str))
        plans: list[Plan] = []
        for url in dict.fromkeys(wanted):
            plan = self.profiles.plan(url, run.package)
            if plan is None:
                # A profile the caller asks for must be checked; one the resource merely declares may be
                # from a package we do not carry.
                severity: Severity = "warning" if include_declared or url not in profiles else "error"
                self._add(
                    run,
                    severity,
                    "not-found",
                    f"Profile {url} is not loaded; not validated against it",
                    path,
                    url,
                )
            elif plan.type != rt:
                self._add(run, "error", "invalid", f"Profile {url} is for {plan.type}, not {rt}", path, url)
            elif plan.key not in {p.key for p in plans}:
                plans.append(plan)
        if not plans:
            plans = [base]
        saved = (run.resource, run.bundle, run.plan, run.container)
        if not run.root:
            run.root = res
        if "contained" in res or not run.container:
            run.container = res  # "#id" in a contained resource points into its container's contained list
        run.resource = res
        if rt == "Bundle":
            run.bundle = _bundle_index(res)
        try:
            for plan in plans:
                run.plan = plan
                done = run.walked.get((id(res), plan.key)) if run.visits is None else None
                if done is not None:
                    run.findings.extend(_moved(f, path) for f in done)
                    continue
                self._element(run, res, None, plan.root, rt, path, rt, None)
            self._contained_rules(run, res, path)
            if rt == "Bundle":
                self._bundle_rules(run, res, path)
        finally:
            run.resource, run.bundle, run.plan, run.container = saved

    def _bundle_rules(self, run: _Run, bundle: dict[str, Any], path: str) -> None:
        """The Bundle invariants bdl-1..bdl-12 (https://hl7.org/fhir/R4/bundle.html#invs), natively."""
        prof = self._profile_key(run)
        kind = bundle.get("type")
        entries = [e if isinstance(e, dict) else {} for e in _as_list(bundle.get("entry"))]

        def fail(rule: str, where: str) -> None:
            self._add(run, "error", "invariant", rule, where, prof)

        if "total" in bundle and kind not in ("searchset", "history"):
            fail("bdl-1: total only when a search or history", path)
        wants_request = kind in ("batch", "transaction", "history")
        wants_response = kind in ("batch-response", "transaction-response", "history")
        seen: dict[tuple[str, Any], int] = {}
        for i, entry in enumerate(entries):
            where = f"{path}.entry[{i}]"
            if "search" in entry and kind != "searchset":
                fail("bdl-2: entry.search only when a search", where)
            if ("request" in entry) != wants_request:
                fail(
                    "bdl-3: entry.request mandatory for batch/transaction/history, otherwise prohibited",
                    where,
                )
            if ("response" in entry) != wants_response:
                fail(
                    "bdl-4: entry.response mandatory for batch-response/transaction-response/history only",
                    where,
                )
            if not ({"resource", "request", "response"} & entry.keys()):
                fail("bdl-5: must be a resource unless there's a request or response", where)
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                if "/_history/" in full_url:
                    fail("bdl-8: fullUrl cannot be a version specific reference", where)
                resource = entry.get("resource")
                meta = resource.get("meta") if isinstance(resource, dict) else None
                version = meta.get("versionId") if isinstance(meta, dict) else None
                key = (full_url, version)
                if key in seen and kind != "history":
                    fail(
                        "bdl-7: FullUrl must be unique in a bundle, or else entries with the same fullUrl "
                        "must have different meta.versionId (except in history bundles)",
                        path,
                    )
                seen.setdefault(key, i)
        if kind == "document":
            raw_identifier = bundle.get("identifier")
            identifier: dict[str, Any] = raw_identifier if isinstance(raw_identifier, dict) else {}
            if not (identifier.get("system") and identifier.get("value")):
                fail("bdl-9: A document must have an identifier with a system and a value", path)
            if not bundle.get("timestamp"):
                fail("bdl-10: A document must have a date", path)
            first = entries[0].get("resource") if entries else None
            if not (isinstance(first, dict) and first.get("resourceType") == "Composition"):
                fail("bdl-11: A document must have a Composition as the first resource", path)
        if kind == "message":
            first = entries[0].get("resource") if entries else None
            if not (isinstance(first, dict) and first.get("resourceType") == "MessageHeader"):
                fail("bdl-12: A message must have a MessageHeader as the first resource", path)

    def _contained_rules(self, run: _Run, res: dict[str, Any], path: str) -> None:
        contained = res.get("contained")
        if not isinstance(contained, list):
            return
        for i, item in enumerate(contained):
            if not isinstance(item, dict):
                continue
            where = f"{path}.contained[{i}]"
            if "contained" in item:
                self._add(
                    run,
                    "error",
                    "invariant",
                    "dom-2: contained resources SHALL NOT contain resources",
                    where,
                    "",
                )
            raw_meta = item.get("meta")
            meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
            if "versionId" in meta or "lastUpdated" in meta:
                self._add(
                    run,
                    "error",
                    "invariant",
                    "dom-4: contained resources SHALL NOT have versionId/lastUpdated",
                    where,
                    "",
                )
            if "security" in meta:
                self._add(
                    run,
                    "error",
                    "invariant",
                    "dom-5: contained resources SHALL NOT have a security label",
                    where,
                    "",
                )

    # -- elements ----------------------------------------------------------------------------------------

    def _element(
        self,
        run: _Run,
        value: Any,
        ext_part: Any,
        node: ElementNode,
        type_code: str,
        path: str,
        ctx_path: Ctx,
        parent_ext: str | None,
    ) -> None:
        """Validate one value (one array item) against ``node`` as type ``type_code``."""
        if run.visits is not None:
            run.visits.append(Visit(path, node, type_code, value))
        if type_code in PRIMITIVES:
            self._primitive(run, value, ext_part, node, type_code, path, ctx_path)
            return
        if not isinstance(value, dict):
            self._add(
                run,
                "error",
                "structure",
                f"Expected a JSON object for {type_code or node.name}",
                path,
                self._profile_key(run),
            )
            return
        if not value:
            self._add(
                run,
                "error",
                "invariant",
                "ele-1: an element must have a value or children",
                path,
                self._profile_key(run),
            )
            return
        is_root = node.plan.root is node and node.plan.kind == "resource"
        if not is_root and (
            type_code in _RESOURCE_BASES or "resourceType" in value and self._is_resource_type(type_code)
        ):
            self._inline_resource(run, value, node, type_code, path)
            return
        if node.fixed is not None and value != node.fixed:
            self._add(
                run,
                "error",
                "value",
                f"Value must be exactly {_short(node.fixed)}",
                path,
                self._profile_key(run),
            )
        elif node.pattern is not None and not _pattern_matches(value, node.pattern):
            self._add(
                run,
                "error",
                "value",
                f"Value must match the pattern {_short(node.pattern)}",
                path,
                self._profile_key(run),
            )
        if node.binding_strength and type_code in ("CodeableConcept", "Coding", "Quantity"):
            self._binding(run, value, node, type_code, path)
        children = self._children(node, type_code)
        if node.content_reference:
            ctx_path = node.content_reference
        elif type_code not in _STRUCTURAL and type_code[:1].isupper() and node.plan.root is not node:
            ctx_path = (ctx_path, _CTX_SEP + type_code)
        self._children_of(run, value, node, children, type_code, path, ctx_path, parent_ext)
        if type_code == "Reference":
            self._reference(run, value, node, path)
        if type_code == "Extension":
            self._extension_shape(run, value, path)
        self._constraints(run, value, node, type_code, path)

    def _is_resource_type(self, type_code: str) -> bool:
        plan = self.profiles.core(type_code) if type_code and type_code[0].isupper() else None
        return plan is not None and plan.kind == "resource"

    def _inline_resource(
        self, run: _Run, value: dict[str, Any], node: ElementNode, type_code: str, path: str
    ) -> None:
        rt = value.get("resourceType")
        allowed = {t.code for t in node.types} or {type_code}
        if not allowed & _RESOURCE_BASES and rt not in allowed:
            self._add(
                run,
                "error",
                "structure",
                f"Expected a {' or '.join(sorted(allowed))} resource, found {rt}",
                path,
                self._profile_key(run),
            )
            return
        profiles = [p for t in node.types if t.code in (rt, *_RESOURCE_BASES) for p in t.profiles]
        if len(profiles) > 1:
            # Several allowed profiles: the resource must conform to one; try the ones it declares first, and
            # report against the closest when none fits.
            meta = value.get("meta")
            declared = meta.get("profile", []) if isinstance(meta, dict) else []
            plain = {str(d).split("|")[0] for d in declared} if isinstance(declared, list) else set()
            profiles = sorted(profiles, key=lambda p: p.split("|")[0] not in plain)
            fitting = next((p for p in profiles if self._conforms(run, value, p)), None)
            profiles = [fitting or min(profiles, key=lambda p: self._error_count(run, value, p))]
        self._resource(run, value, profiles, path)

    def _primitive(
        self,
        run: _Run,
        value: Any,
        ext_part: Any,
        node: ElementNode,
        type_code: str,
        path: str,
        ctx_path: Ctx,
    ) -> None:
        prof = self._profile_key(run)
        if value is None:
            if not isinstance(ext_part, dict) or not ext_part:
                self._add(
                    run,
                    "error",
                    "invariant",
                    "ele-1: a primitive must have a value or extensions",
                    path,
                    prof,
                )
        else:
            kind = PRIMITIVES[type_code]
            ok = (
                isinstance(value, bool)
                if kind == "bool"
                else isinstance(value, int) and not isinstance(value, bool)
                if kind == "int"
                else isinstance(value, int | float | Decimal) and not isinstance(value, bool)
                if kind == "number"
                else isinstance(value, str)
            )
            if not ok:
                self._add(
                    run, "error", "structure", f"Expected a JSON {kind} for a FHIR {type_code}", path, prof
                )
                return
            if isinstance(value, str):
                if value == "" or (value.strip() != value and type_code not in ("string", "markdown")):
                    self._add(run, "error", "invalid", f"Invalid {type_code} value '{value}'", path, prof)
                else:
                    fmt = _FORMATS.get(type_code)
                    if fmt is not None and not fmt.fullmatch(value):
                        self._add(run, "error", "invalid", f"Invalid {type_code} value '{value}'", path, prof)
            elif type_code == "positiveInt" and value < 1 or type_code == "unsignedInt" and value < 0:
                self._add(run, "error", "invalid", f"Invalid {type_code} value {value}", path, prof)
            if node.fixed is not None and value != node.fixed:
                self._add(run, "error", "value", f"Value must be exactly {_short(node.fixed)}", path, prof)
            elif node.pattern is not None and value != node.pattern:
                self._add(run, "error", "value", f"Value must be {_short(node.pattern)}", path, prof)
            if node.binding_strength and isinstance(value, str) and type_code in ("code", "string", "uri"):
                self._binding(run, value, node, type_code, path)
        if isinstance(ext_part, dict):
            core = self.profiles.core(type_code)
            if core is not None:
                children = {k: v for k, v in core.root.children.items() if k != "value"}
                self._children_of(run, ext_part, core.root, children, "Element", path, ctx_path, None)

    # -- children, cardinality, slicing -----------------------------------------------------------------

    def _children(self, node: ElementNode, type_code: str) -> dict[str, ElementNode]:
        """The child elements ``node`` validates against: its own, over its type profile's or base type's."""
        cached = node.merged.get(type_code)
        if cached is not None:
            return cached
        if node.content_reference:
            target = node.plan.by_id.get(node.content_reference)
            merged = self._children(target, type_code) if target is not None else {}
            node.merged[type_code] = merged
            return merged
        base: dict[str, ElementNode] = {}
        tref = _type_ref(node, type_code)
        if tref is not None and tref.profiles:
            for url in tref.profiles:
                plan = self.profiles.plan(url, node.plan.package)
                if plan is not None:
                    base = plan.root.children
                    break
        if not base and node.base is not None:
            base = self._children(node.base, type_code)
        if not base and not node.children and type_code and type_code not in PRIMITIVES:
            core = self.profiles.core(type_code)
            if core is not None:
                base = core.root.children
        merged = dict(base)
        merged.update(node.children)
        node.merged[type_code] = merged
        return merged

    def _key_map(
        self, node: ElementNode, type_code: str, children: dict[str, ElementNode]
    ) -> dict[str, tuple[ElementNode, str]]:
        cached = node.key_maps.get(type_code)
        if cached is not None:
            return cached
        keys: dict[str, tuple[ElementNode, str]] = {}
        for name, child in children.items():
            if child.is_choice:
                stem = name[:-3]
                codes = [t.code for t in child.types if t.code != "*"] or list(ALL_TYPES)
                for code in codes:
                    keys[stem + code[0].upper() + code[1:]] = (child, code)
            else:
                code = child.types[0].code if child.types else "BackboneElement"
                if len(child.types) > 1:
                    code = "Resource"  # several resource types allowed (e.g. Parameters.parameter.resource)
                keys[name] = (child, code)
        node.key_maps[type_code] = keys
        return keys

    def _children_of(
        self,
        run: _Run,
        obj: dict[str, Any],
        node: ElementNode,
        children: dict[str, ElementNode],
        type_code: str,
        path: str,
        ctx_path: Ctx,
        parent_ext: str | None,
    ) -> None:
        prof = self._profile_key(run)
        keys = self._key_map(node, type_code, children)
        present: dict[str, list[str]] = {}
        is_resource = "resourceType" in obj and node.plan.root is node
        for key in obj:
            if key == "resourceType" and is_resource or key == "fhir_comments":
                continue
            bare = key[1:] if key.startswith("_") else key
            hit = keys.get(bare)
            if hit is None:
                self._add(run, "error", "structure", f"Unknown element '{key}'", f"{path}.{key}", prof)
                continue
            if not key.startswith("_") or bare not in obj:
                present.setdefault(hit[0].name, []).append(bare)
        required = node.expectations.get("__required__" + type_code)
        if required is None:
            required = node.expectations["__required__" + type_code] = [
                c for c in children.values() if c.min > 0
            ]
        for child in required:
            if child.name not in present:
                self._add(
                    run,
                    "error",
                    "required",
                    f"{child.name}: minimum required = {child.min}, but only found 0",
                    f"{path}.{child.name.replace('[x]', '')}",
                    prof,
                )
        for name, used in present.items():
            child = children[name]
            if len(used) > 1:
                self._add(
                    run,
                    "error",
                    "structure",
                    f"Only one of {', '.join(used)} is allowed",
                    f"{path}.{used[1]}",
                    prof,
                )
            key = used[0]
            type_for_key = keys[key][1]
            raw, raw_ext = obj.get(key), obj.get("_" + key)
            if isinstance(raw, list) or isinstance(raw_ext, list):
                values = raw if isinstance(raw, list) else [None] * len(raw_ext or [])
                exts = raw_ext if isinstance(raw_ext, list) else [None] * len(values)
                if not values:
                    self._add(
                        run, "error", "invariant", "ele-1: arrays must not be empty", f"{path}.{key}", prof
                    )
                    continue
                if not child.repeats:
                    self._add(
                        run,
                        "error",
                        "structure",
                        f"{name} must not be an array",
                        f"{path}.{key}",
                        prof,
                    )
                items = [
                    (v, exts[i] if i < len(exts) else None, f"{path}.{key}[{i}]")
                    for i, v in enumerate(values)
                ]
            else:
                if child.repeats:
                    self._add(run, "error", "structure", f"{name} must be an array", f"{path}.{key}", prof)
                items = [(raw, raw_ext, f"{path}.{key}")]
            if child.max is not None and len(items) > child.max:
                self._add(
                    run,
                    "error",
                    "structure",
                    f"{name}: maximum allowed = {child.max}, but found {len(items)}",
                    f"{path}.{key}",
                    prof,
                )
            if child.min > len(items):
                self._add(
                    run,
                    "error",
                    "required",
                    f"{name}: minimum required = {child.min}, but only found {len(items)}",
                    f"{path}.{key}",
                    prof,
                )
            child_ctx = _child_ctx(ctx_path, name)
            if child.is_choice and child.slices:
                chosen = next((s for s in child.slices if [t.code for t in s.types] == [type_for_key]), child)
                for v, e, p in items:
                    self._element(run, v, e, chosen, type_for_key, p, child_ctx, parent_ext)
                continue
            if child.slicing is not None and child.slices:
                self._sliced(
                    run,
                    items,
                    child,
                    type_for_key,
                    f"{path}.{key}",
                    child_ctx,
                    ctx_path,
                    type_code,
                    parent_ext,
                )
                continue
            for v, e, p in items:
                if name in ("extension", "modifierExtension"):
                    self._open_extension(run, v, p, ctx_path, type_code, parent_ext)
                else:
                    self._element(run, v, e, child, type_for_key, p, child_ctx, parent_ext)

    def _sliced(
        self,
        run: _Run,
        items: list[tuple[Any, Any, str]],
        node: ElementNode,
        type_code: str,
        path: str,
        child_ctx: Ctx,
        parent_ctx: Ctx,
        parent_type: str,
        parent_ext: str | None,
    ) -> None:
        prof = self._profile_key(run)
        slicing = node.slicing
        assert slicing is not None
        matched: list[ElementNode | None] = [self._match(run, v, node) for v, _, _ in items]
        for sl in node.slices:
            count = sum(1 for m in matched if m is sl)
            if count < sl.min:
                self._add(
                    run,
                    "error",
                    "required",
                    f"Slice '{sl.slice_name}': minimum required = {sl.min}, but only found {count}",
                    path,
                    prof,
                )
            if sl.max is not None and count > sl.max:
                self._add(
                    run,
                    "error",
                    "structure",
                    f"Slice '{sl.slice_name}': maximum allowed = {sl.max}, but found {count}",
                    path,
                    prof,
                )
        order = {id(s): i for i, s in enumerate(node.slices)}
        last = -1
        seen_unmatched = False
        for (v, e, p), match in zip(items, matched, strict=True):
            if match is None:
                seen_unmatched = True
                if slicing.rules == "closed":
                    self._add(
                        run,
                        "error",
                        "structure",
                        f"This element does not match any known slice of {node.id}",
                        p,
                        prof,
                    )
            else:
                if slicing.ordered and order[id(match)] < last:
                    self._add(
                        run, "error", "structure", f"Slice '{match.slice_name}' is out of order", p, prof
                    )
                last = max(last, order[id(match)])
                if slicing.rules == "openAtEnd" and seen_unmatched:
                    self._add(
                        run, "error", "structure", "Unsliced items must come after all sliced items", p, prof
                    )
            if node.name in ("extension", "modifierExtension"):
                if match is None:
                    self._open_extension(run, v, p, parent_ctx, parent_type, parent_ext)
                else:
                    self._extension_slice(run, v, match, p, parent_ctx, parent_type, parent_ext)
            else:
                self._element(run, v, e, match or node, type_code, p, child_ctx, parent_ext)

    def _match(self, run: _Run, item: Any, node: ElementNode) -> ElementNode | None:
        slicing = node.slicing
        assert slicing is not None
        for sl in node.slices:
            if all(self._discriminator_holds(run, item, sl, d.type, d.path) for d in slicing.discriminators):
                return sl
        return None

    def _discriminator_holds(self, run: _Run, item: Any, sl: ElementNode, kind: str, dpath: str) -> bool:
        expected = self._expectation(sl, kind, dpath)
        if expected is None:
            return False
        values = _navigate(item, dpath, run.bundle, run.root)
        if kind in ("value", "pattern"):
            mode, wanted = expected
            if mode == "fixed":
                return any(v == w for v, _ in values for w in wanted)
            return any(_pattern_matches(v, w) for v, _ in values for w in wanted)
        if kind == "type":
            return any(_type_of(v, t) in expected for v, t in values)
        if kind == "exists":
            low, high = expected
            return bool(values) if low >= 1 else (not values if high == 0 else True)
        if kind == "profile":
            return any(
                isinstance(v, dict) and any(self._conforms(run, v, p) for p in expected) for v, _ in values
            )
        return False

    def _expectation(self, sl: ElementNode, kind: str, dpath: str) -> Any:
        key = f"{kind}:{dpath}"
        if key in sl.expectations:
            return sl.expectations[key]
        result = self._compute_expectation(sl, kind, dpath)
        sl.expectations[key] = result
        return result

    def _compute_expectation(self, sl: ElementNode, kind: str, dpath: str) -> Any:
        segments = _split_path(dpath)
        node: ElementNode = sl
        type_code = sl.types[0].code if len(sl.types) == 1 else ""
        carried: list[Any] | None = None
        resolved = False
        if segments == ("url",) and type_code == "Extension" and sl.types[0].profiles and kind == "value":
            return ("fixed", [sl.types[0].profiles[0].split("|", 1)[0]])
        for seg in segments:
            if seg == "$this":
                continue
            if seg == "resolve()":
                resolved = True
                continue
            if seg.startswith(("ofType(", "as(")):
                type_code = seg[seg.index("(") + 1 : -1]
                if node.is_choice and node.slices:
                    node = next((s for s in node.slices if [t.code for t in s.types] == [type_code]), node)
                continue
            if seg.startswith("extension("):
                url = seg[len("extension(") : -1].strip("'\"")
                ext = self._children(node, type_code).get("extension")
                found = None
                if ext is not None:
                    for candidate in ext.slices:
                        exp = self._expectation(candidate, "value", "url")
                        if exp is not None and url in exp[1]:
                            found = candidate
                            break
                if found is None:
                    return None
                node, type_code, carried = found, "Extension", None
                continue
            source = node.fixed if node.fixed is not None else node.pattern
            if carried is None and isinstance(source, dict):
                carried = [source]
            if carried is not None:
                carried = [x for c in carried if isinstance(c, dict) for x in _as_list(c.get(seg))]
            kids = self._children(node, type_code)
            child = kids.get(seg) or kids.get(seg + "[x]")
            if child is None:
                if carried is None:
                    return None
                continue
            node = child
            type_code = child.types[0].code if len(child.types) == 1 else ""
        if kind in ("value", "pattern"):
            if node.fixed is not None:
                return ("fixed", [node.fixed])
            if node.pattern is not None:
                return ("pattern", [node.pattern])
            if carried:
                return ("pattern", carried)
            return None
        if kind == "type":
            return frozenset(t.code for t in node.types) or None
        if kind == "profile":
            urls = [p for t in node.types for p in (t.target_profiles if resolved else t.profiles)]
            return urls or None
        if kind == "exists":
            return (node.min, node.max)
        return None

    def _conforms(self, run: _Run, resource: dict[str, Any], profile: str) -> bool:
        return self._error_count(run, resource, profile) == 0

    def _error_count(self, run: _Run, resource: dict[str, Any], profile: str) -> int:
        """Errors ``resource`` has against ``profile`` (cached per run; unknown profiles count as none)."""
        key = (id(resource), profile)
        cached = run.conforms.get(key)
        if cached is None:
            plan = self.profiles.plan(profile, run.package)
            if plan is None or plan.type != resource.get("resourceType"):
                guess = _profile_type_guess(profile)
                cached = 0 if plan is None and guess in (None, resource.get("resourceType")) else 1
            else:
                sub = _Run(
                    bundle=run.bundle,
                    root=run.root,
                    conforms=run.conforms,
                    walked=run.walked,
                    package=run.package,
                )
                run.conforms[key] = 0  # cycle guard
                self._resource(sub, resource, [profile], "", include_declared=False)
                run.walked[(id(resource), plan.key)] = sub.findings
                kept = apply_suppressions(sub.findings, self.suppressions)
                cached = sum(1 for f in kept if f.issue.severity in ("error", "fatal"))
            run.conforms[key] = cached
        return cached

    # -- extensions --------------------------------------------------------------------------------------

    def _open_extension(
        self, run: _Run, ext: Any, path: str, ctx_path: Ctx, parent_type: str, parent_ext: str | None
    ) -> None:
        prof = self._profile_key(run)
        if not isinstance(ext, dict):
            self._add(run, "error", "structure", "An extension must be a JSON object", path, prof)
            return
        url = ext.get("url")
        if not ext:
            self._add(
                run, "error", "invariant", "ele-1: an element must have a value or children", path, prof
            )
            return
        if not isinstance(url, str) or not url:
            self._add(
                run, "error", "required", "url: minimum required = 1, but only found 0", f"{path}.url", prof
            )
            return
        if parent_ext is not None and not url.startswith(("http:", "https:", "urn:")):
            # A relative url names a sub-extension, which only the parent extension's slices can define.
            self._add(
                run, "error", "structure", f"Unknown extension {url} in {parent_ext}", f"{path}.url", prof
            )
            return
        plan = self.profiles.plan(url, run.package)
        if plan is None:
            if url.startswith(UNRESOLVABLE_EXTENSION_PREFIXES):
                self._add(
                    run,
                    "warning",
                    "not-found",
                    f"Extension {url} cannot be resolved; not checked",
                    path,
                    prof,
                )
                self._generic_extension(run, ext, path, ctx_path, url)
            else:
                self._add(run, "error", "structure", f"Unknown extension {url}", f"{path}.url", prof)
            return
        self._extension_context(run, plan, path, ctx_path, parent_type, parent_ext)
        saved = run.plan
        run.plan = plan
        try:
            self._element(
                run, ext, None, plan.root, "Extension", path, _child_ctx(ctx_path, "extension"), url
            )
        finally:
            run.plan = saved

    def _extension_slice(
        self,
        run: _Run,
        ext: Any,
        sl: ElementNode,
        path: str,
        ctx_path: Ctx,
        parent_type: str,
        parent_ext: str | None,
    ) -> None:
        url = ext.get("url") if isinstance(ext, dict) else None
        profiles = sl.types[0].profiles if sl.types else ()
        plan = next(
            (p for p in (self.profiles.plan(u, sl.plan.package) for u in profiles) if p is not None), None
        )
        if plan is None and profiles and isinstance(url, str):
            if url.startswith(UNRESOLVABLE_EXTENSION_PREFIXES):
                self._add(
                    run,
                    "warning",
                    "not-found",
                    f"Extension {url} cannot be resolved; not checked",
                    path,
                    self._profile_key(run),
                )
            else:
                self._add(
                    run,
                    "warning",
                    "not-found",
                    f"Extension definition {profiles[0]} is not loaded",
                    path,
                    self._profile_key(run),
                )
        if plan is not None:
            self._extension_context(run, plan, path, ctx_path, parent_type, parent_ext)
        self._element(
            run,
            ext,
            None,
            sl,
            "Extension",
            path,
            _child_ctx(ctx_path, "extension"),
            url if isinstance(url, str) else parent_ext,
        )

    def _generic_extension(self, run: _Run, ext: dict[str, Any], path: str, ctx_path: Ctx, url: str) -> None:
        core = self.profiles.core("Extension")
        if core is not None:
            self._element(
                run, ext, None, core.root, "Extension", path, _child_ctx(ctx_path, "extension"), url
            )

    def _extension_context(
        self, run: _Run, plan: Plan, path: str, ctx_path: Ctx, parent_type: str, parent_ext: str | None
    ) -> None:
        if not plan.context:
            return
        parts = [_strip_choice(p) for p in _ctx_parts(ctx_path)]
        shown = parts[0]
        for kind, expr in plan.context:
            if kind == "fhirpath":
                return
            if kind == "extension" and (
                expr == parent_ext or (parent_ext and expr.split("|")[0] == parent_ext)
            ):
                return
            if kind == "element":
                if expr in ("Element", "Base", parent_type) or _strip_choice(expr) in parts:
                    return
                if expr in _RESOURCE_BASES and "." not in shown:
                    return
                if expr == "BackboneElement" and parent_type == "BackboneElement":
                    return
        allowed = ", ".join(expr for _, expr in plan.context)
        self._add(
            run,
            "error",
            "structure",
            f"The extension {plan.url} is not allowed to be used at {shown} (allowed: {allowed})",
            path,
            plan.key,
        )

    def _extension_shape(self, run: _Run, ext: dict[str, Any], path: str) -> None:
        has_value = any(k.startswith("value") for k in ext)
        if has_value and ext.get("extension"):
            self._add(
                run,
                "error",
                "invariant",
                "ext-1: must have either extensions or value[x], not both",
                path,
                self._profile_key(run),
            )

    # -- references, bindings, invariants ---------------------------------------------------------------

    def _reference(self, run: _Run, value: dict[str, Any], node: ElementNode, path: str) -> None:
        ref = value.get("reference")
        if not isinstance(ref, str):
            return
        prof = self._profile_key(run)
        targets = [p for t in node.types if t.code == "Reference" for p in t.target_profiles]
        target: dict[str, Any] | None = None
        if ref.startswith("#"):
            contained = _as_list(run.container.get("contained"))
            target = next((c for c in contained if isinstance(c, dict) and c.get("id") == ref[1:]), None)
            if target is None and ref != "#":
                self._add(run, "error", "invariant", f"ref-1: contained resource {ref} not found", path, prof)
                return
        else:
            target = _resolve_in_bundle(run.bundle, ref)
            if target is None and ref.startswith("urn:") and run.bundle:
                self._add(
                    run,
                    "error",
                    "not-found",
                    f"Reference {ref} does not resolve within the Bundle",
                    f"{path}.reference",
                    prof,
                )
                return
        if not targets:
            return
        actual = target.get("resourceType") if isinstance(target, dict) else _type_from_reference(ref)
        if not isinstance(actual, str):  # a target without a usable resourceType is reported on its own
            return
        allowed: dict[str, list[str]] = {}
        for url in targets:
            plan = self.profiles.plan(url, node.plan.package)
            type_name = plan.type if plan is not None else _profile_type_guess(url)
            if type_name is not None:
                allowed.setdefault(type_name, []).append(url)
        if not allowed or "Resource" in allowed:
            return
        if actual not in allowed:
            self._add(
                run,
                "error",
                "structure",
                f"Reference to a {actual}, but it must point to {' or '.join(sorted(allowed))}",
                f"{path}.reference",
                prof,
            )
            return
        if isinstance(target, dict) and target is not run.resource:
            urls = allowed[actual]
            if all(not u.startswith(CORE_SD) for u in urls) and not any(
                self._conforms(run, target, u) for u in urls
            ):
                self._add(
                    run,
                    "error",
                    "structure",
                    f"The referenced {actual} does not conform to {' or '.join(urls)}",
                    f"{path}.reference",
                    prof,
                )

    def _binding(self, run: _Run, value: Any, node: ElementNode, type_code: str, path: str) -> None:
        assert node.binding_value_set is not None
        strength = node.binding_strength
        if strength not in ("required", "extensible"):
            return
        if type_code == "CodeableConcept":
            codings = [
                (c.get("system"), c.get("code")) for c in _as_list(value.get("coding")) if isinstance(c, dict)
            ]
        elif type_code in ("Coding", "Quantity"):
            codings = [(value.get("system"), value.get("code"))]
        else:
            codings = [(None, value)]
        pairs: list[tuple[str | None, str]] = [
            (s if isinstance(s, str) else None, c) for s, c in codings if isinstance(c, str)
        ]
        if not codings:
            return
        vs_url = node.binding_value_set.split("|", 1)[0]
        expansion = self.terminology.expand(vs_url, node.plan.package)
        verdicts = [expansion.verdict(s, c) for s, c in pairs]
        if "member" in verdicts:
            return
        prof = self._profile_key(run)
        shown = ", ".join(f"{s}#{c}" if s else c for s, c in pairs)
        if "unknown" in verdicts:
            if strength == "required":
                why = "is not loaded" if not expansion.found else "uses code systems not available here"
                self._add(
                    run,
                    "warning",
                    "code-invalid",
                    f"Code {shown} not checked: value set {vs_url} {why}",
                    path,
                    prof,
                )
            return
        severity: Severity = "error" if strength == "required" else "warning"
        self._add(
            run,
            severity,
            "code-invalid",
            f"Code {shown} is not in the {strength} value set {vs_url}",
            path,
            prof,
        )

    def _constraints(self, run: _Run, value: Any, node: ElementNode, type_code: str, path: str) -> None:
        if not self.check_invariants:
            return
        constraints = node.expectations.get("__constraints__" + type_code)
        if constraints is None:
            constraints = node.expectations["__constraints__" + type_code] = self._applicable(node, type_code)
        if not constraints:
            return
        type_path = node.path if node.plan.root is not node or node.plan.kind == "resource" else type_code
        for c in constraints:
            native = native_check(c.key, c.expression)
            holds = (
                native(value)
                if native is not None
                else self.invariants.holds(
                    c.expression,
                    value,
                    type_path,
                    run.resource,
                    run.root,
                    lambda ref: _resolve_in_bundle(run.bundle, ref),
                )
            )
            if holds is False:
                severity: Severity = "error" if c.severity == "error" else "warning"
                self._add(run, severity, "invariant", f"{c.key}: {c.human}", path, self._profile_key(run))

    def _applicable(self, node: ElementNode, type_code: str) -> list[Constraint]:
        """The element's own invariants plus those on its datatype (and type profile) root, once per key.

        Snapshots copy only ``ele-1`` onto typed elements; datatype rules such as ``per-1`` live on the
        datatype's root element.
        """
        found: dict[str, Constraint] = {c.key: c for c in node.constraints}
        roots: list[ElementNode] = []
        if (
            type_code
            and type_code[0].isupper()
            and type_code not in _STRUCTURAL
            and node.plan.root is not node
        ):
            core = self.profiles.core(type_code)
            if core is not None and core.kind != "resource":
                roots.append(core.root)
        tref = _type_ref(node, type_code)
        for url in tref.profiles if tref is not None else ():
            plan = self.profiles.plan(url, node.plan.package)
            if plan is not None and plan.kind != "resource":
                roots.append(plan.root)
        for root in roots:
            for c in root.constraints:
                found.setdefault(c.key, c)
        return [c for key, c in found.items() if key not in NATIVE_KEYS]


# -- helpers ----------------------------------------------------------------------------------------------


def _moved(finding: Finding, path: str) -> Finding:
    """A finding recorded relative to a resource (paths ``""`` / ``.x``), placed at ``path``."""
    issue = finding.issue
    expression = tuple(path + p for p in issue.expression) if issue.expression else (path,)
    return Finding(replace(issue, expression=expression), finding.profile)


def _child_ctx(ctx_path: Ctx, name: str) -> Ctx:
    return (ctx_path, name)


def _ctx_parts(ctx_path: Ctx) -> list[str]:
    """The element path from the resource root, then from each enclosing complex datatype."""
    names: list[str] = []
    node: Any = ctx_path
    while isinstance(node, tuple):
        node, name = node
        names.append(name)
    parts: list[str] = str(node).split(_CTX_SEP)
    for name in reversed(names):
        if name.startswith(_CTX_SEP):
            parts.append(name[len(_CTX_SEP) :])
        else:
            parts = [f"{part}.{name}" for part in parts]
    return parts


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.issue.severity, f.issue.diagnostics, f.issue.expression)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else str(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _pattern_matches(value: Any, pattern: Any) -> bool:
    """FHIR pattern semantics: every property in the pattern is present with a matching value."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(_pattern_matches(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = _as_list(value)
        return all(any(_pattern_matches(item, p) for item in items) for p in pattern)
    return bool(value == pattern)


def _type_ref(node: ElementNode, type_code: str) -> TypeRef | None:
    for t in node.types:
        if t.code == type_code:
            return t
    return node.types[0] if len(node.types) == 1 else None


def _strip_choice(path: str) -> str:
    return path.replace("[x]", "")


@functools.lru_cache(maxsize=2048)
def _split_path(path: str) -> tuple[str, ...]:
    out: list[str] = []
    depth = 0
    current = ""
    for ch in path:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    if current:
        out.append(current)
    return tuple(out)


def _navigate(
    item: Any, path: str, bundle: dict[str, dict[str, Any]], root: dict[str, Any]
) -> list[tuple[Any, str | None]]:
    """Values at a discriminator path (a restricted FHIRPath) as (value, choice type suffix)."""
    current: list[tuple[Any, str | None]] = [(item, None)]
    for seg in _split_path(path):
        if seg == "$this":
            continue
        nxt: list[tuple[Any, str | None]] = []
        if seg == "resolve()":
            for v, _ in current:
                ref = v.get("reference") if isinstance(v, dict) else None
                target = _resolve_in_bundle(bundle, ref) if isinstance(ref, str) else None
                if target is not None:
                    nxt.append((target, None))
        elif seg.startswith(("ofType(", "as(")):
            wanted = seg[seg.index("(") + 1 : -1]
            nxt = [(v, t) for v, t in current if _type_of(v, t) == wanted]
        elif seg.startswith("extension("):
            url = seg[len("extension(") : -1].strip("'\"")
            for v, _ in current:
                if isinstance(v, dict):
                    nxt.extend(
                        (e, None)
                        for e in _as_list(v.get("extension"))
                        if isinstance(e, dict) and e.get("url") == url
                    )
        else:
            for v, _ in current:
                if not isinstance(v, dict):
                    continue
                if seg in v:
                    nxt.extend((x, None) for x in _as_list(v[seg]))
                    continue
                for key, x in v.items():
                    if key.startswith(seg) and len(key) > len(seg) and key[len(seg)].isupper():
                        nxt.extend((y, _choice_type(key[len(seg) :])) for y in _as_list(x))
        current = nxt
    return current


def _choice_type(suffix: str) -> str:
    """``Boolean`` -> ``boolean``, ``DateTime`` -> ``dateTime``, ``CodeableConcept`` stays."""
    lowered = suffix[0].lower() + suffix[1:]
    return lowered if lowered in PRIMITIVES else suffix


def _type_of(value: Any, suffix: str | None) -> str | None:
    if suffix is not None:
        return suffix
    if isinstance(value, dict):
        rt = value.get("resourceType")
        return rt if isinstance(rt, str) else None
    return None


def _bundle_index(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for entry in _as_list(bundle.get("entry")):
        if not isinstance(entry, dict):
            continue
        res = entry.get("resource")
        if not isinstance(res, dict):
            continue
        full = entry.get("fullUrl")
        if isinstance(full, str):
            index[full] = res
        if isinstance(res.get("resourceType"), str) and isinstance(res.get("id"), str):
            index.setdefault(f"{res['resourceType']}/{res['id']}", res)
    return index


def _resolve_in_bundle(index: dict[str, dict[str, Any]], ref: str) -> dict[str, Any] | None:
    found = index.get(ref)
    if found is not None:
        return found
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2:
        return index.get(f"{parts[-2]}/{parts[-1]}")
    return None


def _type_from_reference(ref: str) -> str | None:
    parts = ref.split("/_history/")[0].split("?")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2]
    return None


def _profile_type_guess(url: str) -> str | None:
    if url.startswith(CORE_SD):
        return url[len(CORE_SD) :].split("|", 1)[0]
    return None
