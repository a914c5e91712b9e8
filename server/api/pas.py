"""PAS payer operations (https://hl7.org/fhir/us/davinci-pas/): ``Claim/$submit`` and ``Claim/$inquire``,
and the reviewer API for pended requests. Thin routes over :class:`server.pas.service.PasService`.

``/pas/{version}/...`` pins PAS 2.0.1 or 2.2.1; ``/fhir/Claim/$submit`` and ``/fhir/Claim/$inquire`` answer
as 2.2.1. The reviewer API (``/pas/review``) is PriorGate's own, plain JSON.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from igs.outcome import Failure, OperationOutcomeError, invalid
from server.api.fhir import negotiate, pretty, read_resource
from server.fhir_json import FhirResponse, loads
from server.pas import Code, Modification, PasVersion, Reviewer, ReviewerAction, ReviewerDecision
from server.pas.response import claim_response_of
from server.security.audit import audit_decision, audit_search
from server.security.dependencies import audit_request
from server.security.patient_context import refuse
from server.security.principal import Principal, authorize
from server.security.tenancy import Role, read_filter
from server.services import Services, caller, scoped_pas, scoped_services, services

# OperationDefinition canonicals, as advertised in the CapabilityStatement.
CLAIM_SUBMIT = "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit"
CLAIM_INQUIRE = "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-inquiry"
FHIR_DEFAULT_VERSION = PasVersion.V2_2_1

router = APIRouter(dependencies=[Depends(negotiate), Depends(caller)])
Svc = Annotated[Services, Depends(services)]
Scoped = Annotated[Services, Depends(scoped_services)]
Caller = Annotated[Principal | None, Depends(caller)]


def register(svc: Services) -> None:
    svc.capabilities.add_operation("Claim", "submit", CLAIM_SUBMIT)
    svc.capabilities.add_operation("Claim", "inquire", CLAIM_INQUIRE)


def pas_version(raw: str) -> PasVersion:
    """The PAS version a ``/pas/{version}/...`` path names; 404 for a version not served."""
    try:
        return PasVersion(raw)
    except ValueError:
        served = ", ".join(v.value for v in PasVersion)
        raise OperationOutcomeError.of(
            Failure.NOT_FOUND, f"PAS version {raw!r} is not served; use one of {served}"
        ) from None


async def _submit(request: Request, svc: Services, version: PasVersion) -> Response:
    body = await read_resource(request)
    answer = await run_in_threadpool(scoped_pas(request, svc).submit, version, body)
    return FhirResponse(answer, pretty=pretty(request))


async def _inquire(request: Request, svc: Services, version: PasVersion) -> Response:
    body = await read_resource(request)
    answer = await run_in_threadpool(scoped_pas(request, svc).inquire, version, body)
    return FhirResponse(answer, pretty=pretty(request))


@router.post("/pas/{version}/Claim/$submit")
async def submit(version: str, request: Request, svc: Scoped) -> Response:
    return await _submit(request, svc, pas_version(version))


@router.post("/pas/{version}/Claim/$inquire")
async def inquire(version: str, request: Request, svc: Scoped) -> Response:
    return await _inquire(request, svc, pas_version(version))


@router.post("/fhir/Claim/$submit")
async def submit_default(request: Request, svc: Scoped) -> Response:
    return await _submit(request, svc, FHIR_DEFAULT_VERSION)


@router.post("/fhir/Claim/$inquire")
async def inquire_default(request: Request, svc: Scoped) -> Response:
    return await _inquire(request, svc, FHIR_DEFAULT_VERSION)


# -- reviewer API ---------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CodeIn(_Strict):
    system: str | None = None
    code: str = Field(min_length=1)
    display: str | None = None

    def core(self) -> Code:
        return Code(self.system, self.code, self.display)


class ModificationIn(_Strict):
    product: CodeIn
    quantity: Decimal | None = None
    modifiers: list[CodeIn] = Field(default_factory=list)


class ItemDecisionIn(_Strict):
    item_sequence: int = Field(alias="itemSequence", ge=1)
    action: Literal["approve", "modify", "deny"]
    reason_code: CodeIn | None = Field(default=None, alias="reasonCode")
    reason_text: str | None = Field(default=None, alias="reasonText")
    modification: ModificationIn | None = None

    @model_validator(mode="after")
    def _denial_has_reason(self) -> ItemDecisionIn:
        if self.action == "deny" and (self.reason_code is None or not (self.reason_text or "").strip()):
            raise ValueError("a denial needs reasonCode (X12 886) and reasonText")
        if self.action == "modify" and self.modification is None:
            raise ValueError("a modified approval needs modification (what is authorized)")
        return self

    def core(self) -> ReviewerDecision:
        modification = None
        if self.modification is not None:
            modification = Modification(
                self.modification.product.core(),
                self.modification.quantity,
                tuple(m.core() for m in self.modification.modifiers),
            )
        return ReviewerDecision(
            self.item_sequence,
            ReviewerAction(self.action),
            self.reason_code.core() if self.reason_code else None,
            self.reason_text,
            modification,
        )


class ReviewerIn(_Strict):
    id: str = Field(min_length=1)
    npi: str | None = None
    name: str | None = None


class ReviewDecisionIn(_Strict):
    reviewer: ReviewerIn
    decisions: list[ItemDecisionIn] = Field(min_length=1)


def _iso(value: datetime) -> str:
    return value.isoformat()


def _review_tenants(principal: Principal | None, interaction: Literal["s", "u"]) -> tuple[str, ...] | None:
    """The tenants whose review items the caller reaches (``None``: all). Reading the queue needs
    ``Claim.s`` (own organizations' items unless a reviewer); deciding needs ``ClaimResponse.u`` and the
    reviewer (or admin) role."""
    if principal is None:  # authentication off: the default tenant, as everything else
        return ("",)
    if principal.kind == "patient":  # patient access covers the patient's own data, not the queue
        raise refuse("the review queue is for the submitting organizations and payer staff")
    resource_type = "Claim" if interaction == "s" else "ClaimResponse"
    authorize(principal, resource_type, interaction)
    if interaction == "u" and not ({Role.REVIEWER.value, Role.ADMIN.value} & principal.roles):
        raise OperationOutcomeError.of(
            Failure.FORBIDDEN, "only reviewers decide prior-authorization requests"
        )
    return read_filter(principal, resource_type).sql_values()


@router.get("/pas/review")
async def review_queue(request: Request, svc: Svc, principal: Caller) -> Response:
    """Open review items, earliest due first (PAS 2.2.1 "Pended and denied results": decision clocks)."""
    entries = await run_in_threadpool(svc.pas.queue, _review_tenants(principal, "s"))
    if svc.audit is not None:  # the queue names members' claims: a query touching patient data
        await svc.audit.record(
            audit_search(
                "GET pas/review",
                request=audit_request(request),
                source=svc.audit.source,
                recorded=svc.now(),
                status=200,
            )
        )
    return JSONResponse(
        [
            {
                "id": e.item.review_id,
                "submissionId": e.submission_id,
                "dueAt": _iso(e.item.due_at),
                "receivedAt": _iso(e.item.received_at),
                "urgency": e.item.urgency.value,
                "status": e.item.status.value,
                "assignee": e.assignee,
                "pendedSequences": list(e.item.pended_sequences),
                "claimIdentifiers": [i.token() for i in e.item.claim_identifiers],
            }
            for e in entries
        ]
    )


@router.post("/pas/review/{review_id}/decision")
async def review_decision(review_id: str, request: Request, svc: Svc, principal: Caller) -> Response:
    """Decide pended items; answers the updated PAS Response Bundle (same ClaimResponse id, new version)."""
    tenants = _review_tenants(principal, "u")
    raw = await request.body()
    try:
        parsed = ReviewDecisionIn.model_validate(loads(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise invalid(f"Reviewer decision: {where}: {first.get('msg')}", where) from None
    reviewer = Reviewer(parsed.reviewer.id, npi=parsed.reviewer.npi, name=parsed.reviewer.name)
    decisions = [d.core() for d in parsed.decisions]
    answer = await run_in_threadpool(svc.pas.decide_review, review_id, decisions, reviewer, tenants)
    if svc.delivery is not None:
        svc.delivery.wake()  # subscribers hear about the decision now, not at the next poll
    await _audit_decision(request, svc, answer, [d.action.value for d in decisions])
    return FhirResponse(answer)


# -- X12 routing --------------------------------------------------------------------------------------


def _payer_staff(principal: Principal | None, interaction: Literal["r", "u"]) -> None:
    """The X12 exchange log and a legacy payer's later answers are the payer's own business: reviewers
    and admins only (``ClaimResponse.r`` to read the log, ``ClaimResponse.u`` to post an answer)."""
    if principal is None:  # authentication off
        return
    authorize(principal, "ClaimResponse", interaction)
    if not ({Role.REVIEWER.value, Role.ADMIN.value} & principal.roles):
        raise OperationOutcomeError.of(Failure.FORBIDDEN, "only payer staff see or answer X12 exchanges")


@router.get("/pas/submissions/{submission_id}/x12")
async def x12_exchanges(submission_id: str, svc: Svc, principal: Caller) -> Response:
    """The X12 exchange log of a request routed to a legacy payer: 278 text, timestamps, outcomes."""
    _payer_staff(principal, "r")
    pas = await run_in_threadpool(svc.pas.for_submission, submission_id)
    records = await run_in_threadpool(pas.x12_exchanges, submission_id)
    return JSONResponse([r.to_json() for r in records])


@router.post("/pas/submissions/{submission_id}/x12")
async def x12_answer(submission_id: str, request: Request, svc: Svc, principal: Caller) -> Response:
    """A legacy payer's later 278 response for a pended request (body: the X12 interchange text);
    answers the updated PAS Response Bundle, published like a reviewer's decision."""
    _payer_staff(principal, "u")
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("The 278 response is not UTF-8 text", "body") from None
    pas = await run_in_threadpool(svc.pas.for_submission, submission_id)
    answer = await run_in_threadpool(pas.complete_from_x12, submission_id, text)
    if svc.delivery is not None:
        svc.delivery.wake()
    return FhirResponse(answer)


async def _audit_decision(
    request: Request, svc: Services, answer: dict[str, Any], actions: list[str]
) -> None:
    """A BALP-shaped AuditEvent for the decision: who decided, which Claim, which patient, what."""
    if svc.audit is None:
        return
    claim_response = claim_response_of(answer) or {}
    reference = (
        claim_response.get("request", {}).get("reference") if isinstance(claim_response, dict) else None
    )
    patient = claim_response.get("patient", {}).get("reference")
    event = audit_decision(
        str(reference or "Claim"),
        f"ClaimResponse/{claim_response.get('id', '')}",
        ",".join(actions),
        request=audit_request(request),
        source=svc.audit.source,
        recorded=svc.now(),
        patients=[patient] if isinstance(patient, str) else [],
    )
    await svc.audit.record(event)
