"""HRex 1.0.0 ``POST /fhir/Patient/$member-match`` (``server/member_match``).

Needs a scope covering ``$member-match`` (``system/Patient.rs``, scopes.OPERATION_REQUIREMENTS) and,
because a match records the member's Consent, ``system/Consent.c``. Matching looks at every tenant's
members (it is the payer answering about its own members); the Consent goes to the member's tenant.
Malformed input is 400, no unique match or a Consent PriorGate cannot comply with 422 (OperationOutcome),
and so is a Consent whose recipient (IRCP actor) does not identify the requesting payer, the organization
the caller acts for. A match adds the member to that payer's Payer-to-Payer Group, which it then finds
(``GET /fhir/Group?managing-entity=Organization/<id>``) and exports (``Group/{id}/$export``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from server.api.fhir import negotiate, pretty, read_resource
from server.fhir_json import FhirResponse
from server.member_match import (
    HREX_IG,
    MEMBER_MATCH,
    MemberMatch,
    check_consent,
    match_member,
    parse_member_match,
)
from server.security.access import ORGANIZATION_HEADER, PrincipalAccess
from server.security.audit import audit_operation
from server.security.dependencies import audit_request
from server.security.principal import Principal, authorize
from server.services import Services, caller, services


def requesting_organization(request: Request, principal: Principal | None) -> str | None:
    """The requesting payer: the organization the caller acts for (``X-PriorGate-Organization`` names
    one of several); without authentication the organization that header names, if any."""
    named = request.headers.get(ORGANIZATION_HEADER)
    if principal is None:
        return named or None
    return PrincipalAccess(principal, named).tenant_for_new("Consent")


router = APIRouter(prefix="/fhir", dependencies=[Depends(negotiate)])
HREX_VERSION = "1.0.0"


def register(svc: Services) -> None:
    svc.capabilities.add_operation("Patient", "member-match", MEMBER_MATCH)
    svc.capabilities.add_implementation_guide(f"{HREX_IG}|{HREX_VERSION}")


@router.post("/Patient/$member-match")
async def member_match(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    principal: Annotated[Principal | None, Depends(caller)],
) -> Response:
    if principal is not None:
        authorize(principal, "Consent", "c")
    body = await read_resource(request, "Parameters")
    wanted = parse_member_match(body)
    check_consent(wanted.consent, svc.now())

    organization = requesting_organization(request, principal)
    # without authentication everything lives in the default tenant, the Group too
    group_tenant = svc.repository.tenant if principal is None else None

    def run() -> MemberMatch:
        with svc.repository.writing() as tx:
            return match_member(tx, svc.repository, wanted, organization, group_tenant)

    found = await run_in_threadpool(run)
    if svc.audit is not None:
        await svc.audit.record(
            audit_operation(
                "$member-match",
                request=audit_request(request),
                source=svc.audit.source,
                recorded=svc.now(),
                status=200,
                what=(found.patient.reference, found.consent.reference)
                + ((found.group.reference,) if found.group is not None else ()),
                patients=(found.patient.reference,),
            )
        )
    return FhirResponse(found.output(), pretty=pretty(request))
