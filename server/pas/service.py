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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from igs.outcome import Failure, OperationOutcomeError, not_found
from server.storage.repository import Repository

from .decision import InfoRequest, Reviewer
from .inquiry import (
    StoredAuthorization,
    find_matches,
    inquire_output,
    inquiry_response_bundle,
    parse_inquiry_request,
)
from .ports import CoverageEvaluator, IdFactory
from .request import PasRequest, parse_pas_request
from .response import build_submit_response, claim_response_of
from .review import (
    ReviewClocks,
    ReviewerDecision,
    ReviewItem,
    ReviewStatus,
    apply_review,
    extend_due,
    request_more_information,
)
from .store import IdentifierTaken, PasStore, QueueEntry, SubmissionRecord
from .submission import StoredSubmission, lookup_keys, process_submit
from .versions import PasVersion

Json = dict[str, Any]
log = logging.getLogger("priorgate.pas")


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
    clocks: ReviewClocks = ReviewClocks()  # decision time frames per line of business

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
        tokens = lookup_keys(request)
        prior = self.store.find(version, tokens)
        now = self.now()
        result = process_submit(
            request,
            prior.stored if prior else None,
            evaluate=self.evaluate,
            ids=self.ids,
            now=now,
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
        self._publish(submission_id, body, result.response)
        return result.response

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

    def queue(self) -> list[QueueEntry]:
        """Open review items, earliest due first."""
        return self.store.queue()

    def decide_review(
        self, review_id: str, decisions: Sequence[ReviewerDecision], reviewer: Reviewer
    ) -> Json:
        """A reviewer's decisions on pended items -> a new version of the same ClaimResponse."""
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
        now = self.now()
        current = record.stored
        decision = apply_review(
            current.request, current.decision, decisions, reviewer=reviewer, ids=self.ids, now=now
        )
        response = build_submit_response(
            current.request, decision, ids=self.ids, now=now, claim_response_id=current.claim_response_id
        )
        updated = StoredSubmission(
            current.request, current.fingerprint, decision, response, current.claim_response_id
        )
        item = replace(
            entry.item,
            status=ReviewStatus.OPEN if decision.pended else ReviewStatus.DECIDED,
            pended_sequences=tuple(i.sequence for i in decision.pended),
        )
        request_bundle = self._request_bundle(entry.submission_id)
        self.store.save(
            entry.submission_id, record.version, updated, request_bundle, (), now.isoformat(), existing=True
        )
        self.store.update_review(item)
        self._publish(entry.submission_id, None, response)
        return response

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
        updated = StoredSubmission(
            current.request, current.fingerprint, decision, response, current.claim_response_id
        )
        request_bundle = self._request_bundle(entry.submission_id)
        self.store.save(
            entry.submission_id, record.version, updated, request_bundle, (), now.isoformat(), existing=True
        )
        self.store.update_review(replace(entry.item, status=ReviewStatus.INFO_REQUESTED))
        self._publish(entry.submission_id, None, response)
        return response

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

    def _publish(self, submission_id: str, request_bundle: Any, response: Json) -> None:
        """The Claim (under the submission id) and the ClaimResponse (same id, new versions) in /fhir."""
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
