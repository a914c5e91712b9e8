"""Transaction and batch Bundles (https://hl7.org/fhir/R4/http.html#transaction).

A transaction runs every entry in one database transaction, in the spec's order (DELETE, POST, PUT, GET),
with ``urn:uuid`` fullUrls rewritten to the ids the server assigns; any failing entry rolls back all of
them. A batch runs each entry on its own and reports each entry's outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from igs.outcome import Failure, Issue, OperationOutcomeError, invalid
from server.errors import status_of
from server.rendering import embed, history, searchset
from server.storage.repository import Repository, StoredResource, Transaction, instant

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3, "HEAD": 3}


@dataclass(frozen=True)
class Entry:
    """One parsed Bundle.entry: what to do, to which URL, with which body."""

    index: int
    method: str
    url: str
    full_url: str | None
    resource: dict[str, Any] | None
    if_none_exist: str | None
    if_match: str | None

    @property
    def path(self) -> list[str]:
        return [part for part in self.url.split("?", 1)[0].strip("/").split("/") if part]

    @property
    def query(self) -> str | None:
        return self.url.split("?", 1)[1] if "?" in self.url else None


@dataclass(frozen=True)
class BundleOptions:
    base: str
    strict: bool
    default_count: int
    max_count: int


def _parse_entries(bundle: dict[str, Any]) -> list[Entry]:
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise invalid("Bundle.entry must be an array", "Bundle.entry")
    entries = []
    for index, raw in enumerate(raw_entries):
        where = f"Bundle.entry[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
            raise invalid(f"{where} has no request", f"{where}.request")
        request = raw["request"]
        method = request.get("method")
        url = request.get("url")
        if not isinstance(method, str) or method not in _ORDER or method == "PATCH":
            raise invalid(f"{where}.request.method {method!r} is not supported", f"{where}.request.method")
        if not isinstance(url, str) or not url:
            raise invalid(f"{where}.request.url is missing", f"{where}.request.url")
        resource = raw.get("resource")
        if method in ("POST", "PUT"):
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise invalid(f"{where} ({method}) needs a resource", f"{where}.resource")
        full_url = raw.get("fullUrl")
        entries.append(
            Entry(
                index=index,
                method=method,
                url=url,
                full_url=full_url if isinstance(full_url, str) else None,
                resource=resource if isinstance(resource, dict) else None,
                if_none_exist=request.get("ifNoneExist"),
                if_match=request.get("ifMatch"),
            )
        )
    return entries


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item in ids:
                out[key] = ids[item]
            else:
                out[key] = _rewrite(item, ids)
        return out
    if isinstance(value, list):
        return [_rewrite(item, ids) for item in value]
    return value


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _written(stored: StoredResource, code: int) -> dict[str, Any]:
    return {
        "resource": embed(stored, False),
        "response": {
            "status": _status(code),
            "location": f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}",
            "etag": stored.etag,
            "lastModified": instant(stored.last_updated),
        },
    }


def _execute(
    tx: Transaction, entry: Entry, repo: Repository, options: BundleOptions, assigned: dict[int, str]
) -> dict[str, Any]:
    path = entry.path
    if not path:
        raise invalid(f"request.url {entry.url!r} names no resource type")
    resource_type = path[0]
    if entry.method == "POST":
        assert entry.resource is not None
        _check_body_type(entry.resource, resource_type)
        result = tx.create(
            resource_type,
            entry.resource,
            resource_id=assigned.get(entry.index),
            if_none_exist=entry.if_none_exist,
        )
        return _written(result.stored, 201 if result.created else 200)
    if entry.method == "PUT":
        assert entry.resource is not None
        _check_body_type(entry.resource, resource_type)
        if len(path) == 1 and entry.query:
            match = tx.match_one(resource_type, entry.query, "conditional update")
            target = match.id if match else str(uuid.uuid4())
            body = {**entry.resource, "id": target}
            result = tx.update(resource_type, target, body, if_match=entry.if_match)
        elif len(path) == 2:
            result = tx.update(resource_type, path[1], entry.resource, if_match=entry.if_match)
        else:
            raise invalid(f"PUT {entry.url!r} must name Type/id")
        return _written(result.stored, 201 if result.created else 200)
    if entry.method == "DELETE":
        if len(path) == 1 and entry.query:
            match = tx.match_one(resource_type, entry.query, "conditional delete")
            if match is not None:
                tx.delete(resource_type, match.id)
        elif len(path) == 2:
            tx.delete(resource_type, path[1], if_match=entry.if_match)
        else:
            raise invalid(f"DELETE {entry.url!r} must name Type/id")
        return {"response": {"status": _status(204)}}
    # GET / HEAD
    if len(path) == 1:
        pairs = parse_qsl(entry.query or "", keep_blank_values=True)
        query = repo.parse_search(
            resource_type,
            pairs,
            strict=options.strict,
            default_count=options.default_count,
            max_count=options.max_count,
        )
        return {"resource": searchset(tx.search(query), options.base), "response": {"status": _status(200)}}
    if len(path) == 2:
        stored = tx.read(resource_type, path[1])
    elif len(path) == 3 and path[2] == "_history":
        return {
            "resource": history(tx.history(resource_type, path[1]), options.base),
            "response": {"status": _status(200)},
        }
    elif len(path) == 4 and path[2] == "_history":
        stored = tx.vread(resource_type, path[1], path[3])
    else:
        raise invalid(f"GET {entry.url!r} is not a supported request")
    return {
        "resource": embed(stored, False),
        "response": {
            "status": _status(200),
            "etag": stored.etag,
            "lastModified": instant(stored.last_updated),
        },
    }


def _check_body_type(resource: dict[str, Any], resource_type: str) -> None:
    if resource.get("resourceType") != resource_type:
        raise invalid(
            f"The resource is a {resource.get('resourceType')} but request.url names {resource_type}"
        )


def _located(error: OperationOutcomeError, entry: Entry) -> OperationOutcomeError:
    where = f"Bundle.entry[{entry.index}]"
    issues = tuple(
        Issue(
            diagnostics=f"{where} ({entry.method} {entry.url}): {issue.diagnostics}",
            code=issue.code,
            severity=issue.severity,
            expression=issue.expression or (where,),
            details=issue.details,
        )
        for issue in error.issues
    )
    return OperationOutcomeError(error.failure, issues)


def run_transaction(repo: Repository, bundle: dict[str, Any], options: BundleOptions) -> dict[str, Any]:
    """All-or-nothing: returns a ``transaction-response`` or raises for the first failing entry."""
    entries = _parse_entries(bundle)
    responses: dict[int, dict[str, Any]] = {}
    with repo.writing() as tx:
        ids: dict[str, str] = {}
        assigned: dict[int, str] = {}
        for entry in entries:
            if entry.method == "POST" and entry.full_url and entry.resource is not None:
                resource_type = entry.path[0] if entry.path else ""
                existing = None
                if entry.if_none_exist:
                    try:
                        existing = tx.match_one(resource_type, entry.if_none_exist, "ifNoneExist")
                    except OperationOutcomeError as error:
                        raise _located(error, entry) from None
                new_id = existing.id if existing else str(uuid.uuid4())
                assigned[entry.index] = new_id
                ids[entry.full_url] = f"{resource_type}/{new_id}"
            elif entry.method == "PUT" and entry.full_url and len(entry.path) == 2:
                ids[entry.full_url] = "/".join(entry.path)
        for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
            if entry.resource is not None and ids:
                entry = Entry(
                    entry.index,
                    entry.method,
                    entry.url,
                    entry.full_url,
                    _rewrite(entry.resource, ids),
                    entry.if_none_exist,
                    entry.if_match,
                )
            try:
                responses[entry.index] = _execute(tx, entry, repo, options, assigned)
            except OperationOutcomeError as error:
                raise _located(error, entry) from None
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [responses[entry.index] for entry in entries],
    }


def run_batch(repo: Repository, bundle: dict[str, Any], options: BundleOptions) -> dict[str, Any]:
    """Each entry on its own; failures become that entry's OperationOutcome (``batch-response``)."""
    entries = _parse_entries(bundle)
    out: list[dict[str, Any]] = []
    for entry in entries:
        try:
            with repo.writing() as tx:
                out.append(_execute(tx, entry, repo, options, {}))
        except OperationOutcomeError as error:
            out.append(
                {"response": {"status": _status(status_of(error.failure)), "outcome": error.to_fhir()}}
            )
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}


BundleRunner = Callable[[Repository, dict[str, Any], BundleOptions], dict[str, Any]]
RUNNERS: dict[str, BundleRunner] = {"transaction": run_transaction, "batch": run_batch}


def run_bundle(repo: Repository, bundle: dict[str, Any], options: BundleOptions) -> dict[str, Any]:
    """Dispatch on ``Bundle.type``: transaction or batch; anything else is a 400."""
    if bundle.get("resourceType") != "Bundle":
        raise invalid("POST to the base URL needs a Bundle", "resourceType")
    runner = RUNNERS.get(str(bundle.get("type")))
    if runner is None:
        raise OperationOutcomeError.of(
            Failure.INVALID,
            f"Bundle.type {bundle.get('type')!r} cannot be processed: use transaction or batch",
        )
    return runner(repo, bundle, options)
