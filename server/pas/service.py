"""PAS over storage: ``Claim/$submit``, ``Claim/$inquire`` and the reviewer's decisions, each one core call
between a :class:`PasStore` read and write (the wiring in ``server/pas/README.md``).

The Claim and its ClaimResponse are also written to the FHIR repository, so they are searchable under
``/fhir``; a reviewer's decision writes a new version of the same ClaimResponse (PAS 2.2.1 "Pended and
denied results").
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection

from igs.outcome import Failure, OperationOutcomeError, not_found, unprocessable
from server.storage.repository import Repository, Transaction

from .decision import Decision, InfoRequest, Reviewer
from .dtr_context import PendedDocumentation, documentation_for_context
from .inquiry import (
    StoredAuthorization,
    find_matches,
    inquire_output,
    inquiry_response_bundle,
    parse_inquiry_request,
)
from .ports import CoverageEvaluator, IdFactory, StoredResponse
from .request import PasRequest, parse_pas_request
from .response import build_error_response, build_submit_response, claim_response_of
from .review import (
    ReviewClocks,
    ReviewerDecision,
    ReviewItem,
    ReviewStatus,
    apply_review,
    extend_due,
    open_review,
    request_more_information,
)
from .routing import PayerRoute
from .store import IdentifierTaken, PasStore, QueueEntry, SubmissionRecord
from .submission import RejectedRequest, StoredSubmission, lookup_keys, process_submit
from .subscription_store import SubscriptionStore
from .versions import PasVersion
from .x12_log import AWAITING, FAILED, ExchangeRecord
from .x12_route import Sent, X12Routing, interpret

Json = dict[str, Any]
log = logging.getLogger("priorgate.pas")
EXPIRY_MARGIN = 60.0  # seconds past a route's budget and answer timeout before an exchange counts as lost


class RandomIds:
    """Resource ids (UUIDs) and authorization numbers unique across processes without coordination."""

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def authorization_number(self) -> str:
        return "PG" + uuid.uuid4().hex[:12].upper()


@dataclass(frozen=True)
class PasService:
    """The PAS use cases over a :class:`PasStore`, the FHIR repository and the coverage rules."""

    store: PasStore
    resources: Repository  # the FHIR store: Claim and ClaimResponse written in one transaction
    evaluate: CoverageEvaluator
    now: Callable[[], datetime]
    ids: IdFactory = RandomIds()
    validate: Callable[[Mapping[str, Any], PasVersion, str], None] | None = None  # raises on profile errors
    subscriptions: SubscriptionStore | None = None  # result notifications queued with each decision
    x12: X12Routing | None = None  # payers whose requests go to a legacy system as X12 278
    dtr_responses: Callable[[PasRequest], tuple[StoredResponse, ...]] | None = None  # stored DTR responses
    clocks: ReviewClocks = ReviewClocks()  # decision time frames per line of business
    # called in the transaction writing each result (Patient Access: the member's ExplanationOfBenefit)
    published: Callable[[Transaction, SubmissionRecord], object] | None = None

    def submit(self, version: PasVersion, body: Any) -> Json:
        """``Claim/$submit`` (PAS spec-30..39): new, replay, update, cancel; 409 for a reused identifier."""
        if self.validate is not None and isinstance(body, dict) and body.get("entry"):
            self.validate(body, version, "request")
        request = parse_pas_request(body, version)
        try:
            return self._submit(version, body, request)
        except IdentifierTaken:
            # a concurrent request took an identifier first: this one is now a replay, update or conflict
            try:
                return self._submit(version, body, request)
            except IdentifierTaken:
                raise OperationOutcomeError.of(
                    Failure.CONFLICT, "A Claim identifier of this request is being used by another request"
                ) from None

    def _submit(self, version: PasVersion, body: Any, request: PasRequest) -> Json:
        route = self.x12.route(request) if self.x12 is not None else None
        if route is not None:
            return self._submit_routed(version, body, request, route)
        tokens = lookup_keys(request)
        prior = self.store.find(version, tokens)
        now = self.now()
        held = self.dtr_responses(request) if self.dtr_responses is not None else ()
        result = process_submit(
            request,
            prior.stored if prior else None,
            evaluate=self.evaluate,
            ids=self.ids,
            now=now,
            dtr_responses=held,
            clocks=self.clocks,
        )
        if result.stored is None:
            return result.response
        submission_id = prior.submission_id if prior is not None else self.ids.new_id()
        claim_tokens = [i.token() for i in request.claim_identifiers]
        self.store.save(
            submission_id,
            version,
            result.stored,
            body,
            claim_tokens,
            now.isoformat(),
            result.review,
            existing=prior is not None,
        )
        self._publish(SubmissionRecord(submission_id, version, result.stored), body, result.response)
        return result.response

    def _submit_routed(self, version: PasVersion, body: Any, request: PasRequest, route: PayerRoute) -> Json:
        """A request for a payer routed over X12: that payer's 278 response decides it (PAS "X12 278")."""
        assert self.x12 is not None
        routing = self.x12
        prior = self.store.find(version, lookup_keys(request))
        submission_id = prior.submission_id if prior is not None else self.ids.new_id()
        now = self.now()
        sent: list[Sent] = []

        def decide_at_payer(req: PasRequest, prior_decision: Decision | None) -> Decision | RejectedRequest:
            sent.append(
                routing.send(route, body, req, prior_decision, submission_id=submission_id, now=self.now)
            )
            return sent[-1].answer

        result = process_submit(
            request,
            prior.stored if prior else None,
            evaluate=self.evaluate,
            ids=self.ids,
            now=now,
            decider=decide_at_payer,
            open_reviews=False,
        )
        if result.stored is None:
            return result.response
        exchange = sent[-1] if sent else None
        review = None
        if exchange is not None and exchange.failed and result.stored.decision.pended:
            review = open_review(
                request,
                result.stored.decision,
                review_id=self.ids.new_id(),
                received_at=now,
                clocks=self.clocks,
            )
        self.store.save(
            submission_id,
            version,
            result.stored,
            body,
            [i.token() for i in request.claim_identifiers],
            now.isoformat(),
            review,
            existing=prior is not None,
        )
        self._publish(SubmissionRecord(submission_id, version, result.stored), body, result.response)
        if exchange is not None and exchange.pending is not None:
            exchange_id = exchange.exchange_id
            exchange.pending.add_done_callback(
                lambda future: self._late_answer(submission_id, exchange_id, future)
            )
        return result.response

    def _late_answer(self, submission_id: str, exchange_id: str, future: Future[str]) -> None:
        """The answer of an exchange that outlived its budget (runs on the exchange's worker thread)."""
        assert self.x12 is not None
        try:
            response_278 = future.result()
        except Exception as exc:  # the payer never answered: a reviewer takes the request over
            self.x12.log.answered(exchange_id, None, self.now().isoformat(), FAILED, str(exc))
            self._open_review_for(submission_id)
            log.warning("X12 exchange %s for submission %s failed: %s", exchange_id, submission_id, exc)
            return
        try:
            self.complete_from_x12(submission_id, response_278, exchange_id=exchange_id)
        except Exception:  # an unreadable answer: the exchange log says why, a reviewer takes over
            log.exception("X12 late answer for submission %s could not be applied", submission_id)
            self._open_review_for(submission_id)

    def _open_review_for(self, submission_id: str) -> None:
        record = self.store.get(submission_id)
        if record is None or not record.stored.decision.pended:
            return
        if any(e.submission_id == submission_id for e in self.store.queue()):
            return  # already with a reviewer
        item = open_review(
            record.stored.request,
            record.stored.decision,
            review_id=self.ids.new_id(),
            received_at=self.now(),
            clocks=self.clocks,
        )
        request_bundle = self._request_bundle(submission_id)
        self.store.save(
            submission_id,
            record.version,
            record.stored,
            request_bundle,
            (),
            self.now().isoformat(),
            item,
            existing=True,
        )

    def complete_from_x12(
        self, submission_id: str, response_278: str, *, exchange_id: str | None = None
    ) -> Json:
        """Apply a legacy payer's 278 response to a stored request: the late answer of an exchange that
        outlived its budget, or an answer the payer sent later on its own (a pended item decided).

        The decision becomes a new version of the same ClaimResponse and is published like a reviewer's
        decision (Claim and ClaimResponse in /fhir; subscribers notified). AAA rejections in a late answer
        replace the response with a ClaimResponse of ``outcome=error``.
        """
        record = self.store.get(submission_id)
        if record is None:
            raise not_found(f"No PAS submission {submission_id!r}")
        exchange: ExchangeRecord | None = None
        if exchange_id is not None and self.x12 is not None:
            exchange = self.x12.log.get(exchange_id)
            if exchange is not None and exchange.outcome != AWAITING:
                raise OperationOutcomeError.of(
                    Failure.CONFLICT, f"X12 exchange {exchange_id!r} is already answered"
                )
        current = record.stored
        if exchange is None and (self.x12 is None or self.x12.route(current.request) is None):
            raise unprocessable(f"Submission {submission_id!r} is decided here, not by a payer over X12")
        payer = exchange.payer if exchange is not None else self._payer_of(current.request)
        now = self.now()
        answer, outcome, detail = interpret(current.request, response_278, payer, now)
        if answer is None:
            if exchange_id is not None and self.x12 is not None:
                self.x12.log.answered(exchange_id, response_278, now.isoformat(), outcome, detail)
            raise OperationOutcomeError.of(Failure.INVALID, f"The 278 response could not be read: {detail}")
        if isinstance(answer, RejectedRequest):
            decision = current.decision
            response = build_error_response(
                current.request,
                answer.errors,
                ids=self.ids,
                now=now,
                claim_response_id=current.claim_response_id,
            )
        else:
            decision = replace(answer, version=current.decision.version + 1)
            response = build_submit_response(
                current.request, decision, ids=self.ids, now=now, claim_response_id=current.claim_response_id
            )
        self._record_result(submission_id, record, decision, response, now)
        if self.x12 is not None:
            if exchange_id is not None:
                self.x12.log.answered(exchange_id, response_278, now.isoformat(), outcome, detail)
            else:
                self.x12.log.add(
                    ExchangeRecord(
                        exchange_id=self.ids.new_id(),
                        submission_id=submission_id,
                        payer=payer,
                        endpoint="(sent by the payer)",
                        claim_identifier=next((i.token() for i in current.request.claim_identifiers), ""),
                        request_278="",
                        sent_at=now.isoformat(),
                        outcome=outcome,
                        response_278=response_278,
                        received_at=now.isoformat(),
                        detail=detail,
                    )
                )
        return response

    def expire_x12(self) -> int:
        """Exchanges still awaiting an answer after their route's budget and answer timeout (the process
        that sent them stopped): marked failed, their requests handed to a reviewer. Returns how many."""
        if self.x12 is None:
            return 0
        now = self.now()
        expired = 0
        for exchange in self.x12.log.awaiting():
            route = self.x12.routes.by_payer(exchange.payer)
            wait = (route.budget + route.answer_timeout) if route is not None else 0.0
            if (now - datetime.fromisoformat(exchange.sent_at)).total_seconds() <= wait + EXPIRY_MARGIN:
                continue
            detail = "no answer: the process waiting for it stopped before the payer answered"
            self.x12.log.answered(exchange.exchange_id, None, now.isoformat(), FAILED, detail)
            self._open_review_for(exchange.submission_id)
            expired += 1
        return expired

    def _payer_of(self, request: PasRequest) -> str:
        route = self.x12.route(request) if self.x12 is not None else None
        if route is not None:
            return route.payer
        return request.insurer.identifiers[0].value if request.insurer.identifiers else "payer"

    def x12_exchanges(self, submission_id: str) -> list[ExchangeRecord]:
        """The X12 exchange log of one submission, oldest first (empty for locally decided requests)."""
        found = self.x12.log.for_submission(submission_id) if self.x12 is not None else []
        if not found and self.store.get(submission_id) is None:
            raise not_found(f"No PAS submission {submission_id!r}")
        return found

    def inquire(self, version: PasVersion, body: Any) -> Json:
        """``Claim/$inquire`` (PAS inquiry): 2.2.1 Parameters of Bundles, 2.0.1 one Bundle or 404."""
        if self.validate is not None and isinstance(body, dict) and body.get("entry"):
            self.validate(body, version, "inquiry")
        inquiry = parse_inquiry_request(body, version)
        now = self.now()
        candidates = [
            StoredAuthorization.of(r.stored.request, r.stored.decision, r.stored.response)
            for r in self.store.for_members(
                version, {i.value for i in (*inquiry.member_ids, *inquiry.patient_identifiers)}
            )
        ]
        bundles = [
            inquiry_response_bundle(m, version, bundle_id=self.ids.new_id(), now=now)
            for m in find_matches(inquiry, candidates)
        ]
        return inquire_output(version, bundles, bundle_id=self.ids.new_id(), now=now)

    def dtr_context(self, context: str) -> PendedDocumentation | None:
        """DTR ``$questionnaire-package`` ``context`` as a PAS trace number (or Claim identifier) of a
        request stored in this tenant: what its pended items ask for; ``None`` when no request has it."""
        record = self.store.find_by_trace(context)
        return None if record is None else documentation_for_context(record, context)

    def for_tenant(self, tenant: str, resources: Repository | None = None) -> PasService:
        """The same service acting for one tenant: its submissions, reviews and (by default) resources."""
        return replace(
            self,
            store=self.store.for_tenant(tenant),
            resources=resources or self.resources.for_tenant(tenant),
            subscriptions=self.subscriptions.for_tenant(tenant) if self.subscriptions is not None else None,
        )

    def for_submission(self, submission_id: str) -> PasService:
        """The service acting in the tenant that holds a stored submission (payer staff and legacy payers
        act across tenants); 404 when no tenant holds it."""
        tenant = self.store.submission_tenant(submission_id)
        if tenant is None:
            raise not_found(f"No PAS submission {submission_id!r}")
        return self if tenant == self.store.tenant else self.for_tenant(tenant)

    def queue(self, tenants: Sequence[str] | None | Literal["own"] = "own") -> list[QueueEntry]:
        """Open review items, earliest due first: of this tenant, of ``tenants``, or (``None``) of all."""
        return self.store.queue(tenants=tenants)

    def decide_review(
        self,
        review_id: str,
        decisions: Sequence[ReviewerDecision],
        reviewer: Reviewer,
        tenants: Sequence[str] | None | Literal["own"] = "own",
    ) -> Json:
        """A reviewer's decisions on pended items -> a new version of the same ClaimResponse, written in
        the tenant of the reviewed submission (looked up among ``tenants``, as for :meth:`queue`)."""
        if tenants != "own":
            tenant = self.store.review_tenant(review_id, tenants)
            if tenant is None:
                raise not_found(f"No review item {review_id!r}")
            return self.for_tenant(tenant).decide_review(review_id, decisions, reviewer)
        entry, record = self._open_review(review_id)
        now = self.now()
        current = record.stored
        decision = apply_review(
            current.request, current.decision, decisions, reviewer=reviewer, ids=self.ids, now=now
        )
        item = replace(
            entry.item,
            status=ReviewStatus.OPEN if decision.pended else ReviewStatus.DECIDED,
            pended_sequences=tuple(i.sequence for i in decision.pended),
        )
        response = build_submit_response(
            current.request, decision, ids=self.ids, now=now, claim_response_id=current.claim_response_id
        )
        return self._record_result(entry.submission_id, record, decision, response, now, item)

    def _record_result(
        self,
        submission_id: str,
        record: SubmissionRecord,
        decision: Decision,
        response: Json,
        now: datetime,
        review: ReviewItem | None = None,
    ) -> Json:
        """Store a new result of a stored request (a reviewer's decision, an information request, a legacy
        payer's answer) with its review item and its subscription notifications in one transaction, then
        write the new ClaimResponse version under /fhir. Returns ``response``."""
        current = record.stored
        updated = StoredSubmission(
            current.request, current.fingerprint, decision, response, current.claim_response_id
        )
        self.store.save(
            submission_id,
            record.version,
            updated,
            self._request_bundle(submission_id),
            (),
            now.isoformat(),
            existing=True,
            updated_review=review,
            also=self._notifier(record.version, updated, now),
        )
        self._publish(SubmissionRecord(submission_id, record.version, updated), None, response)
        return response

    def _notifier(
        self, version: PasVersion, stored: StoredSubmission, now: datetime
    ) -> Callable[[Connection], int] | None:
        """Queues the result for every matching subscription, inside the transaction that stores it
        (PASSubscriptionTopic: a result the payer made ready; ``$submit`` answers synchronously)."""
        subscriptions = self.subscriptions
        if subscriptions is None:
            return None

        def notify(connection: Connection) -> int:
            return subscriptions.enqueue_result(
                connection,
                version,
                stored.request.submitter_identifiers,
                stored.response,
                stored.claim_response_id,
                now,
            )

        return notify

    def request_information(
        self, review_id: str, requests: Sequence[InfoRequest], reviewer: Reviewer
    ) -> Json:
        """Ask the submitter for more information: items stay pended (A4), the ClaimResponse gets a new
        version carrying the CommunicationRequests (PAS ainfo-2/3), and the review waits for the answer."""
        entry, record = self._open_review(review_id)
        now = self.now()
        current = record.stored
        decision = request_more_information(current.decision, requests, reviewer=reviewer, now=now)
        response = build_submit_response(
            current.request, decision, ids=self.ids, now=now, claim_response_id=current.claim_response_id
        )
        item = replace(entry.item, status=ReviewStatus.INFO_REQUESTED)
        return self._record_result(entry.submission_id, record, decision, response, now, item)

    def extend_review(self, review_id: str, by: timedelta, reason: str, reviewer_id: str) -> ReviewItem:
        """Extend an open review's due time; the reason is recorded on the review item."""
        entry, _ = self._open_review(review_id)
        item = extend_due(entry.item, by=by, reason=reason, at=self.now(), reviewer_id=reviewer_id)
        self.store.update_review(item)
        return item

    def _open_review(self, review_id: str) -> tuple[QueueEntry, SubmissionRecord]:
        entry = self.store.review(review_id)
        if entry is None:
            raise not_found(f"No review item {review_id!r}")
        if entry.item.status is ReviewStatus.DECIDED:
            raise OperationOutcomeError.of(Failure.CONFLICT, f"Review item {review_id!r} is already decided")
        record = self.store.get(entry.submission_id)
        if record is None:
            raise OperationOutcomeError.of(
                Failure.INTERNAL, f"Review {review_id!r} names a missing submission"
            )
        return entry, record

    def _request_bundle(self, submission_id: str) -> Json:
        raw = self.store.request_bundle(submission_id)
        if raw is None:
            raise OperationOutcomeError.of(Failure.INTERNAL, f"Submission {submission_id!r} has no request")
        return raw

    def _publish(self, record: SubmissionRecord, request_bundle: Any, response: Json) -> None:
        """The Claim (under the submission id) and the ClaimResponse (same id, new versions) in /fhir."""
        submission_id = record.submission_id
        writes: list[tuple[str, str, Json]] = []
        if isinstance(request_bundle, dict):
            claim = next(
                (
                    e.get("resource")
                    for e in request_bundle.get("entry") or ()
                    if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                ),
                None,
            )
            if claim is not None and claim.get("resourceType") == "Claim":
                writes.append(("Claim", submission_id, {**copy.deepcopy(claim), "id": submission_id}))
        claim_response = claim_response_of(response)
        if claim_response is not None and claim_response.get("id"):
            writes.append(("ClaimResponse", str(claim_response["id"]), copy.deepcopy(claim_response)))
        with self.resources.writing() as tx:
            for resource_type, resource_id, body in writes:
                tx.update(resource_type, resource_id, body)
            if self.published is not None:
                self.published(tx, record)
