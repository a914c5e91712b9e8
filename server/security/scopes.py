"""SMART scopes: parsing (v2 with v1 compatibility) and the check a route makes before it runs.

Spec: SMART App Launch 2.1.0, "Scopes and Launch Context": clinical-data scopes are
``(patient|user|system)/(ResourceType|*).(c?r?u?d?s?)[?param=value&...]`` (v2, letters in that order)
or ``.read`` / ``.write`` / ``.*`` (v1; ``read`` = ``rs``, ``write`` = ``cud``, ``*`` = ``cruds``).

Query-parameter restrictions (``system/Observation.rs?category=...``) are recognised and kept, but
PriorGate does not enforce them yet: such a scope grants nothing in :func:`scope_allows`, and the token
endpoint refuses to issue it (``invalid_scope``), so a restriction can never silently widen into full
access.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, get_args
from urllib.parse import parse_qsl

Context = Literal["patient", "user", "system"]
Interaction = Literal["c", "r", "u", "d", "s"]

INTERACTIONS: Final[tuple[Interaction, ...]] = get_args(Interaction)
CONTEXTS: Final[tuple[Context, ...]] = get_args(Context)

_V1_PERMISSIONS: Final[dict[str, frozenset[Interaction]]] = {
    "read": frozenset({"r", "s"}),
    "write": frozenset({"c", "u", "d"}),
    "*": frozenset(INTERACTIONS),
}
_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<perm>[a-z*]+)(?:\?(?P<query>.*))?$"
)
_V2_PERMISSION = re.compile(r"^c?r?u?d?s?$")
# Scopes that are not about clinical data; recognised so they are not reported as malformed.
NON_RESOURCE_SCOPES: Final = frozenset({"openid", "fhirUser", "profile", "offline_access", "online_access"})


class ScopeSyntaxError(ValueError):
    """A scope string is not valid SMART grammar; the message names the scope."""


@dataclass(frozen=True)
class Scope:
    """One clinical-data scope, normalised to the v2 permission letters."""

    context: Context
    resource_type: str  # "*" means every resource type
    interactions: frozenset[Interaction]
    restrictions: tuple[tuple[str, str], ...] = ()  # v2 ``?param=value`` pairs; not enforced
    version: Literal[1, 2] = 2
    text: str = ""

    @property
    def restricted(self) -> bool:
        return bool(self.restrictions)

    def covers(self, resource_type: str, interaction: Interaction) -> bool:
        """True when this scope alone permits ``interaction`` on ``resource_type`` (unrestricted only)."""
        if self.restricted:
            return False
        return self.resource_type in ("*", resource_type) and interaction in self.interactions

    def to_v2(self) -> str:
        letters = "".join(i for i in INTERACTIONS if i in self.interactions)
        text = f"{self.context}/{self.resource_type}.{letters}"
        if self.restrictions:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.restrictions)
        return text


def parse_scope(text: str) -> Scope | None:
    """Parse one clinical-data scope; ``None`` for a recognised non-resource scope (``openid``, ``launch``).

    Raises :class:`ScopeSyntaxError` for anything else.
    """
    if text in NON_RESOURCE_SCOPES or text == "launch" or text.startswith("launch/"):
        return None
    match = _SCOPE.match(text)
    if match is None:
        raise ScopeSyntaxError(f"scope {text!r} is not a SMART scope")
    context: Context = match["context"]  # type: ignore[assignment]
    perm = match["perm"]
    query = match["query"]
    version: Literal[1, 2]
    if perm in _V1_PERMISSIONS:
        if query is not None:
            raise ScopeSyntaxError(f"scope {text!r}: v1 scopes take no query restrictions")
        interactions = _V1_PERMISSIONS[perm]
        version = 1
    elif perm and _V2_PERMISSION.match(perm):
        interactions = frozenset(perm)  # type: ignore[arg-type]
        version = 2
    else:
        raise ScopeSyntaxError(f"scope {text!r}: permissions must be a subset of 'cruds' in that order")
    restrictions: tuple[tuple[str, str], ...] = ()
    if query is not None:
        pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=False)
        if not pairs:
            raise ScopeSyntaxError(f"scope {text!r}: empty query restriction")
        restrictions = tuple(pairs)
    return Scope(context, match["type"], interactions, restrictions, version, text)


@dataclass(frozen=True)
class ScopeSet:
    """A parsed space-separated scope string (RFC 6749 §3.3)."""

    resource_scopes: tuple[Scope, ...]
    other: tuple[str, ...]  # recognised non-resource scopes, e.g. "openid"

    @property
    def contexts(self) -> frozenset[Context]:
        return frozenset(s.context for s in self.resource_scopes)

    @property
    def restricted(self) -> tuple[Scope, ...]:
        return tuple(s for s in self.resource_scopes if s.restricted)

    def allows(self, resource_type: str, interaction: Interaction) -> bool:
        return scope_allows(self.resource_scopes, resource_type, interaction)

    def to_string(self) -> str:
        return " ".join([s.text or s.to_v2() for s in self.resource_scopes] + list(self.other))


def parse_scopes(text: str | Iterable[str]) -> ScopeSet:
    """Parse a space-separated scope string (or already-split scopes); raises :class:`ScopeSyntaxError`."""
    items = text.split() if isinstance(text, str) else list(text)
    resource: list[Scope] = []
    other: list[str] = []
    for item in dict.fromkeys(items):  # de-duplicate, keep order
        scope = parse_scope(item)
        if scope is None:
            other.append(item)
        else:
            resource.append(scope)
    return ScopeSet(tuple(resource), tuple(other))


def scope_allows(scopes: Iterable[Scope], resource_type: str, interaction: Interaction) -> bool:
    """True when any unrestricted scope permits ``interaction`` on ``resource_type`` (any context).

    The context (system/user/patient) decides *whose* data is in reach, which the tenant and patient
    filters enforce; here only type and interaction are checked.
    """
    return any(scope.covers(resource_type, interaction) for scope in scopes)


def narrow(requested: ScopeSet, allowed: ScopeSet) -> ScopeSet:
    """The requested scopes a client may receive: each must be covered by its registered scopes.

    A requested scope is granted only if every interaction it names is covered, in the same context,
    by the registered scopes (so ``system/*.rs`` registered grants ``system/Claim.r`` but not
    ``system/Claim.c``). Uncovered scopes are dropped, as SMART allows the server to grant fewer.
    """
    granted: list[Scope] = []
    for scope in requested.resource_scopes:
        same_context = [a for a in allowed.resource_scopes if a.context == scope.context and not a.restricted]
        if scope.resource_type == "*":
            ok = all(
                any(a.resource_type == "*" and i in a.interactions for a in same_context)
                for i in scope.interactions
            )
        else:
            ok = all(any(a.covers(scope.resource_type, i) for a in same_context) for i in scope.interactions)
        if ok:
            granted.append(scope)
    other = tuple(o for o in requested.other if o in allowed.other)
    return ScopeSet(tuple(granted), other)


# FHIR RESTful interaction (http://hl7.org/fhir/restful-interaction) -> the SMART v2 permission letter
# it needs ("Scopes and Launch Context": c create; r read, vread, history-instance; u update, patch;
# d delete; s search and type/system history). Transaction/batch entries are checked one by one.
RESTFUL_INTERACTION_SCOPE: Final[dict[str, Interaction]] = {
    "create": "c",
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "search-type": "s",
    "search-system": "s",
    "history-type": "s",
    "history-system": "s",
}


def interaction_letter(restful_interaction: str) -> Interaction:
    """The permission letter a FHIR RESTful interaction needs; ``KeyError`` for an unknown name."""
    return RESTFUL_INTERACTION_SCOPE[restful_interaction]


@dataclass(frozen=True)
class OperationRequirement:
    """What a FHIR operation needs: one of ``any_of`` interactions on ``resource_type``."""

    resource_type: str
    any_of: frozenset[Interaction]


def _req(resource_type: str, *interactions: Interaction) -> OperationRequirement:
    return OperationRequirement(resource_type, frozenset(interactions))


# Operation name -> the scope it needs. Type-level operations use their own resource type; the PAS
# operations are from PAS 2.x (Claim/$submit creates, Claim/$inquire searches), DTR from DTR 2.0.1.
OPERATION_REQUIREMENTS: Final[dict[str, OperationRequirement]] = {
    "$submit": _req("Claim", "c"),
    "$inquire": _req("Claim", "s", "r"),
    "$questionnaire-package": _req("Questionnaire", "r"),
    "$next-question": _req("Questionnaire", "r"),
    "$populate": _req("Questionnaire", "r"),
    "$expand": _req("ValueSet", "r"),
    "$validate-code": _req("ValueSet", "r"),
    "$lookup": _req("CodeSystem", "r"),
    "$subscription-status": _req("Subscription", "r"),
    "$status": _req("Subscription", "r"),
    "$events": _req("Subscription", "r"),
    "$get-ws-binding-token": _req("Subscription", "r"),
    # HRex 1.0.0 Patient/$member-match: finds a member (a Patient search); it also records the Consent,
    # for which the route checks Consent create as well.
    "$member-match": _req("Patient", "s", "r"),
}


def operation_requirement(operation: str, resource_type: str | None = None) -> OperationRequirement:
    """The scope requirement of a FHIR operation (``$submit``...); unknown ones need read on their type.

    ``$validate`` and other generic operations invoked on a type need ``r`` on that type; an unknown
    system-level operation needs ``system/*.r`` style access (resource type ``*``).
    """
    name = operation if operation.startswith("$") else f"${operation}"
    known = OPERATION_REQUIREMENTS.get(name)
    if known is not None:
        return known
    return _req(resource_type or "*", "r")


def operation_allowed(scopes: Iterable[Scope], operation: str, resource_type: str | None = None) -> bool:
    """True when the scopes permit the operation (any of its interactions on its resource type)."""
    req = operation_requirement(operation, resource_type)
    scopes = tuple(scopes)
    return any(scope_allows(scopes, req.resource_type, i) for i in req.any_of)
