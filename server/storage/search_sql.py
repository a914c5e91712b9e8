"""Search criteria as SQL over the index tables (https://hl7.org/fhir/R4/search.html).

Each criterion becomes ``resource_id IN (SELECT resource_id FROM idx_* WHERE ...)``; alternatives within a
criterion are ORed, criteria are ANDed. The same SQL runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, func, not_, or_, select

from igs.outcome import invalid
from server.search.definitions import ParamType
from server.search.query import ID, LAST_UPDATED, Criterion, SortKey, date_prefix
from server.search.values import (
    DateRange,
    normalize,
    parse_date_range,
    parse_reference,
    timestamp,
)
from server.storage.schema import idx_date, idx_reference, idx_string, idx_token, resource

# The tenant condition on an index table's rows for a resource type (the caller's tenant filter).
TenantClause = Callable[[Table, str], ColumnElement[bool]]

_INDEX_TABLE: dict[ParamType, Table] = {
    ParamType.TOKEN: idx_token,
    ParamType.URI: idx_token,
    ParamType.STRING: idx_string,
    ParamType.REFERENCE: idx_reference,
    ParamType.DATE: idx_date,
}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def criterion_clause(
    criterion: Criterion, tenant: TenantClause, resource_type: str, now: datetime
) -> ColumnElement[bool]:
    """The WHERE clause (over ``resource``) for one criterion."""
    code = criterion.param.code
    if code == ID:
        clause: ColumnElement[bool] = resource.c.resource_id.in_(criterion.values)
        return not_(clause) if criterion.modifier == "not" else clause
    if code == LAST_UPDATED:
        return or_(
            *(
                _date_clause(resource.c.last_updated, resource.c.last_updated, v, now)
                for v in criterion.values
            )
        )
    if criterion.chain:
        return resource.c.resource_id.in_(_chained_ids(criterion, tenant, resource_type, now))
    table = _INDEX_TABLE[criterion.param.type]
    if criterion.modifier == "missing":
        present = resource.c.resource_id.in_(_owned(table, tenant, resource_type, code))
        return not_(present) if criterion.values[0] == "true" else present
    matched = resource.c.resource_id.in_(_matching_ids(criterion, tenant, resource_type, now))
    return not_(matched) if criterion.modifier == "not" else matched


def _owned(table: Table, tenant: TenantClause, resource_type: str, code: str) -> Select[tuple[str]]:
    return select(table.c.resource_id).where(
        tenant(table, resource_type), table.c.resource_type == resource_type, table.c.param == code
    )


def _matching_ids(
    criterion: Criterion, tenant: TenantClause, resource_type: str, now: datetime
) -> Select[tuple[str]]:
    """Ids of ``resource_type`` resources whose index rows match any of the criterion's values."""
    table = _INDEX_TABLE[criterion.param.type]
    build = _VALUE_CLAUSE[criterion.param.type]
    alternatives = or_(*(build(table, criterion, value, now) for value in criterion.values))
    return _owned(table, tenant, resource_type, criterion.param.code).where(alternatives)


def _chained_ids(
    criterion: Criterion, tenant: TenantClause, resource_type: str, now: datetime
) -> Select[tuple[str]]:
    """Ids whose reference parameter points at a resource matching the chained criterion."""
    targets = []
    for target_type, inner in criterion.chain:
        if inner.modifier in ("missing", "not"):
            raise invalid(f"{criterion.key}: :{inner.modifier} is not supported in a chain", criterion.key)
        targets.append(
            and_(
                idx_reference.c.target_type == target_type,
                idx_reference.c.target_id.in_(_matching_ids(inner, tenant, target_type, now)),
            )
        )
    return _owned(idx_reference, tenant, resource_type, criterion.param.code).where(or_(*targets))


def sort_value(key: SortKey, resource_type: str) -> Any:
    """The value a resource sorts by for a search parameter (https://hl7.org/fhir/R4/search.html#sort):
    the earliest date or smallest string or code ascending, the latest or largest descending."""
    assert key.param is not None
    table = _INDEX_TABLE[key.param.type]
    if key.param.type is ParamType.DATE:
        column = func.max(table.c.high) if key.descending else func.min(table.c.low)
    elif key.param.type is ParamType.STRING:
        column = func.max(table.c.norm) if key.descending else func.min(table.c.norm)
    else:
        column = func.max(table.c.code) if key.descending else func.min(table.c.code)
    return (
        select(column)
        .where(
            table.c.tenant == resource.c.tenant,
            table.c.resource_type == resource_type,
            table.c.resource_id == resource.c.resource_id,
            table.c.param == key.param.code,
        )
        .scalar_subquery()
    )


