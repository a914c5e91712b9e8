"""PAS Subscriptions (Subscriptions R5 Backport 1.1.0 on R4, PAS spec-54..62): create, read, update,
delete and list, ``$status`` and ``$events``. Thin routes over :class:`server.pas.subscription_store`.

Served per PAS version under ``/pas/{version}/Subscription`` and, as 2.2.1, under ``/fhir/Subscription``
(the same endpoints as ``Claim/$submit``): a subscription hears about results of its own version.
Delivery is the background worker in :mod:`server.pas.delivery`.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from igs.outcome import Failure, OperationOutcomeError, invalid, not_found
from server.api.fhir import negotiate, pretty, read_resource
from server.api.pas import FHIR_DEFAULT_VERSION, pas_version
from server.fhir_json import FhirResponse
from server.pas import PasVersion
from server.pas.subscription import accept_subscription
from server.pas.subscription_store import SubscriptionRecord, SubscriptionStore
from server.security.access import ORGANIZATION_HEADER, PrincipalAccess
from server.services import Services, caller, principal_of, services
from server.storage.repository import check_id

PAS_SUBSCRIPTION_PROFILE = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-subscription"
BACKPORT_STATUS = (
    "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"
)
BACKPORT_EVENTS = (
    "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events"
)


def scoped_subscriptions(request: Request) -> Services:
    """The app's services with the Subscription store of the caller's organization (its tenant): a client
    sees, changes and hears about only its own Subscriptions (PAS spec-59); another's answers 404.
    Without authentication (``PRIORGATE_AUTH_MODE=off``) everything is in the default tenant."""
    found = services(request)
    principal = principal_of(request)
    if found.subscriptions is None or principal is None:
        return found
    access = PrincipalAccess(principal, request.headers.get(ORGANIZATION_HEADER))
    return replace(found, subscriptions=found.subscriptions.for_tenant(access.tenant_for_new("Subscription")))


router = APIRouter(dependencies=[Depends(negotiate), Depends(caller)])
Svc = Annotated[Services, Depends(scoped_subscriptions)]


def register(svc: Services) -> None:
    svc.capabilities.add_resource("Subscription", ("create", "read", "update", "delete", "search-type"))
    svc.capabilities.add_profile("Subscription", PAS_SUBSCRIPTION_PROFILE)
    svc.capabilities.add_operation("Subscription", "status", BACKPORT_STATUS)
    svc.capabilities.add_operation("Subscription", "events", BACKPORT_EVENTS)


def _store(svc: Services) -> SubscriptionStore:
    if svc.subscriptions is None:
        raise OperationOutcomeError.of(Failure.NOT_FOUND, "Subscriptions are not served")
    return svc.subscriptions


def _origin(request: Request, svc: Services) -> str:
    return (svc.settings.base_url or str(request.base_url)).rstrip("/")


def _prefix(version: PasVersion | None) -> str:
    return "/fhir" if version is None else f"/pas/{version.value}"


def _answer(request: Request, record: SubscriptionRecord, status_code: int = 200) -> Response:
    return FhirResponse(
        record.to_fhir(),
        status_code=status_code,
        pretty=pretty(request),
        headers={
            "ETag": f'W/"{record.version_id}"',
            "Location": f"{record.url}/_history/{record.version_id}",
        },
    )


async def _put(
    request: Request, svc: Svc, version: PasVersion, prefix: str, subscription_id: str | None
) -> Response:
    if subscription_id is not None:
        check_id(subscription_id)
    body = await read_resource(request, "Subscription")
    if subscription_id is not None and body.get("id") not in (None, subscription_id):
        raise invalid(
            f"The Subscription id {body.get('id')!r} does not match the URL id {subscription_id!r}",
            "Subscription.id",
        )
    accepted = accept_subscription(body, version)
    chosen = subscription_id or str(uuid.uuid4())
    origin = _origin(request, svc)
    record, created = await run_in_threadpool(
        _store(svc).put,
        version,
        chosen,
        accepted,
        url=f"{origin}{prefix}/Subscription/{chosen}",
        fhir_base=f"{origin}/fhir",
        now=svc.now(),
    )
    if svc.delivery is not None:
        svc.delivery.wake()  # the handshake goes out now, not at the next poll
    return _answer(request, record, 201 if created else 200)


async def _read(svc: Services, version: PasVersion, subscription_id: str) -> SubscriptionRecord:
    record = await run_in_threadpool(_store(svc).get, subscription_id, version)
    if record is None:
        raise not_found(f"No Subscription {subscription_id!r} for PAS {version.value}")
    return record


async def _search(request: Request, svc: Services, version: PasVersion, prefix: str) -> Response:
    records = await run_in_threadpool(_store(svc).of_version, version)
    origin = _origin(request, svc)
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "total": len(records),
        "link": [{"relation": "self", "url": f"{origin}{prefix}/Subscription"}],
        "entry": [{"fullUrl": r.url, "resource": r.to_fhir(), "search": {"mode": "match"}} for r in records],
    }
    return FhirResponse(bundle, pretty=pretty(request))


async def _delete(svc: Services, version: PasVersion, subscription_id: str) -> Response:
    if not await run_in_threadpool(_store(svc).delete, subscription_id, version):
        raise not_found(f"No Subscription {subscription_id!r} for PAS {version.value}")
    return Response(status_code=204)


async def _status(request: Request, svc: Services, version: PasVersion, subscription_id: str) -> Response:
    record = await _read(svc, version, subscription_id)
    bundle = _store(svc).status_bundle(record, bundle_id=str(uuid.uuid4()), now=svc.now())
    return FhirResponse(bundle, pretty=pretty(request))


def _event_number(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer event number", name) from None


async def _events(request: Request, svc: Services, version: PasVersion, subscription_id: str) -> Response:
    record = await _read(svc, version, subscription_id)
    since = _event_number(request, "eventsSinceNumber")
    until = _event_number(request, "eventsUntilNumber")
    bundle = await run_in_threadpool(
        lambda: _store(svc).events_bundle(
            record, since=since, until=until, bundle_id=str(uuid.uuid4()), now=svc.now()
        )
    )
    return FhirResponse(bundle, pretty=pretty(request))


# -- per PAS version ------------------------------------------------------------------------------------


@router.post("/pas/{version}/Subscription")
async def create(version: str, request: Request, svc: Svc) -> Response:
    v = pas_version(version)
    return await _put(request, svc, v, _prefix(v), None)


@router.get("/pas/{version}/Subscription")
async def search(version: str, request: Request, svc: Svc) -> Response:
    v = pas_version(version)
    return await _search(request, svc, v, _prefix(v))


@router.get("/pas/{version}/Subscription/{subscription_id}")
async def read(version: str, subscription_id: str, request: Request, svc: Svc) -> Response:
    return _answer(request, await _read(svc, pas_version(version), subscription_id))


@router.put("/pas/{version}/Subscription/{subscription_id}")
async def update(version: str, subscription_id: str, request: Request, svc: Svc) -> Response:
    v = pas_version(version)
    return await _put(request, svc, v, _prefix(v), subscription_id)


@router.delete("/pas/{version}/Subscription/{subscription_id}")
async def remove(version: str, subscription_id: str, svc: Svc) -> Response:
    return await _delete(svc, pas_version(version), subscription_id)


@router.get("/pas/{version}/Subscription/{subscription_id}/$status")
@router.post("/pas/{version}/Subscription/{subscription_id}/$status")
async def status(version: str, subscription_id: str, request: Request, svc: Svc) -> Response:
    return await _status(request, svc, pas_version(version), subscription_id)


@router.get("/pas/{version}/Subscription/{subscription_id}/$events")
@router.post("/pas/{version}/Subscription/{subscription_id}/$events")
async def events(version: str, subscription_id: str, request: Request, svc: Svc) -> Response:
    return await _events(request, svc, pas_version(version), subscription_id)


# -- /fhir, as the default PAS version --------------------------------------------------------------------


@router.post("/fhir/Subscription")
async def create_default(request: Request, svc: Svc) -> Response:
    return await _put(request, svc, FHIR_DEFAULT_VERSION, _prefix(None), None)


@router.get("/fhir/Subscription")
async def search_default(request: Request, svc: Svc) -> Response:
    return await _search(request, svc, FHIR_DEFAULT_VERSION, _prefix(None))


@router.get("/fhir/Subscription/{subscription_id}")
async def read_default(subscription_id: str, request: Request, svc: Svc) -> Response:
    return _answer(request, await _read(svc, FHIR_DEFAULT_VERSION, subscription_id))


@router.put("/fhir/Subscription/{subscription_id}")
async def update_default(subscription_id: str, request: Request, svc: Svc) -> Response:
    return await _put(request, svc, FHIR_DEFAULT_VERSION, _prefix(None), subscription_id)


@router.delete("/fhir/Subscription/{subscription_id}")
async def remove_default(subscription_id: str, svc: Svc) -> Response:
    return await _delete(svc, FHIR_DEFAULT_VERSION, subscription_id)


@router.get("/fhir/Subscription/{subscription_id}/$status")
@router.post("/fhir/Subscription/{subscription_id}/$status")
async def status_default(subscription_id: str, request: Request, svc: Svc) -> Response:
    return await _status(request, svc, FHIR_DEFAULT_VERSION, subscription_id)


@router.get("/fhir/Subscription/{subscription_id}/$events")
@router.post("/fhir/Subscription/{subscription_id}/$events")
async def events_default(subscription_id: str, request: Request, svc: Svc) -> Response:
    return await _events(request, svc, FHIR_DEFAULT_VERSION, subscription_id)
