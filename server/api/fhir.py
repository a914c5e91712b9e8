"""The FHIR R4 RESTful API under ``/fhir`` (https://hl7.org/fhir/R4/http.html).

Thin routes: negotiate the format, read the (size-limited) body, call one repository or use-case function
in the thread pool, render. Errors are ``OperationOutcomeError``s rendered by ``server/errors.py``.
"""

from __future__ import annotations

import uuid
from email.utils import parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from igs.outcome import Failure, Issue, OperationOutcomeError, invalid, operation_outcome
from server.capabilities import SYSTEM_INTERACTIONS
from server.fhir_json import FhirResponse, parse_resource, require_json_answer, require_json_body
from server.rendering import history, location, searchset, version_headers
from server.resource_types import RESOURCE_TYPES
from server.search.query import SHAPING_SUMMARIES, Shape
from server.security.fhir_requests import bundle_requirements
from server.security.limits import InputLimits, check_json
from server.security.patient_compartment import generic_route_allows
from server.security.principal import insufficient_scope
from server.services import Services, principal_of, scoped_services, services
from server.settings import Settings
from server.storage.repository import StoredResource, WriteResult, check_type
from server.transaction import BundleOptions, run_bundle


def negotiate(request: Request) -> None:
    """Answer only in FHIR JSON; XML is refused with 406 (``_format`` beats ``Accept``)."""
    require_json_answer(request.headers.get("accept"), request.query_params.get("_format"))


def patient_context(request: Request) -> None:
    """A patient-context token reaches only its own Patient through these generic routes."""
    generic_route_allows(principal_of(request), request.path_params.get("resource_type"))


router = APIRouter(prefix="/fhir", dependencies=[Depends(negotiate), Depends(patient_context)])
Svc = Annotated[Services, Depends(scoped_services)]  # the repository as the caller sees it (its tenants)


def register(svc: Services) -> None:
    """Advertise what this router serves: every resource type with its interactions and search params."""
    for resource_type in RESOURCE_TYPES:
        svc.capabilities.add_resource(resource_type)
        svc.capabilities.add_search_params(resource_type, svc.repository.registry)
    for code in SYSTEM_INTERACTIONS:
        svc.capabilities.add_system_interaction(code)


def pretty(request: Request) -> bool:
    """``_pretty=true`` (https://hl7.org/fhir/R4/http.html#parameters)."""
    return request.query_params.get("_pretty") == "true"


def _prefer(request: Request) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for item in request.headers.get("prefer", "").split(","):
        key, _, value = item.strip().partition("=")
        if key:
            prefs[key.strip().lower()] = value.strip().strip('"').lower()
    return prefs


def _strict(request: Request) -> bool:
    return _prefer(request).get("handling") == "strict"


async def read_resource(request: Request, expected_type: str | None = None) -> dict[str, Any]:
    """The request body as a FHIR JSON resource (415 for other media types, 400 when malformed, 413
    beyond the nesting, string length and Bundle entry limits)."""
    require_json_body(request.headers.get("content-type"))
    value = parse_resource(await request.body(), expected_type)
    check_json(value, input_limits(services(request).settings))
    return value


def input_limits(settings: Settings) -> InputLimits:
    """JSON body limits: PRIORGATE_MAX_JSON_DEPTH, _MAX_STRING_LENGTH and _MAX_BUNDLE_ENTRIES."""
    return InputLimits(
        max_body_bytes=settings.max_body_bytes,
        max_depth=settings.max_json_depth,
        max_string_length=settings.max_string_length,
        max_bundle_entries=settings.max_bundle_entries,
    )


def _search_pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _written(request: Request, svc: Services, result: WriteResult) -> Response:
    stored = result.stored
    headers = version_headers(stored)
    headers["Location"] = location(svc.fhir_base(request), stored)
    status = 201 if result.created else 200
    preference = _prefer(request).get("return", "representation")
    if preference == "minimal":
        return Response(status_code=status, headers=headers)
    if preference == "operationoutcome":
        note = Issue(severity="information", code="informational", diagnostics=f"{stored.reference} stored")
        return FhirResponse(operation_outcome([note]), status_code=status, headers=headers)
    return FhirResponse(raw=stored.raw, status_code=status, headers=headers, pretty=pretty(request))


def _stored(request: Request, stored: StoredResource) -> Response:
    params = request.query_params
    summary = params.get("_summary")
    elements = tuple(e.strip() for e in params.get("_elements", "").split(",") if e.strip())
    shape = Shape(elements, summary if summary in SHAPING_SUMMARIES else None)
    if shape.trims:
        return FhirResponse(
            shape.apply(stored.resource()), headers=version_headers(stored), pretty=pretty(request)
        )
    return FhirResponse(raw=stored.raw, headers=version_headers(stored), pretty=pretty(request))