def _token_clause(table: Table, criterion: Criterion, value: str, now: datetime) -> ColumnElement[bool]:
    if criterion.param.type is ParamType.URI:
        if criterion.modifier == "below":
            return table.c.code.like(_like_escape(value) + "%", escape="\\")
        return table.c.code == value
    if "|" not in value:
        return table.c.code == value
    system, code = value.split("|", 1)
    if not system:
        return and_(table.c.system.is_(None), table.c.code == code)
    if not code:
        return table.c.system == system
    return and_(table.c.system == system, table.c.code == code)


def _string_clause(table: Table, criterion: Criterion, value: str, now: datetime) -> ColumnElement[bool]:
    if criterion.modifier == "exact":
        return table.c.value == value
    norm = normalize(value)
    if criterion.modifier == "contains":
        return table.c.norm.like(f"%{_like_escape(norm)}%", escape="\\")
    if not norm:
        return table.c.norm.is_not(None)
    # "starts with" as a code-point range (the column compares by code point), so the index serves it.
    following = norm[:-1] + chr(ord(norm[-1]) + 1)
    return and_(table.c.norm >= norm, table.c.norm < following)


def _reference_clause(table: Table, criterion: Criterion, value: str, now: datetime) -> ColumnElement[bool]:
    modifier = criterion.modifier
    if "://" in value or value.startswith("urn:"):
        parsed = parse_reference(value)
        by_url = table.c.url == value
        if parsed.target_type and parsed.target_id:
            return or_(
                by_url, and_(table.c.target_type == parsed.target_type, table.c.target_id == parsed.target_id)
            )
        return by_url
    if "/" in value:
        parsed = parse_reference(value)
        if parsed.target_type is None:
            raise invalid(f"{criterion.key}: {value!r} is not a reference", criterion.key)
        return and_(table.c.target_type == parsed.target_type, table.c.target_id == parsed.target_id)
    if modifier and modifier[:1].isupper():
        return and_(table.c.target_type == modifier, table.c.target_id == value)
    return table.c.target_id == value


def _date_clause_index(table: Table, criterion: Criterion, value: str, now: datetime) -> ColumnElement[bool]:
    return _date_clause(table.c.low, table.c.high, value, now)


def _date_clause(
    low: ColumnElement[str], high: ColumnElement[str], value: str, now: datetime
) -> ColumnElement[bool]:
    """Prefix semantics over ranges (https://hl7.org/fhir/R4/search.html#prefix)."""
    prefix, text = date_prefix(value)
    target = parse_date_range(text)
    if target is None:
        raise invalid(f"{value!r} is not a FHIR date, dateTime or instant")
    if prefix == "eq":
        return and_(low >= target.low, high <= target.high)
    if prefix == "ne":
        return not_(and_(low >= target.low, high <= target.high))
    if prefix == "gt":
        return high > target.high
    if prefix == "lt":
        return low < target.low
    if prefix == "ge":
        return or_(high > target.high, and_(low >= target.low, high <= target.high))
    if prefix == "le":
        return or_(low < target.low, and_(low >= target.low, high <= target.high))
    if prefix == "sa":
        return low > target.high
    if prefix == "eb":
        return high < target.low
    widened = _approximately(target, now)
    return and_(low <= widened.high, high >= widened.low)


def _approximately(target: DateRange, now: datetime) -> DateRange:
    # "ap": within 10% of the gap between the value and now (the spec's recommendation), at least a day.
    low = datetime.fromisoformat(target.low + "+00:00")
    gap = abs(now - low) / 10
    slack = max(gap, timedelta(days=1))
    high = datetime.fromisoformat(target.high + "+00:00") if not target.high.startswith("9999") else None
    return DateRange(
        timestamp(low - slack) if low.year > 1 else target.low,
        timestamp(high + slack) if high is not None and high.year < 9999 else target.high,
    )


_VALUE_CLAUSE: dict[ParamType, Callable[[Table, Criterion, str, datetime], ColumnElement[bool]]] = {
    ParamType.TOKEN: _token_clause,
    ParamType.URI: _token_clause,
    ParamType.STRING: _string_clause,
    ParamType.REFERENCE: _reference_clause,
    ParamType.DATE: _date_clause_index,
}

__all__ = ["criterion_clause"]
