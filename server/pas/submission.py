"""One ``Claim/$submit`` as a pure function over the parsed request and what storage already holds.

Spec: PAS ``Claim/$submit`` (new requests, PASClaimUpdate updates and cancels, spec-64 rejections),
with PriorGate's replay rule: an identical resubmission returns the stored answer and creates nothing.
The route parses (and profile-validates) the Bundle, looks up :func:`lookup_keys` in storage, calls
:func:`process_submit`, persists what the result says, and returns ``result.response``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .codes import ReviewAction
from .decision import DEFAULT_POLICY, Decision, DecisionPolicy, decide, decide_update
from .fhirdata import Json
from .idempotency import PriorItem, PriorSubmission, SubmissionKind, check_update, classify, fingerprint
from .ports import CoverageEvaluator, IdFactory, StoredResponse
from .request import PasRequest
from .response import BusinessError, build_error_response, build_submit_response, claim_response_of
from .review import ReviewClocks, ReviewItem, open_review

DEFAULT_CLOCKS = ReviewClocks()


@dataclass(frozen=True)
class RejectedRequest:
    """A decider's answer when the request is rejected outright (X12 AAA from a legacy payer)."""

    errors: tuple[BusinessError, ...]


# Decides a new request (prior decision None) or an update / cancel (the prior decision) in place of the
# coverage rules: a request routed to a legacy payer is decided by that payer's 278 response.
Decider = Callable[[PasRequest, Decision | None], Decision | RejectedRequest]


@dataclass(frozen=True)
class StoredSubmission:
    """What storage keeps per accepted request (keyed by every Claim identifier token)."""

    request: PasRequest
    fingerprint: str
    decision: Decision
    response: Json
    claim_response_id: str

    def prior(self) -> PriorSubmission:
        items = self.decision.items
        return PriorSubmission(
            fingerprint=self.fingerprint,
            claim_identifiers=self.request.claim_identifiers,
            patient_identifiers=self.request.patient.identifiers,
            member_ids=self.request.member_ids,
            items=tuple(PriorItem(i.sequence, i.action) for i in items),
            cancelled=bool(items) and all(i.action is ReviewAction.CANCELLED for i in items),
        )


@dataclass(frozen=True)
class SubmitResult:
    kind: SubmissionKind
    fingerprint: str
    response: Json  # the PAS Response Bundle to return
    stored: StoredSubmission | None  # what to persist; None for replays and rejected updates
    review: ReviewItem | None  # a new review-queue item when something is pended
    errors: tuple[BusinessError, ...] = ()

    @property
    def creates_nothing(self) -> bool:
        return self.stored is None


def lookup_keys(request: PasRequest) -> tuple[str, ...]:
    """Identifier tokens (``system|value``) to find the prior submission: this Claim's and its prior's."""
    seen: list[str] = []
    for identifier in (*request.claim_identifiers, *request.prior_claim_identifiers):
        if identifier.token() not in seen:
            seen.append(identifier.token())
    return tuple(seen)


def process_submit(
    request: PasRequest,
    prior: StoredSubmission | None,
    *,
    evaluate: CoverageEvaluator,
    ids: IdFactory,
    now: datetime,
    review_id: str | None = None,
    clocks: ReviewClocks = DEFAULT_CLOCKS,
    policy: DecisionPolicy = DEFAULT_POLICY,
    decider: Decider | None = None,
    open_reviews: bool = True,
    dtr_responses: Sequence[StoredResponse] = (),
) -> SubmitResult:
    """Classify, decide and answer one submission; raises CONFLICT for a reused identifier.

    ``decider`` replaces the coverage rules (a request routed to a legacy payer); ``open_reviews=False``
    leaves pended items out of PriorGate's review queue (the payer reviews them). ``dtr_responses``
    are DTR QuestionnaireResponses the payer already holds for this request (found by coverage-assertion-id).
    """
    fp = fingerprint(request)
    kind = classify(request, fp, prior.prior() if prior else None)
    if kind is SubmissionKind.REPLAY and prior is not None:
        return SubmitResult(kind, fp, prior.response, None, None)
    prior_decision: Decision | None = None
    if kind in (SubmissionKind.UPDATE, SubmissionKind.CANCEL):
        errors = check_update(request, prior.prior() if prior else None)
        if errors or prior is None:
            return SubmitResult(
                kind, fp, build_error_response(request, errors, ids=ids, now=now), None, None, errors
            )
        prior_decision = prior.decision
    if decider is not None:
        answer = decider(request, prior_decision)
        if isinstance(answer, RejectedRequest):
            response = build_error_response(request, answer.errors, ids=ids, now=now)
            return SubmitResult(kind, fp, response, None, None, answer.errors)
        decision = answer
    elif prior_decision is not None:
        decision = decide_update(request, prior_decision, evaluate, ids, now, policy, dtr_responses)
    else:
        decision = decide(request, evaluate, ids, now, policy, dtr_responses)
    response = build_submit_response(request, decision, ids=ids, now=now)
    claim_response = claim_response_of(response)
    assert claim_response is not None  # build_submit_response always puts it first
    stored = StoredSubmission(request, fp, decision, response, str(claim_response["id"]))
    review = None
    if decision.pended and open_reviews:
        review = open_review(
            request, decision, review_id=review_id or ids.new_id(), received_at=now, clocks=clocks
        )
    return SubmitResult(kind, fp, response, stored, review)
