"""Parsing a FHIR search request into a typed query (https://hl7.org/fhir/R4/search.html).

Unknown parameters are an error under ``Prefer: handling=strict`` and otherwise ignored and reported back
(https://hl7.org/fhir/R4/search.html#errors).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from igs.outcome import invalid
from server.search.definitions import ParamType, SearchParam, SearchRegistry
from server.search.values import parse_date_range

# Resource-level parameters stored as columns of the resource table.
ID: Final = "_id"
LAST_UPDATED: Final = "_lastUpdated"
COLUMN_PARAMS: Final = {
    ID: SearchParam(ID, ParamType.TOKEN, "Resource.id"),
    LAST_UPDATED: SearchParam(LAST_UPDATED, ParamType.DATE, "Resource.meta.lastUpdated"),
}
# Parameters the HTTP layer consumes; they never reach a query.
FORMAT_PARAMS: Final = frozenset({"_format", "_pretty"})
SORTABLE: Final = frozenset({ID, LAST_UPDATED})

MODIFIERS: Final[dict[ParamType, frozenset[str]]] = {
    ParamType.STRING: frozenset({"exact", "contains", "missing"}),
    ParamType.TOKEN: frozenset({"missing", "not"}),
    ParamType.URI: frozenset({"missing", "below"}),
    ParamType.REFERENCE: frozenset({"missing"}),
    ParamType.DATE: frozenset({"missing"}),
}
DATE_PREFIXES: Final = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

_INCLUDE = re.compile(
    r"^(?P<source>[A-Z][A-Za-z]+|\*):(?P<param>[A-Za-z0-9_-]+|\*)(?::(?P<target>[A-Z][A-Za-z]+))?$"
)


@dataclass(frozen=True)
class Criterion:
    """One search parameter with its alternatives (``a,b`` means a OR b); criteria are ANDed."""

    param: SearchParam
    modifier: str | None
    values: tuple[str, ...]
    # A chained parameter (subject:Patient.name=x): the inner criterion for each possible target type.
    chain: tuple[tuple[str, Criterion], ...] = ()
    chain_name: str = ""

    @property
    def key(self) -> str:
        if self.chain:
            return self.chain_name
        if self.modifier is None:
            return self.param.code
        return f"{self.param.code}:{self.modifier}"


@dataclass(frozen=True)
class Include:
    """``_include=Source:param[:Target]`` or ``_revinclude`` of the same shape."""

    source_type: str
    param: str
    target_type: str | None

    def render(self) -> str:
        tail = f":{self.target_type}" if self.target_type else ""
        return f"{self.source_type}:{self.param}{tail}"


SHAPING_SUMMARIES: Final = frozenset({"text", "data", "false"})
SUBSETTED: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS_KEPT: Final = ("resourceType", "id", "meta")


@dataclass(frozen=True)
class Shape:
    """``_elements`` and ``_summary=text|data`` (https://hl7.org/fhir/R4/search.html#elements): which
    top-level elements a returned resource keeps. ``_summary=true`` needs per-type summary flags and is
    not supported."""

    elements: tuple[str, ...] = ()
    summary: str | None = None

    @property
    def trims(self) -> bool:
        return bool(self.elements) or self.summary in ("text", "data")

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource with only the chosen elements, tagged SUBSETTED as the spec requires."""
        if self.summary == "text":
            keep = set(_ALWAYS_KEPT) | {"text"}
            out = {k: v for k, v in resource.items() if k in keep}
        elif self.elements:
            keep = set(_ALWAYS_KEPT) | set(self.elements)
            out = {k: v for k, v in resource.items() if k in keep}
        else:
            out = dict(resource)
        if self.summary == "data":
            out.pop("text", None)
        meta = dict(out.get("meta") or {})
        meta["tag"] = [*meta.get("tag", []), SUBSETTED]
        out["meta"] = meta
        return out

    def link_params(self) -> list[tuple[str, str]]:
        pairs = [("_elements", ",".join(self.elements))] if self.elements else []
        return pairs + ([("_summary", self.summary)] if self.summary else [])


@dataclass(frozen=True)
class SortKey:
    """One ``_sort`` key; ``param`` is None for the resource columns ``_id`` and ``_lastUpdated``."""

    code: str
    descending: bool
    param: SearchParam | None = None


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search: criteria, paging, includes, and what was ignored."""

    resource_type: str
    criteria: tuple[Criterion, ...] = ()
    count: int = 50
    offset: int = 0
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    summary_count: bool = False
    shape: Shape = field(default_factory=Shape)
    total: bool = True
    sort: tuple[SortKey, ...] = ()
    ignored: tuple[str, ...] = ()

    def link_params(self, offset: int | None = None) -> list[tuple[str, str]]:
        """The parameters that were applied, for ``self``/``next`` links (ignored ones left out)."""
        pairs = [(c.key, ",".join(_escape(v) for v in c.values)) for c in self.criteria]
        pairs += [("_include", inc.render()) for inc in self.includes]
        pairs += [("_revinclude", inc.render()) for inc in self.revincludes]
        if self.sort:
            pairs.append(("_sort", ",".join(("-" if k.descending else "") + k.code for k in self.sort)))
        if self.summary_count:
            pairs.append(("_summary", "count"))
        pairs += self.shape.link_params()
        pairs.append(("_count", str(self.count)))
        chosen = self.offset if offset is None else offset
        if chosen:
            pairs.append(("_offset", str(chosen)))
        return pairs


def _escape(value: str) -> str:
    # Values were split on unescaped commas; only a comma needs its escape back.
    return value.replace(",", "\\,")


def split_values(raw: str) -> tuple[str, ...]:
    """Split a parameter value on unescaped commas (https://hl7.org/fhir/R4/search.html#escaping)."""
    values: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            current.append(raw[index + 1] if raw[index + 1] in ",$\\" else raw[index : index + 2])
            index += 2
            continue
        if char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    values.append("".join(current))
    return tuple(values)


def _int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer, not {raw!r}", name) from None
    if value < minimum:
        raise invalid(f"{name} must be at least {minimum}", name)
    return value


def _include(raw: str, name: str, registry: SearchRegistry) -> Include:
    match = _INCLUDE.match(raw)
    if match is None:
        raise invalid(f"{name}={raw!r} is not Type:param[:TargetType]", name)
    source, param = match["source"], match["param"]
    if source != "*" and param != "*" and registry.param(source, param) is None:
        raise invalid(f"{name}: {source} has no search parameter {param!r}", name)
    if source != "*" and param != "*" and registry.param(source, param).type is not ParamType.REFERENCE:  # type: ignore[union-attr]
        raise invalid(f"{name}: {source}:{param} is not a reference parameter", name)
    return Include(source, param, match["target"])


def parse_search(
    resource_type: str,
    pairs: Sequence[tuple[str, str]],
    registry: SearchRegistry,
    *,
    strict: bool = False,
    default_count: int = 50,
    max_count: int = 1000,
) -> SearchQuery:
    """Parse query pairs (repeats allowed: ``date=ge2020&date=lt2021`` is AND) into a :class:`SearchQuery`."""
    criteria: list[Criterion] = []
    includes: list[Include] = []
    revincludes: list[Include] = []
    ignored: list[str] = []
    count = default_count
    offset = 0
    summary_count = False
    shape = Shape()
    total = True
    sort: list[SortKey] = []
    for name, raw in pairs:
        if name in FORMAT_PARAMS:
            continue
        if name == "_count":
            count = min(_int(name, raw, 0), max_count)
        elif name == "_offset":
            offset = _int(name, raw, 0)
        elif name == "_include":
            includes.append(_include(raw, name, registry))
        elif name == "_revinclude":
            revincludes.append(_include(raw, name, registry))
        elif name == "_summary":
            if raw == "count":
                summary_count = True
            elif raw in SHAPING_SUMMARIES:
                shape = Shape(shape.elements, raw)
            else:
                _unknown(f"_summary={raw}", strict, ignored, "supported: count, text, data, false")
        elif name == "_elements":
            shape = Shape(tuple(e.strip() for e in raw.split(",") if e.strip()), shape.summary)
        elif name == "_total":
            if raw not in ("none", "estimate", "accurate"):
                raise invalid(f"_total must be none, estimate or accurate, not {raw!r}", name)
            total = raw != "none"
        elif name == "_sort":
            for item in raw.split(","):
                code = item.lstrip("-")
                sortable = registry.param(resource_type, code)
                if code in SORTABLE:
                    sort.append(SortKey(code, item.startswith("-")))
                elif sortable is not None and sortable.type is not ParamType.REFERENCE:
                    sort.append(SortKey(code, item.startswith("-"), sortable))
                else:
                    _unknown(
                        f"_sort={item}", strict, ignored, f"{resource_type} cannot be sorted by {code!r}"
                    )
        else:
            criterion = _criterion(resource_type, name, raw, registry, strict, ignored)
            if criterion is not None:
                criteria.append(criterion)
    return SearchQuery(
        resource_type=resource_type,
        criteria=tuple(criteria),
        count=count,
        offset=offset,
        includes=tuple(includes),
        revincludes=tuple(revincludes),
        summary_count=summary_count,
        shape=shape,
        total=total,
        sort=tuple(sort),
        ignored=tuple(ignored),
    )


def _unknown(what: str, strict: bool, ignored: list[str], why: str) -> None:
    if strict:
        raise invalid(f"Unsupported search parameter {what}: {why}", code="not-supported")
    ignored.append(what)


def _criterion(
    resource_type: str,
    name: str,
    raw: str,
    registry: SearchRegistry,
    strict: bool,
    ignored: list[str],
) -> Criterion | None:
    if "." in name:
        return _chained(resource_type, name, raw, registry, strict, ignored)
    code, _, modifier = name.partition(":")
    param = COLUMN_PARAMS.get(code) or registry.param(resource_type, code)
    if param is None:
        _unknown(name, strict, ignored, f"{resource_type} has no such search parameter here")
        return None
    chosen = modifier or None
    if chosen is not None and chosen not in MODIFIERS[param.type]:
        if param.type is ParamType.REFERENCE and chosen[:1].isupper() and chosen in param.targets:
            pass  # the type modifier: subject:Patient=123
        else:
            raise invalid(f"Modifier :{chosen} is not supported on {param.type} parameter {code}", name)
    if chosen == "missing" and raw not in ("true", "false"):
        raise invalid(f"{name} must be true or false", name)
    values = split_values(raw)
    if param.type is ParamType.DATE and chosen != "missing":
        for value in values:
            _check_date(name, value)
    return Criterion(param, chosen, values)


def _chained(
    resource_type: str,
    name: str,
    raw: str,
    registry: SearchRegistry,
    strict: bool,
    ignored: list[str],
) -> Criterion | None:
    """One level of chaining (https://hl7.org/fhir/R4/search.html#chaining): ``patient.identifier=x``."""
    head, _, tail = name.partition(".")
    code, _, type_modifier = head.partition(":")
    param = registry.param(resource_type, code)
    if param is None or param.type is not ParamType.REFERENCE:
        _unknown(name, strict, ignored, f"{code!r} is not a reference parameter of {resource_type}")
        return None
    if "." in tail:
        _unknown(name, strict, ignored, "only one level of chaining is supported")
        return None
    targets = (type_modifier,) if type_modifier else param.targets
    chain: list[tuple[str, Criterion]] = []
    for target in targets:
        inner_code = tail.partition(":")[0]
        if inner_code in COLUMN_PARAMS or registry.param(target, inner_code) is None:
            continue
        inner = _criterion(target, tail, raw, registry, True, [])
        if inner is not None:
            chain.append((target, inner))
    if not chain:
        _unknown(name, strict, ignored, f"no target of {resource_type}.{code} has search parameter {tail!r}")
        return None
    return Criterion(param, None, split_values(raw), tuple(chain), name)


def date_prefix(value: str) -> tuple[str, str]:
    """Split ``ge2020-01-01`` into ``("ge", "2020-01-01")``; no prefix means ``eq``."""
    if value[:2] in DATE_PREFIXES and not value[:2].isdigit():
        return value[:2], value[2:]
    return "eq", value


def _check_date(name: str, value: str) -> None:
    _, text = date_prefix(value)
    if parse_date_range(text) is None:
        raise invalid(f"{name}: {value!r} is not a FHIR date, dateTime or instant", name)
