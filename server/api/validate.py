"""``$validate`` (https://hl7.org/fhir/R4/resource-operation-validate.html) over the ``igs`` validator.

``Parameters`` (with ``resource`` and optional ``profile``) or a bare resource in; an OperationOutcome
out, 200 whether or not the resource is valid. A missing IG package answers 503 naming it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from igs import validate_operation
from server.api.fhir import negotiate, pretty, read_resource
from server.fhir_json import FhirResponse
from server.resource_types import RESOURCE_TYPES
from server.services import Services, caller, services

VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"

router = APIRouter(prefix="/fhir", dependencies=[Depends(negotiate), Depends(caller)])
Svc = Annotated[Services, Depends(services)]


def register(svc: Services) -> None:
    svc.capabilities.add_operation(None, "validate", VALIDATE)
    for resource_type in RESOURCE_TYPES:
        svc.capabilities.add_operation(resource_type, "validate", VALIDATE)


async def _validate(request: Request, svc: Services, resource_type: str | None) -> Response:
    body = await read_resource(request)
    profile = request.query_params.get("profile")
    outcome = await run_in_threadpool(validate_operation, svc.validator, body, resource_type, profile)
    return FhirResponse(outcome, pretty=pretty(request))


@router.post("/$validate")
async def validate_system(request: Request, svc: Svc) -> Response:
    return await _validate(request, svc, None)


@router.post("/{resource_type}/$validate")
async def validate_type(resource_type: str, request: Request, svc: Svc) -> Response:
    return await _validate(request, svc, resource_type)
