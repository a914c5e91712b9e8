"""The PAS core wired as a service in memory, served over httpx.MockTransport, and run through the PAS
conformance suite. This is the shape the storage and routes will take: each step is one core call.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from conformance.framework import Outcome, Target, run_suite
from conformance.suites import pas_server
from igs.outcome import OperationOutcomeError
from server.errors import status_of
from server.pas import (
    CoverageFinding,
    CoverageQuery,
    Decision,
    PasRequest,
    PasVersion,
    PriorItem,
    PriorSubmission,
    ReviewAction,
    Reviewer,
    ReviewerAction,
    ReviewerDecision,
    ReviewItem,
    StoredAuthorization,
    SubmissionKind,
    SubscriptionRef,
    apply_review,
    build_error_response,
    build_submit_response,
    check_update,
    claim_response_of,
    classify,
    decide,
    decide_update,
    find_matches,
    fingerprint,
    inquire_output,
    inquiry_response_bundle,
    open_review,
    parse_inquiry_request,
    parse_org_filter,
    parse_pas_request,
    result_notification,
)

Json = dict[str, Any]


def _rules(query: CoverageQuery) -> CoverageFinding:
    """Demo coverage rules: MRI of the lumbar spine (72148) needs review, everything else is approved."""
    if query.product is not None and query.product.code == "72148":
        return CoverageFinding("conditional", "auth-needed", reasons=("imaging needs clinical review",))
    return CoverageFinding("covered", "auth-needed")


class Ids:
    def __init__(self) -> None:
        self._n = itertools.count(1)

    def new_id(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._n):012d}"

    def authorization_number(self) -> str:
        return f"PG{next(self._n):07d}"


@dataclass
class Stored:
    request: PasRequest
    fingerprint: str
    decision: Decision
    response: Json
    claim_response_id: str

    def prior(self) -> PriorSubmission:
        return PriorSubmission(
            fingerprint=self.fingerprint,
            claim_identifiers=self.request.claim_identifiers,
            patient_identifiers=self.request.patient.identifiers,
            member_ids=self.request.member_ids,
            items=tuple(PriorItem(i.sequence, i.action) for i in self.decision.items),
            cancelled=bool(self.decision.items)
            and all(i.action is ReviewAction.CANCELLED for i in self.decision.items),
        )


@dataclass
class InMemoryPas:
    now: datetime
    ids: Ids = field(default_factory=Ids)
    by_identifier: dict[tuple[PasVersion, str], Stored] = field(default_factory=dict)
    queue: dict[str, tuple[ReviewItem, Stored]] = field(default_factory=dict)
    subscriptions: list[tuple[str, str]] = field(default_factory=list)  # (subscription url, criteria)
    delivered: list[Json] = field(default_factory=list)
    events: int = 0

    def submit(self, version: PasVersion, body: Any) -> Json:
        request = parse_pas_request(body, version)
        fp = fingerprint(request)
        keys = [(version, i.token()) for i in (*request.claim_identifiers, *request.prior_claim_identifiers)]
        stored = next((self.by_identifier[k] for k in keys if k in self.by_identifier), None)
        kind = classify(request, fp, stored.prior() if stored else None)
        if kind is SubmissionKind.REPLAY and stored is not None:
            return stored.response
        if kind in (SubmissionKind.UPDATE, SubmissionKind.CANCEL):
            errors = check_update(request, stored.prior() if stored else None)
            if errors or stored is None:
                return build_error_response(request, errors, ids=self.ids, now=self.now)
            decision = decide_update(request, stored.decision, _rules, self.ids, self.now)
        else:
            decision = decide(request, _rules, self.ids, self.now)
        response = build_submit_response(request, decision, ids=self.ids, now=self.now)
        cr = claim_response_of(response)
        assert cr is not None
        record = Stored(request, fp, decision, response, cr["id"])
        for identifier in request.claim_identifiers:
            self.by_identifier[(version, identifier.token())] = record
        if decision.pended:
            review = open_review(request, decision, review_id=self.ids.new_id(), received_at=self.now)
            self.queue[review.review_id] = (review, record)
        return response

    def inquire(self, version: PasVersion, body: Any) -> Json:
        inquiry = parse_inquiry_request(body, version)
        current = {id(s): s for (v, _), s in self.by_identifier.items() if v is version}.values()
        candidates = [StoredAuthorization.of(s.request, s.decision, s.response) for s in current]
        bundles = [
            inquiry_response_bundle(m, version, bundle_id=self.ids.new_id(), now=self.now)
            for m in find_matches(inquiry, candidates)
        ]
        return inquire_output(version, bundles, bundle_id=self.ids.new_id(), now=self.now)

    def decide_review(self, review_id: str, decisions: list[ReviewerDecision], reviewer: Reviewer) -> Json:
        review, record = self.queue.pop(review_id)
        later = self.now + timedelta(hours=4)
        decision = apply_review(
            record.request, record.decision, decisions, reviewer=reviewer, ids=self.ids, now=later
        )
        response = build_submit_response(
            record.request, decision, ids=self.ids, now=later, claim_response_id=record.claim_response_id
        )
        record.decision, record.response = decision, response
        for url, criteria in self.subscriptions:
            if parse_org_filter(criteria).matches(review.submitter_identifiers):
                self.events += 1
                self.delivered.append(
                    result_notification(
                        record.request.version,
                        SubscriptionRef(url),
                        response_bundle=response,
                        response_bundle_url=f"https://priorgate.example/Bundle/{response['id']}",
                        event_number=self.events,
                        bundle_id=self.ids.new_id(),
                        status_id=self.ids.new_id(),
                        now=later,
                    )
                )
        return response

    def handle(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")  # pas/<version>/Claim/$<operation>
        try:
            version = PasVersion(parts[1])
            body = orjson.loads(request.content)
            if parts[2:] == ["Claim", "$submit"]:
                return _json(200, self.submit(version, body))
            if parts[2:] == ["Claim", "$inquire"]:
                return _json(200, self.inquire(version, body))
            return _json(
                404,
                {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]},
            )
        except OperationOutcomeError as exc:
            return _json(status_of(exc.failure), exc.to_fhir())


def _json(status: int, body: Json) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"Content-Type": "application/fhir+json"}
    )


@pytest.fixture
def service() -> InMemoryPas:
    return InMemoryPas(now=datetime(2026, 3, 2, 14, 30, tzinfo=UTC))


def test_the_pas_conformance_suite_passes_against_the_core(service: InMemoryPas) -> None:
    with httpx.Client(transport=httpx.MockTransport(service.handle), base_url="http://pas.test") as client:
        results = run_suite(pas_server.SUITE, Target(client=client))
    failed = [(r.check, r.message) for r in results if r.outcome in (Outcome.FAIL, Outcome.ERROR)]
    assert failed == []
    assert (
        sum(r.outcome is Outcome.PASS for r in results) == len(results) - 1
    )  # the handshake needs a listener


def test_conformance_requirements_cover_every_cited_id() -> None:
    defined = {row[0] for row in pas_server.REQUIREMENTS}
    cited = {req for item in pas_server.SUITE.checks for req in item.requirements}
    assert cited <= defined
    assert pas_server.requirements_csv().startswith("id,ig,version,url,text,actor\n")


def test_pended_request_reviewed_reaches_the_subscriber(service: InMemoryPas) -> None:
    bundle = pas_server.request_bundle("PEND-1", ("72148", "97110"))
    submitter = next(
        e["resource"] for e in bundle["entry"] if e["resource"].get("name") == "Conformance Clinic"
    )
    npi = submitter["identifier"][0]["value"]
    service.subscriptions.append(("https://priorgate.example/Subscription/s1", f"org-identifier={npi}"))
    service.subscriptions.append(
        ("https://priorgate.example/Subscription/other", "orgIdentifier=someone-else")
    )
    first = claim_response_of(service.submit(PasVersion.V2_2_1, bundle))
    assert first is not None and first["outcome"] == "partial"
    (review_id,) = service.queue
    assert service.queue[review_id][0].due_at == service.now + timedelta(days=7)
    final = service.decide_review(review_id, [ReviewerDecision(1, ReviewerAction.APPROVE)], Reviewer("rev-1"))
    cr = claim_response_of(final)
    assert cr is not None and cr["id"] == first["id"] and cr["outcome"] == "complete"
    (note,) = service.delivered  # only the matching subscription is notified
    assert note["entry"][1]["resource"] is final
    # a replay after the decision returns the current answer and creates nothing
    assert service.submit(PasVersion.V2_2_1, bundle) is final
    assert not service.queue


def test_the_suite_fails_a_server_that_accepts_anything() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _json(200, {"resourceType": "Bundle", "type": "collection", "entry": []})

    with httpx.Client(transport=httpx.MockTransport(handler), base_url="http://pas.test") as client:
        results = run_suite(pas_server.SUITE, Target(client=client))
    assert all(r.outcome in (Outcome.FAIL, Outcome.SKIP) for r in results)
    assert sum(r.outcome is Outcome.FAIL for r in results) == len(results) - 1
