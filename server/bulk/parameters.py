"""The kick-off request of ``Group/{id}/$export`` (Bulk Data 2.0 "Bulk Data Kick-off Request"):
its headers and parameters, checked before any job exists. Anything PriorGate does not do is a 400
OperationOutcome naming it, never silently ignored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from igs.outcome import invalid
from server.search.values import parse_date_range

from .codes import NDJSON, NDJSON_FORMATS, RESPOND_ASYNC
from .content import EXPORT_TYPES
from .jobs import Parameters

SUPPORTED: Final = frozenset({"_type", "_since", "_outputFormat"})
# Bulk Data 2.0 parameters PriorGate does not implement (a client can retry without them).
UNSUPPORTED: Final = frozenset({"_typeFilter", "_elements", "patient", "includeAssociatedData", "_until"})
# FHIR's general parameters that change nothing here.
IGNORED: Final = frozenset({"_format", "_pretty"})


def require_respond_async(prefer: str | None) -> None:
    """Bulk Data 2.0: the kick-off SHALL carry ``Prefer: respond-async``."""
    values = {part.strip().split("=", 1)[0].strip().lower() for part in (prefer or "").split(",")}
    if RESPOND_ASYNC not in values:
        raise invalid("a bulk export kick-off needs the header 'Prefer: respond-async'", "Prefer")


def parse_parameters(pairs: Sequence[tuple[str, str]]) -> Parameters:
    """The job parameters from query (or Parameters body) name/value pairs."""
    types: list[str] = []
    since: str | None = None
    output_format = NDJSON
    for name, value in pairs:
        if name in IGNORED:
            continue
        if name in UNSUPPORTED:
            raise invalid(f"the {name} parameter is not supported by this server; retry without it", name)
        if name not in SUPPORTED:
            raise invalid(f"{name!r} is not a parameter of Group/$export", name)
        if name == "_type":
            for item in (v.strip() for v in value.split(",")):
                if item not in EXPORT_TYPES:
                    known = ", ".join(EXPORT_TYPES)
                    raise invalid(f"_type {item!r} is not exported; the types are {known}", "_type")
                if item not in types:
                    types.append(item)
        elif name == "_since":
            if since is not None:
                raise invalid("_since may be given once", "_since")
            if "T" not in value or parse_date_range(value) is None:
                raise invalid(f"_since {value!r} is not a FHIR instant (e.g. 2024-01-01T00:00:00Z)", "_since")
            since = value
        elif name == "_outputFormat":
            if value not in NDJSON_FORMATS:
                raise invalid(f"_outputFormat {value!r} is not supported; use {NDJSON}", "_outputFormat")
    return Parameters(tuple(types), since, output_format)


def parameters_body(body: Any) -> list[tuple[str, str]]:
    """Name/value pairs of a kick-off ``Parameters`` body (POST); 400 for any other body."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise invalid("a POST kick-off carries a Parameters resource")
    pairs: list[tuple[str, str]] = []
    for parameter in body.get("parameter") or ():
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise invalid("each Parameters.parameter needs a name")
        values = [v for k, v in parameter.items() if k.startswith("value") and isinstance(v, str)]
        if len(values) != 1:
            raise invalid(f"parameter {parameter['name']!r} needs one string-like value")
        pairs.append((parameter["name"], values[0]))
    return pairs
