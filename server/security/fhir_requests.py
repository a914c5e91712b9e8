"""Which SMART scope a FHIR RESTful request needs, read from its method and path alone.

Spec: FHIR R4 RESTful API (https://hl7.org/fhir/R4/http.html) for the URL patterns; SMART App Launch
2.1.0 "Scopes and Launch Context" for the permission letters (scopes.RESTFUL_INTERACTION_SCOPE) and
scopes.OPERATION_REQUIREMENTS for operations. A transaction/batch needs each entry checked:
:func:`bundle_requirements` lists what its entries need.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from server.security.scopes import Interaction, Scope, operation_allowed, operation_requirement, scope_allows

_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")

RequirementKind = Literal["public", "interaction", "operation", "bundle", "authenticated"]


@dataclass(frozen=True)
class Requirement:
    """What a request needs. ``bundle``: authentication now, each entry checked by the handler;
    ``authenticated``: an unrecognised path (it will 404), authentication only."""

    kind: RequirementKind
    resource_type: str = "*"
    interaction: Interaction | None = None
    operation: str | None = None

    def allowed_by(self, scopes: Iterable[Scope]) -> bool:
        if self.kind == "interaction":
            assert self.interaction is not None
            return scope_allows(scopes, self.resource_type, self.interaction)
        if self.kind == "operation":
            assert self.operation is not None
            return operation_allowed(
                scopes, self.operation, None if self.resource_type == "*" else self.resource_type
            )
        return True

    def describe(self) -> str:
        """The scope that would satisfy this requirement, for error messages."""
        if self.kind == "interaction":
            return f"system/{self.resource_type}.{self.interaction}"
        if self.kind == "operation" and self.operation is not None:
            req = operation_requirement(
                self.operation, None if self.resource_type == "*" else self.resource_type
            )
            letters = "".join(sorted(req.any_of, key="cruds".index))
            return f"system/{req.resource_type}.{letters}"
        return "an access token"


PUBLIC = Requirement("public")
_AUTHENTICATED = Requirement("authenticated")


def _interaction(resource_type: str, letter: Interaction) -> Requirement:
    return Requirement("interaction", resource_type, letter)


def _operation(name: str, resource_type: str = "*") -> Requirement:
    return Requirement("operation", resource_type, operation=name)


# HTTP method -> permission letter, at type level (``Claim``) and instance level (``Claim/1``).
_TYPE_LEVEL: dict[str, Interaction] = {
    "GET": "s",
    "HEAD": "s",
    "POST": "c",
    "PUT": "u",
    "PATCH": "u",
    "DELETE": "d",
}
_INSTANCE_LEVEL: dict[str, Interaction] = {"GET": "r", "HEAD": "r", "PUT": "u", "PATCH": "u", "DELETE": "d"}


def fhir_request_requirement(method: str, path: str) -> Requirement:
    """The requirement of ``method`` on ``path`` (relative to the FHIR base: ``Claim/1``, ``$submit``)."""
    method = method.upper()
    segments = [s for s in path.split("?", 1)[0].strip("/").split("/") if s]
    if not segments:
        return Requirement("bundle") if method == "POST" else _interaction("*", "s")
    first = segments[0]
    if first == "metadata" and len(segments) == 1:
        return PUBLIC
    if first.startswith("$"):
        return _operation(first)
    if first == "_history":
        return _interaction("*", "s")
    if first == "_search" and method == "POST":
        return _interaction("*", "s")
    if not _TYPE.match(first):
        return _AUTHENTICATED
    rest = segments[1:]
    if not rest:
        letter = _TYPE_LEVEL.get(method)
        return _interaction(first, letter) if letter else _AUTHENTICATED
    second = rest[0]
    if second.startswith("$"):
        return _operation(second, first) if len(rest) == 1 else _AUTHENTICATED
    if second in ("_search", "_history") and len(rest) == 1:
        return _interaction(first, "s")
    if len(rest) == 1:
        letter = _INSTANCE_LEVEL.get(method)
        return _interaction(first, letter) if letter else _AUTHENTICATED
    third = rest[1]
    if third.startswith("$") and len(rest) == 2:
        return _operation(third, first)
    if third == "_history" and len(rest) in (2, 3):
        return _interaction(first, "r")
    return _AUTHENTICATED


def bundle_requirements(bundle: Any) -> list[Requirement]:
    """What each entry of a transaction/batch Bundle needs (``entry.request.method`` + ``url``).

    Absolute entry URLs are reduced to their path; an entry without a usable request needs nothing
    here (the Bundle processor rejects it).
    """
    out: list[Requirement] = []
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            continue
        method, url = request.get("method"), request.get("url")
        if not isinstance(method, str) or not isinstance(url, str):
            continue
        path = urlsplit(url).path if "://" in url else url
        if "/fhir/" in path:
            path = path.split("/fhir/", 1)[1]
        requirement = fhir_request_requirement(method, path)
        out.append(_interaction("*", "s") if requirement.kind == "bundle" else requirement)
    return out
