"""Generate ``search_parameters.json`` from the FHIR R4 core package (``hl7.fhir.r4.core-4.0.1.tgz``).

Run: ``python -m server.search.generate /path/to/hl7.fhir.r4.core-4.0.1.tgz``. The committed file lets the
server search with no IG packages present; a test checks it is current.

Spec: https://hl7.org/fhir/R4/searchparameter.html. R4 core expressions are shared across resource types
(``A.x | B.y``); each type keeps its own branches. ``X.where(resolve() is T)`` becomes ``X`` with the
target narrowed to ``T``, because the index stores each reference's target type anyway.
"""

from __future__ import annotations

import re
import sys
import tarfile
from pathlib import Path
from typing import Any

import orjson

from server.resource_types import RESOURCE_TYPES

SUPPORTED_TYPES = ("token", "reference", "date", "string", "uri")
# Resource-level parameters with their own columns, never indexed from an expression.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})
OUTPUT = Path(__file__).with_name("search_parameters.json")

_RESOLVE_IS = re.compile(r"^(?P<path>.+)\.where\(resolve\(\) is (?P<type>[A-Za-z]+)\)$")


def _branches(expression: str) -> list[str]:
    depth = 0
    parts: list[str] = []
    current: list[str] = []
    for char in expression:
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _for_base(definition: dict[str, Any], base: str) -> dict[str, Any] | None:
    expression = definition.get("expression")
    if not expression:
        return None
    targets: set[str] = set(definition.get("target", []))
    kept: list[str] = []
    narrowed: set[str] = set()
    for branch in _branches(expression):
        bare = branch[1:-1] if branch.startswith("(") and branch.endswith(")") else branch
        root = re.split(r"[.\s]", bare, maxsplit=1)[0]
        if root not in (base, "Resource"):
            continue
        match = _RESOLVE_IS.match(bare)
        if match:
            bare = match["path"]
            narrowed.add(match["type"])
        elif root == base and branch != bare and " as " in bare:
            bare = branch
        kept.append(bare.replace("Resource.", f"{base}.", 1) if root == "Resource" else bare)
    if not kept:
        return None
    out: dict[str, Any] = {
        "code": definition["code"],
        "type": definition["type"],
        "expression": " | ".join(kept),
    }
    if definition["type"] == "reference":
        out["target"] = sorted(narrowed) if narrowed and len(narrowed) == len(kept) else sorted(targets)
    return out


def generate(core_package: Path) -> dict[str, list[dict[str, Any]]]:
    """Read every SearchParameter in the core package and keep those PriorGate indexes."""
    wanted = set(RESOURCE_TYPES)
    by_type: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in RESOURCE_TYPES}
    with tarfile.open(core_package) as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not (name.startswith("SearchParameter-") and name.endswith(".json")):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            definition = orjson.loads(handle.read())
            if definition.get("type") not in SUPPORTED_TYPES or definition.get("code") in COLUMN_PARAMS:
                continue
            bases = definition.get("base", [])
            for base in sorted(wanted if "Resource" in bases else wanted.intersection(bases)):
                param = _for_base(definition, base)
                if param is not None:
                    by_type[base][param["code"]] = param
    return {name: [params[code] for code in sorted(params)] for name, params in sorted(by_type.items())}


def render(table: dict[str, list[dict[str, Any]]]) -> bytes:
    return orjson.dumps(table, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m server.search.generate hl7.fhir.r4.core-4.0.1.tgz", file=sys.stderr)
        return 2
    OUTPUT.write_bytes(render(generate(Path(args[0]))))
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
