"""Local ValueSet expansion for binding checks, from the CodeSystems and ValueSets in loaded packages.

Supports ``compose.include``/``exclude`` with concept lists, whole code systems (when the CodeSystem is loaded
with ``content = complete``), ``is-a``/``descendent-of`` filters over a loaded hierarchy, included ValueSets,
and shipped ``expansion.contains``. Anything else (an external system such as the X12 lists, other filters)
is recorded as *unchecked*: codes from it cannot be judged here.
Spec: https://hl7.org/fhir/R4/valueset.html#compose
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from igs.packages import Package
from igs.registry import Registry


@dataclass(frozen=True)
class Expansion:
    """The codes a ValueSet contains, as far as loaded packages can say."""

    url: str
    codes: frozenset[tuple[str, str]] = frozenset()
    bare_codes: frozenset[str] = frozenset()
    unchecked_systems: frozenset[str] = frozenset()
    found: bool = True  # False: the ValueSet itself is not in any loaded package
    notes: tuple[str, ...] = field(default=())

    def verdict(self, system: str | None, code: str) -> str:
        """``member``, ``unknown`` (cannot be judged locally) or ``not-member``."""
        if not self.found:
            return "unknown"
        if system is None:
            if code in self.bare_codes:
                return "member"
            return "unknown" if self.unchecked_systems else "not-member"
        if (system, code) in self.codes:
            return "member"
        if system in self.unchecked_systems or "*" in self.unchecked_systems:
            return "unknown"
        return "not-member"


class Terminology:
    """Expands ValueSets on demand and caches the result."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._expansions: dict[tuple[str, str], Expansion] = {}
        self._systems: dict[tuple[str, str], dict[str, tuple[str, ...]] | None] = {}

    def expand(self, url: str, context: Package | None = None) -> Expansion:
        """The expansion of ``url``, resolved preferably within ``context`` and its dependencies."""
        key = (url, context.key if context is not None else "")
        cached = self._expansions.get(key)
        if cached is None:
            self._expansions[key] = Expansion(url, found=False)  # guards against include cycles
            cached = self._expansions[key] = self._expand(url, context)
        return cached

    def _expand(self, url: str, context: Package | None) -> Expansion:
        vs = self.registry.resolve(url, context=context)
        if vs is None or vs.get("resourceType") != "ValueSet":
            return Expansion(url, found=False)
        codes: set[tuple[str, str]] = set()
        unchecked: set[str] = set()
        notes: list[str] = []
        compose = vs.get("compose") or {}
        for include in compose.get("include", ()):
            self._include(include, codes, unchecked, notes, context)
        for exclude in compose.get("exclude", ()):
            excluded: set[tuple[str, str]] = set()
            self._include(exclude, excluded, set(), [], context)
            codes -= excluded
        for contains in _walk_contains((vs.get("expansion") or {}).get("contains", ())):
            if contains.get("system") and contains.get("code"):
                codes.add((contains["system"], contains["code"]))
        return Expansion(
            url,
            frozenset(codes),
            frozenset(code for _, code in codes),
            frozenset(unchecked),
            True,
            tuple(notes),
        )

    def _include(
        self,
        include: dict[str, Any],
        codes: set[tuple[str, str]],
        unchecked: set[str],
        notes: list[str],
        context: Package | None,
    ) -> None:
        system = include.get("system")
        for vs_url in include.get("valueSet", ()):
            # Intersection with the system part is approximated by a union (superset: never a false error).
            nested = self.expand(vs_url, context)
            if not nested.found:
                unchecked.add(system or "*")
                notes.append(f"ValueSet {vs_url} is not loaded")
            codes.update(nested.codes)
            unchecked.update(nested.unchecked_systems)
        if not system:
            return
        if include.get("concept"):
            codes.update((system, c["code"]) for c in include["concept"] if "code" in c)
            return
        hierarchy = self.code_system(system, context)
        if hierarchy is None:
            unchecked.add(system)
            return
        filters = include.get("filter") or []
        if not filters:
            codes.update((system, code) for code in hierarchy)
            return
        selected: set[str] | None = None
        for flt in filters:
            chosen = _apply_filter(hierarchy, flt)
            if chosen is None:
                unchecked.add(system)
                return
            selected = chosen if selected is None else selected & chosen
        codes.update((system, code) for code in selected or ())

    def code_system(self, system: str, context: Package | None = None) -> dict[str, tuple[str, ...]] | None:
        """code -> child codes for a complete CodeSystem loaded locally, else None."""
        key = (system, context.key if context is not None else "")
        if key in self._systems:
            return self._systems[key]
        cs = self.registry.resolve(system, context=context)
        result: dict[str, tuple[str, ...]] | None = None
        if cs is not None and cs.get("resourceType") == "CodeSystem" and cs.get("content") == "complete":
            result = {}
            _flatten(cs.get("concept", ()), result)
        self._systems[key] = result
        return result


def _flatten(concepts: Iterable[dict[str, Any]], out: dict[str, tuple[str, ...]]) -> None:
    for concept in concepts:
        children = concept.get("concept", ())
        out[concept["code"]] = tuple(c["code"] for c in children)
        _flatten(children, out)


def _walk_contains(items: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for item in items:
        yield item
        yield from _walk_contains(item.get("contains", ()))


def _apply_filter(hierarchy: dict[str, tuple[str, ...]], flt: dict[str, Any]) -> set[str] | None:
    op, value = flt.get("op"), flt.get("value", "")
    if flt.get("property") not in ("concept", "code") or op not in ("is-a", "descendent-of", "in", "="):
        return None
    if op in ("in", "="):
        wanted = {v.strip() for v in value.split(",")}
        return {c for c in wanted if c in hierarchy}
    if value not in hierarchy:
        return set()
    found: set[str] = set()
    stack = [value]
    while stack:
        code = stack.pop()
        if code in found:
            continue
        found.add(code)
        stack.extend(hierarchy.get(code, ()))
    if op == "descendent-of":
        found.discard(value)
    return found