@router.get("/metadata")
async def metadata(request: Request, svc: Annotated[Services, Depends(services)]) -> Response:
    """capabilities (https://hl7.org/fhir/R4/http.html#capabilities)."""
    statement = svc.capabilities.to_fhir(svc.fhir_base(request), svc.now())
    return FhirResponse(statement, pretty=pretty(request))


@router.post("")
async def transaction_or_batch(request: Request, svc: Svc) -> Response:
    """transaction / batch (https://hl7.org/fhir/R4/http.html#transaction)."""
    bundle = await read_resource(request, "Bundle")
    principal = principal_of(request)
    if principal is not None:  # the guard authenticated the call; each entry needs its own scope
        for requirement in bundle_requirements(bundle):
            if not requirement.allowed_by(principal.scopes):
                raise insufficient_scope(requirement.describe())
    options = BundleOptions(
        base=svc.fhir_base(request),
        strict=_strict(request),
        default_count=svc.settings.default_page_size,
        max_count=svc.settings.max_page_size,
    )
    answer = await run_in_threadpool(run_bundle, svc.repository, bundle, options)
    return FhirResponse(answer, pretty=pretty(request))


async def _search(request: Request, svc: Svc, resource_type: str, pairs: list[tuple[str, str]]) -> Response:
    check_type(resource_type)
    query = svc.repository.parse_search(
        resource_type,
        pairs,
        strict=_strict(request),
        default_count=svc.settings.default_page_size,
        max_count=svc.settings.max_page_size,
    )
    page = await run_in_threadpool(svc.repository.search, query)
    as_pretty = pretty(request)
    return FhirResponse(searchset(page, svc.fhir_base(request), pretty=as_pretty), pretty=as_pretty)


async def _changes(request: Request, svc: Services, resource_type: str | None) -> Response:
    params = request.query_params
    settings = svc.settings
    try:
        count = min(int(params.get("_count", settings.default_page_size)), settings.max_page_size)
        offset = int(params.get("_offset", 0))
    except ValueError:
        raise invalid("_count and _offset must be integers") from None
    if count < 1 or offset < 0:
        raise invalid("_count must be at least 1 and _offset at least 0")
    since = params.get("_since")
    versions, more = await run_in_threadpool(
        svc.repository.changes, resource_type, since=since, count=count, offset=offset
    )
    base = svc.fhir_base(request)
    path = f"{base}/{resource_type}/_history" if resource_type else f"{base}/_history"
    kept = [("_since", since)] if since else []
    links = [
        {
            "relation": "self",
            "url": f"{path}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(offset))])}",
        }
    ]
    if more:
        following = urlencode([*kept, ("_count", str(count)), ("_offset", str(offset + count))])
        links.append({"relation": "next", "url": f"{path}?{following}"})
    as_pretty = pretty(request)
    return FhirResponse(history(versions, base, pretty=as_pretty, links=links), pretty=as_pretty)


@router.get("/_history")
async def system_history(request: Request, svc: Svc) -> Response:
    """history-system (https://hl7.org/fhir/R4/http.html#history)."""
    return await _changes(request, svc, None)


@router.get("/{resource_type}/_history")
async def type_history(resource_type: str, request: Request, svc: Svc) -> Response:
    """history-type (https://hl7.org/fhir/R4/http.html#history)."""
    return await _changes(request, svc, resource_type)


@router.get("/{resource_type}")
async def search(resource_type: str, request: Request, svc: Svc) -> Response:
    """search-type (https://hl7.org/fhir/R4/http.html#search)."""
    return await _search(request, svc, resource_type, _search_pairs(request))


