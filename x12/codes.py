"""The X12 codes the mapping uses, read from ``x12/rules/codes.toml`` (package data, read once)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any


@cache
def code_lists() -> MappingProxyType[str, MappingProxyType[str, str]]:
    """Element number -> code -> meaning, for every list in codes.toml."""
    raw: dict[str, Any] = tomllib.loads(files("x12").joinpath("rules/codes.toml").read_text("utf-8"))
    return MappingProxyType(
        {element: MappingProxyType(dict(body["codes"])) for element, body in raw["lists"].items()}
    )


def display(element: str, code: str) -> str | None:
    """The meaning of ``code`` in X12 list ``element``, or None when we do not ship it."""
    return code_lists().get(element, MappingProxyType({})).get(code)
