"""Prefetch templates, token substitution and hydration of missing prefetch.

CDS Hooks 2.0 §Prefetch tokens (``{{context.patientId}}``, ``{{userPractitionerId}}`` ...) and the
CDS Hooks 3.0 "simpler FHIRPath" tokens CRD 2.2 relies on (``{{context.draftOrders.entry.resource.
ofType(MedicationRequest).medication.resolve().id}}``, ``%key`` for earlier prefetch results, ``|``
unions, ``today() - 90 days``). CRD 1.x/2.0.1-era shorthand such as
``{{context.draftOrders.ServiceRequest.id}}`` is also understood. Missing keys are fetched from
``fhirServer`` with ``fhirAuthorization`` (CRD found-32: 412 only when prefetch is absent and the
query fails).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import httpx

from igs.outcome import Failure, OperationOutcomeError

log = logging.getLogger("priorgate.cds_hooks.prefetch")

_TOKEN = re.compile(r"\{\{\s*(.+?)\s*\}\}")
_TODAY = re.compile(r"^today\(\)\s*(?:([+-])\s*(\d+)\s*days?)?$")
_USER_TOKENS: Mapping[str, str] = MappingProxyType(
    {
        "userPractitionerId": "Practitioner",
        "userPractitionerRoleId": "PractitionerRole",
        "userPatientId": "Patient",
        "userRelatedPersonId": "RelatedPerson",
    }
)
FHIR_JSON = "application/fhir+json"


class TemplateUnsupported(ValueError):
    """A token uses FHIRPath beyond the simple subset; the key is then fetched by nobody."""


@dataclass(frozen=True)
class _Stub:
    """A resolved reference whose target is not at hand: only type and id are known."""

    resource_type: str
    id: str


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _parse_reference(ref: str) -> _Stub | None:
    parts = [p for p in ref.split("?")[0].split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return _Stub(parts[-2], parts[-1])
    return None


def _key_of(resource: Mapping[str, Any]) -> str | None:
    kind, rid = resource.get("resourceType"), resource.get("id")
    return f"{kind}/{rid}" if isinstance(kind, str) and isinstance(rid, str) else None


def walk_resources(value: object) -> Iterator[Mapping[str, Any]]:
    """Every FHIR resource in a value: the value itself, Bundle entries, nested lists."""
    if isinstance(value, list):
        for item in value:
            yield from walk_resources(item)
    elif isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        yield value
        entries = value.get("entry")
        if value["resourceType"] == "Bundle" and isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    yield from walk_resources(entry["resource"])


def index_resources(*values: object) -> dict[str, Mapping[str, Any]]:
    """Resources by "Type/id" (first seen wins), for resolve()."""
    out: dict[str, Mapping[str, Any]] = {}
    for value in values:
        for resource in walk_resources(value):
            key = _key_of(resource)
            if key and key not in out:
                out[key] = resource
    return out


class _Evaluator:
    def __init__(self, context: Mapping[str, Any], prefetch: Mapping[str, Any], today: date) -> None:
        self.context = context
        self.prefetch = prefetch
        self.today = today
        self.known = index_resources(list(context.values()), list(prefetch.values()))

    def tokens(self, expression: str) -> list[str]:
        out: list[str] = []
        for path in _split_top(expression, "|"):
            for value in self._path(path):
                text = self._primitive(value)
                if text is not None and text not in out:
                    out.append(text)
        return out

    def _primitive(self, value: object) -> str | None:
        if isinstance(value, _Stub):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, Decimal, float)):
            return str(value)
        if isinstance(value, date):
            return value.isoformat()
        return None

    def _path(self, path: str) -> list[object]:
        today = _TODAY.match(path)
        if today:
            delta = timedelta(days=int(today.group(2) or 0))
            return [self.today - delta if today.group(1) == "-" else self.today + delta]
        segments = _split_top(path, ".")
        head = segments[0]
        nodes: list[object]
        if head in _USER_TOKENS:
            stub = _parse_reference(str(self.context.get("userId") or ""))
            return [stub.id] if stub and stub.resource_type == _USER_TOKENS[head] else []
        if head == "context":
            nodes = [self.context]
        elif head.startswith("%"):
            value = self.prefetch.get(head[1:])
            nodes = [] if value is None else [value]
        else:
            raise TemplateUnsupported(f"unsupported prefetch token root {head!r}")
        for segment in segments[1:]:
            nodes = self._step(nodes, segment)
        return nodes

    def _step(self, nodes: list[object], segment: str) -> list[object]:
        call = re.fullmatch(r"(\w+)\((.*)\)", segment)
        name, arg = (call.group(1), call.group(2).strip().strip("'\"")) if call else (segment, "")
        out: list[object] = []
        if name == "resolve":
            return [r for node in nodes if (r := self._resolve(node)) is not None]
        if call and name == "ofType":
            return [n for n in nodes if self._type_of(n) == arg]
        if call and name == "extension":
            for node in nodes:
                if isinstance(node, dict):
                    out += [
                        e for e in node.get("extension") or () if isinstance(e, dict) and e.get("url") == arg
                    ]
            return out
        if call:
            raise TemplateUnsupported(f"unsupported FHIRPath function {name}()")
        for node in nodes:
            if isinstance(node, _Stub):
                if name == "id":
                    out.append(node.id)
                continue
            if not isinstance(node, dict):
                continue
            if node.get("resourceType") == "Bundle" and name[:1].isupper():
                # CRD 1.x / 2.0.1 shorthand: {{context.draftOrders.ServiceRequest.id}}
                out += [r for r in walk_resources(node) if r.get("resourceType") == name]
                continue
            value = node.get(name)
            if value is None:  # choice types: value -> valueReference, medication -> medicationReference
                value = [
                    v
                    for k, v in node.items()
                    if k.startswith(name) and k[len(name) : len(name) + 1].isupper()
                ]
            out += value if isinstance(value, list) else [value]
        return out

    @staticmethod
    def _type_of(node: object) -> str | None:
        if isinstance(node, _Stub):
            return node.resource_type
        if isinstance(node, dict):
            kind = node.get("resourceType")
            return kind if isinstance(kind, str) else None
        return None

    def _resolve(self, node: object) -> object | None:
        if isinstance(node, (dict, _Stub)) and self._type_of(node):
            return node
        ref = node.get("reference") if isinstance(node, dict) else node
        if not isinstance(ref, str) or ref.startswith("#"):
            return None
        stub = _parse_reference(ref)
        if stub is None:
            return None
        return self.known.get(f"{stub.resource_type}/{stub.id}", stub)


def render_template(
    template: str, context: Mapping[str, Any], prefetch: Mapping[str, Any], today: date
) -> str | None:
    """Substitute every token; None when a token yields nothing (no query needed for this key)."""
    evaluator = _Evaluator(context, prefetch, today)
    empty = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal empty
        values = evaluator.tokens(match.group(1))
        if not values:
            empty = True
            return ""
        return ",".join(values)

    rendered = _TOKEN.sub(substitute, template)
    return None if empty else rendered


def _depends_on(template: str) -> set[str]:
    return set(re.findall(r"%(\w+)", template))


def usable(value: object) -> bool:
    """A prefetch value the service can use (CDS Hooks: null = no data; OperationOutcome = failed)."""
    return isinstance(value, dict) and value.get("resourceType") not in (None, "OperationOutcome")


@dataclass(frozen=True)
class FhirSource:
    """Where to fetch what the client did not prefetch."""

    base_url: str
    access_token: str | None


class PrefetchHydrator:
    """Fills missing prefetch keys by running the service's templates against the client's FHIR server."""

    def __init__(self, client: httpx.AsyncClient, *, timeout: float = 2.0, max_pages: int = 5) -> None:
        self._client = client
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 1.0))
        self._max_pages = max_pages

    async def fetch(self, source: FhirSource, query: str) -> Mapping[str, Any]:
        """GET one read or search; follows Bundle next links (bounded). Raises httpx / ValueError errors."""
        headers = {"Accept": FHIR_JSON}
        if source.access_token:
            headers["Authorization"] = f"Bearer {source.access_token}"
        url = f"{source.base_url.rstrip('/')}/{query.lstrip('/')}"
        first: dict[str, Any] | None = None
        for _ in range(self._max_pages):
            response = await self._client.get(url, headers=headers, timeout=self._timeout)
            response.raise_for_status()
            page = json.loads(response.content, parse_float=Decimal)
            if not isinstance(page, dict) or not isinstance(page.get("resourceType"), str):
                raise ValueError(f"{url} did not return a FHIR resource")
            if page["resourceType"] == "OperationOutcome":
                raise ValueError(f"{url} returned an OperationOutcome")
            if first is None:
                first = page
            else:
                first.setdefault("entry", []).extend(page.get("entry") or [])
            following = [
                link.get("url")
                for link in page.get("link") or ()
                if isinstance(link, dict) and link.get("relation") == "next"
            ]
            if page["resourceType"] != "Bundle" or not following or not isinstance(following[0], str):
                break
            url = following[0]
        assert first is not None
        return first

    async def hydrate(
        self,
        templates: Mapping[str, str],
        context: Mapping[str, Any],
        prefetch: Mapping[str, Any] | None,
        source: FhirSource | None,
        today: date,
        *,
        required: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Prefetch completed from the FHIR server; 412 when a required key is neither given nor fetched."""
        given = dict(prefetch or {})
        result: dict[str, Any] = {k: v for k, v in given.items() if usable(v)}
        # Keys the client sent as null hold no data: nothing to fetch (CDS Hooks §Prefetch).
        pending = [k for k in templates if k not in result and not (k in given and given[k] is None)]
        failed: dict[str, str] = {}
        while pending:
            ready = [k for k in pending if not (_depends_on(templates[k]) & set(pending))]
            if not ready:  # a cycle: the remaining templates cannot be ordered
                ready = pending[:]
            pending = [k for k in pending if k not in ready]
            queries: dict[str, str] = {}
            for key in ready:
                try:
                    rendered = render_template(templates[key], context, result, today)
                except TemplateUnsupported as exc:
                    failed[key] = str(exc)
                    continue
                if rendered is not None:
                    queries[key] = rendered
            if not queries:
                continue
            if source is None:
                failed.update({k: "no fhirServer to query" for k in queries})
                continue
            outcomes = await asyncio.gather(
                *(self.fetch(source, q) for q in queries.values()), return_exceptions=True
            )
            for key, outcome in zip(queries, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    log.warning("prefetch %s could not be fetched: %s", key, outcome)
                    failed[key] = str(outcome) or type(outcome).__name__
                else:
                    result[key] = outcome
        missing = [k for k in required if k not in result and k in failed]
        if missing:
            raise OperationOutcomeError.of(
                Failure.PRECONDITION_FAILED,
                "Prefetch absent and the FHIR server query failed for: "
                + "; ".join(f"{k} ({failed[k]})" for k in missing),
                code="incomplete",
            )
        return result