@router.post("/{resource_type}/_search")
async def search_post(resource_type: str, request: Request, svc: Svc) -> Response:
    """search via POST with a form body (https://hl7.org/fhir/R4/http.html#search)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind and kind != "application/x-www-form-urlencoded":
        raise OperationOutcomeError.of(
            Failure.UNSUPPORTED_MEDIA_TYPE, "POST _search needs an application/x-www-form-urlencoded body"
        )
    body = (await request.body()).decode("utf-8", errors="replace")
    pairs = _search_pairs(request) + parse_qsl(body, keep_blank_values=True)
    return await _search(request, svc, resource_type, pairs)


@router.post("/{resource_type}")
async def create(resource_type: str, request: Request, svc: Svc) -> Response:
    """create and conditional create (https://hl7.org/fhir/R4/http.html#create)."""
    check_type(resource_type)
    body = await read_resource(request, resource_type)
    if_none_exist = request.headers.get("if-none-exist")
    result = await run_in_threadpool(svc.repository.create, resource_type, body, if_none_exist=if_none_exist)
    return _written(request, svc, result)


@router.put("/{resource_type}")
async def conditional_update(resource_type: str, request: Request, svc: Svc) -> Response:
    """conditional update (https://hl7.org/fhir/R4/http.html#cond-update)."""
    check_type(resource_type)
    body = await read_resource(request, resource_type)
    query = request.url.query
    if not query:
        raise invalid("PUT to a type needs search criteria (conditional update) or an id in the URL")

    def run() -> WriteResult:
        with svc.repository.writing() as tx:
            match = tx.match_one(resource_type, query, "conditional update")
            target = match.id if match else str(body.get("id") or uuid.uuid4())
            if match is not None and body.get("id") not in (None, match.id):
                raise invalid(
                    f"The body's id does not match the resource the criteria found ({match.id})", "id"
                )
            return tx.update(
                resource_type, target, {**body, "id": target}, if_match=request.headers.get("if-match")
            )

    return _written(request, svc, await run_in_threadpool(run))


@router.delete("/{resource_type}")
async def conditional_delete(resource_type: str, request: Request, svc: Svc) -> Response:
    """conditional delete of a single match (https://hl7.org/fhir/R4/http.html#3.1.0.7.1)."""
    check_type(resource_type)
    query = request.url.query
    if not query:
        raise invalid("DELETE on a type needs search criteria (conditional delete)")

    def run() -> None:
        with svc.repository.writing() as tx:
            match = tx.match_one(resource_type, query, "conditional delete")
            if match is not None:
                tx.delete(resource_type, match.id)

    await run_in_threadpool(run)
    return Response(status_code=204)


@router.get("/{resource_type}/{resource_id}")
async def read(resource_type: str, resource_id: str, request: Request, svc: Svc) -> Response:
    """read (https://hl7.org/fhir/R4/http.html#read)."""
    if resource_id.startswith("$"):
        raise OperationOutcomeError.of(
            Failure.NOT_FOUND,
            f"Operation {resource_id} is not supported on {resource_type}",
            code="not-supported",
        )
    stored = await run_in_threadpool(svc.repository.read, resource_type, resource_id)
    if _not_modified(request, stored):
        return Response(status_code=304, headers=version_headers(stored))
    return _stored(request, stored)


def _not_modified(request: Request, stored: StoredResource) -> bool:
    """Conditional read (https://hl7.org/fhir/R4/http.html#cread): If-None-Match, If-Modified-Since."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return f'"{stored.version_id}"' in wanted or "*" in wanted
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return stored.last_updated_at.replace(microsecond=0) <= since
    return False


@router.put("/{resource_type}/{resource_id}")
async def update(resource_type: str, resource_id: str, request: Request, svc: Svc) -> Response:
    """update, with If-Match concurrency (https://hl7.org/fhir/R4/http.html#update)."""
    check_type(resource_type)
    body = await read_resource(request, resource_type)
    result = await run_in_threadpool(
        svc.repository.update, resource_type, resource_id, body, if_match=request.headers.get("if-match")
    )
    return _written(request, svc, result)


@router.delete("/{resource_type}/{resource_id}")
async def delete(resource_type: str, resource_id: str, request: Request, svc: Svc) -> Response:
    """delete (https://hl7.org/fhir/R4/http.html#delete): 204, also when already deleted."""
    if_match = request.headers.get("if-match")
    stored = await run_in_threadpool(svc.repository.delete, resource_type, resource_id, if_match=if_match)
    headers = {"ETag": stored.etag} if stored is not None else None
    return Response(status_code=204, headers=headers)


@router.get("/{resource_type}/{resource_id}/_history")
async def instance_history(resource_type: str, resource_id: str, request: Request, svc: Svc) -> Response:
    """history-instance (https://hl7.org/fhir/R4/http.html#history)."""
    versions = await run_in_threadpool(svc.repository.history, resource_type, resource_id)
    as_pretty = pretty(request)
    return FhirResponse(history(versions, svc.fhir_base(request), pretty=as_pretty), pretty=as_pretty)


@router.get("/{resource_type}/{resource_id}/_history/{version_id}")
async def vread(
    resource_type: str, resource_id: str, version_id: str, request: Request, svc: Svc
) -> Response:
    """vread (https://hl7.org/fhir/R4/http.html#vread)."""
    stored = await run_in_threadpool(svc.repository.vread, resource_type, resource_id, version_id)
    return _stored(request, stored)
