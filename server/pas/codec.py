"""JSON round-trip for the core's frozen dataclasses (Decision, ReviewItem and what they hold), so
storage keeps a decision exactly as the core made it and any process can continue from it.

Types come from the dataclass annotations: nested dataclasses, ``tuple[X, ...]``, ``X | None``, enums,
``datetime`` / ``date`` / ``timedelta`` (ISO strings, seconds), ``Decimal`` (string: exact).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, TypeVar

import orjson

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    """A plain JSON value for a core dataclass (or anything it holds)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(kind: Any, data: Any) -> Any:
    """The value of type ``kind`` that :func:`to_jsonable` rendered as ``data``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if data is None:
            return None
        return from_jsonable(args[0], data)
    if origin is tuple:
        (inner, *_) = typing.get_args(kind)
        return tuple(from_jsonable(inner, v) for v in data)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        names = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{k: from_jsonable(hints[k], v) for k, v in data.items() if k in names})
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is date:
        return date.fromisoformat(data)
    if kind is timedelta:
        return timedelta(seconds=data)
    if kind is Decimal:
        return Decimal(data)
    return data


def dumps(value: Any) -> str:
    """Compact JSON text of a core dataclass."""
    return orjson.dumps(to_jsonable(value)).decode()


def loads(kind: type[T], text: str | bytes) -> T:
    """The dataclass of type ``kind`` back from :func:`dumps` output."""
    value: T = from_jsonable(kind, orjson.loads(text))
    return value
