"""Index rows for one resource, from its search parameters' FHIRPath expressions.

Most R4 expressions are plain paths (``Claim.patient``) or a choice type cast (``(Observation.value as
Quantity)``); those run through a small walker. Anything else goes to fhirpathpy, compiled once per
expression and cached for the life of the :class:`Extractor`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.models import models

from server.search.definitions import ParamType, SearchParam, SearchRegistry
from server.search.values import (
    DateRange,
    ReferenceValue,
    TokenValue,
    date_ranges,
    normalize,
    references,
    strings,
    tokens,
)

Evaluate = Callable[[dict[str, Any]], list[Any]]

_CAST = re.compile(r"^\(?(?P<path>[A-Z][A-Za-z]+(\.[a-z][A-Za-z0-9]*)+) as (?P<type>[A-Za-z]+)\)?$")


@dataclass(frozen=True)
class IndexRows:
    """Everything one resource contributes to the search index tables."""

    tokens: tuple[tuple[str, TokenValue], ...] = ()
    strings: tuple[tuple[str, str], ...] = ()
    references: tuple[tuple[str, ReferenceValue], ...] = ()
    dates: tuple[tuple[str, DateRange], ...] = ()


def _children(nodes: Iterable[Any], name: str) -> Iterator[Any]:
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if name in node:
            found = node[name]
        else:
            # A choice element (value[x]) is named by its type suffix: valueQuantity, effectivePeriod.
            found = next(
                (v for k, v in node.items() if k.startswith(name) and k[len(name) : len(name) + 1].isupper()),
                None,
            )
        if isinstance(found, list):
            yield from found
        elif found is not None:
            yield found


_NAME = re.compile(r"^[a-z][A-Za-z0-9]*$")
_WHERE = re.compile(r"^where\((?P<key>[a-z][A-Za-z0-9]*)='(?P<value>[^']*)'\)$")
_EXTENSION = re.compile(r"^extension\('(?P<url>[^']+)'\)$")
_AS = re.compile(r"^as\((?P<type>[A-Za-z]+)\)$")

Step = Callable[[list[Any]], list[Any]]


def _name_step(name: str) -> Step:
    return lambda nodes: list(_children(nodes, name))


def _where_step(key: str, value: str) -> Step:
    return lambda nodes: [n for n in nodes if isinstance(n, dict) and n.get(key) == value]


def _extension_step(url: str) -> Step:
    return lambda nodes: [
        ext
        for node in nodes
        if isinstance(node, dict) and isinstance(node.get("extension"), list)
        for ext in node["extension"]
        if isinstance(ext, dict) and ext.get("url") == url
    ]


def _as_step(name: str, type_name: str) -> Step:
    key = name + type_name[:1].upper() + type_name[1:]

    def step(nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for node in nodes:
            if isinstance(node, dict) and key in node:
                found = node[key]
                out.extend(found if isinstance(found, list) else [found])
        return out

    return step


def _split_steps(expression: str) -> list[str]:
    steps: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(expression):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "." and depth == 0:
            steps.append(expression[start:index])
            start = index + 1
    steps.append(expression[start:])
    return steps


def _walker(expression: str) -> Evaluate | None:
    """A plain-Python evaluator for path expressions with where(x='y'), extension('url') and as(Type)
    steps, or None when the expression needs the full FHIRPath engine."""
    cast = _CAST.match(expression)
    if cast:
        expression = f"{cast['path']}.as({cast['type']})"
    root, *parts = _split_steps(expression)
    if not re.match(r"^[A-Z][A-Za-z]+$", root) or not parts:
        return None
    steps: list[Step] = []
    for index, part in enumerate(parts):
        if _NAME.match(part):
            following = parts[index + 1] if index + 1 < len(parts) else ""
            if not _AS.match(following):
                steps.append(_name_step(part))
        elif (where := _WHERE.match(part)) is not None:
            steps.append(_where_step(where["key"], where["value"]))
        elif (extension := _EXTENSION.match(part)) is not None:
            steps.append(_extension_step(extension["url"]))
        elif (as_type := _AS.match(part)) is not None and index > 0 and _NAME.match(parts[index - 1]):
            steps.append(_as_step(parts[index - 1], as_type["type"]))
        else:
            return None

    def evaluate(resource: dict[str, Any]) -> list[Any]:
        nodes: list[Any] = [resource]
        for step in steps:
            nodes = step(nodes)
            if not nodes:
                break
        return nodes

    return evaluate


def _branch(expression: str) -> Evaluate:
    walker = _walker(expression)
    if walker is not None:
        return walker
    compiled: Callable[..., Any] = fhirpath_compile(expression, models["r4"])

    def evaluate(resource: dict[str, Any]) -> list[Any]:
        try:
            return list(compiled(resource))
        except Exception:  # noqa: BLE001 - a FHIRPath engine fault must not block a write
            return []

    return evaluate


def compile_expression(expression: str) -> Evaluate:
    """Compile one SearchParameter expression (branches joined by ``|``)."""
    branches = [_branch(part.strip()) for part in _split_union(expression)]
    if len(branches) == 1:
        return branches[0]

    def evaluate(resource: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for branch in branches:
            out.extend(branch(resource))
        return out

    return evaluate


def _split_union(expression: str) -> list[str]:
    depth = 0
    start = 0
    parts: list[str] = []
    for index, char in enumerate(expression):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(expression[start:index])
            start = index + 1
    parts.append(expression[start:])
    return [part for part in parts if part.strip()]


def _plain(value: Any) -> Any:
    # fhirpathpy wraps some primitives (dates, quantities); index their FHIR text.
    if isinstance(value, dict | list | str | bool | int):
        return value
    return str(value)


@dataclass
class Extractor:
    """Computes :class:`IndexRows` for resources; caches compiled expressions (not shared across apps)."""

    registry: SearchRegistry
    _compiled: dict[tuple[str, str], Evaluate] = field(default_factory=dict)

    def _evaluate(self, param: SearchParam, resource_type: str, resource: dict[str, Any]) -> list[Any]:
        key = (resource_type, param.code)
        evaluate = self._compiled.get(key)
        if evaluate is None:
            evaluate = compile_expression(param.expression)
            self._compiled[key] = evaluate
        return [_plain(value) for value in evaluate(resource)]

    def rows(self, resource_type: str, resource: dict[str, Any]) -> IndexRows:
        token_rows: set[tuple[str, TokenValue]] = set()
        string_rows: set[tuple[str, str]] = set()
        reference_rows: set[tuple[str, ReferenceValue]] = set()
        date_rows: set[tuple[str, DateRange]] = set()
        for param in self.registry.params(resource_type).values():
            values = self._evaluate(param, resource_type, resource)
            if not values:
                continue
            for value in values:
                if param.type in (ParamType.TOKEN, ParamType.URI):
                    token_rows.update((param.code, token) for token in tokens(value))
                elif param.type is ParamType.STRING:
                    string_rows.update((param.code, text) for text in strings(value))
                elif param.type is ParamType.REFERENCE:
                    reference_rows.update(
                        (param.code, ref)
                        for ref in references(value)
                        if ref.target_type is None or not param.targets or ref.target_type in param.targets
                    )
                elif param.type is ParamType.DATE:
                    date_rows.update((param.code, rng) for rng in date_ranges(value))
        return IndexRows(
            tokens=tuple(sorted(token_rows, key=repr)),
            strings=tuple(sorted(string_rows)),
            references=tuple(sorted(reference_rows, key=repr)),
            dates=tuple(sorted(date_rows, key=repr)),
        )


__all__ = ["Extractor", "IndexRows", "compile_expression", "normalize"]
