"""The PAS core wired as a service in memory, served over httpx.MockTransport, and run through the PAS
conformance suite. This is the shape the storage and routes will take: each step is one core call.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
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
    PasVersion,
    Reviewer,
    ReviewerAction,
    ReviewerDecision,
    ReviewItem,
    StoredAuthorization,
    StoredSubmission,
    SubscriptionRef,
    apply_review,
    build_submit_response,
    claim_response_of,
    find_matches,
    inquire_output,
    inquiry_response_bundle,
    lookup_keys,
    parse_inquiry_request,
    parse_org_filter,
    parse_pas_request,
    process_submit,
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
class InMemoryPas:
    now: datetime
    ids: Ids = field(default_factory=Ids)
    by_identifier: dict[tuple[PasVersion, str], StoredSubmission] = field(default_factory=dict)
    queue: dict[str, tuple[ReviewItem, tuple[PasVersion, str]]] = field(default_factory=dict)
    subscriptions: list[tuple[str, str]] = field(default_factory=list)  # (subscription url, criteria)
    delivered: list[Json] = field(default_factory=list)
    events: int = 0

    def submit(self, version: PasVersion, body: Any) -> Json:
        request = parse_pas_request(body, version)
        keys = [(version, key) for key in lookup_keys(request)]
        prior = next((self.by_identifier[k] for k in keys if k in self.by_identifier), None)
        result = process_submit(request, prior, evaluate=_rules, ids=self.ids, now=self.now)
        if result.stored is not None:
            for identifier in request.claim_identifiers:
                self.by_identifier[(version, identifier.token())] = result.stored
        if result.review is not None:
            key = (version, request.claim_identifiers[0].token())
            self.queue[result.review.review_id] = (result.review, key)
        return result.response

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
        review, key = self.queue.pop(review_id)
        record = self.by_identifier[key]
        later = self.now + timedelta(hours=4)
        decision = apply_review(
            record.request, record.decision, decisions, reviewer=reviewer, ids=self.ids, now=later
        )
        response = build_submit_response(
            record.request, decision, ids=self.ids, now=later, claim_response_id=record.claim_response_id
        )
        updated = replace(record, decision=decision, response=response)
        for identifier in record.request.claim_identifiers:
            self.by_identifier[(record.request.version, identifier.token())] = updated
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
        if len(parts) < 2 or parts[0] != "pas" or parts[1] not in {v.value for v in PasVersion}:
            return _json(  # no review API here: the checks deciding pended requests skip
                404,
                {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]},
            )
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
    skipped = {r.check for r in results if r.outcome is Outcome.SKIP}
    # the in-memory core has no rest-hook delivery and no review API: those checks skip (the app runs them)
    assert skipped == {
        f"{c}-{v}"
        for c in ("subscription-handshake", "pended-notification", "workflow-denial")
        for v in ("2.0.1", "2.2.1")
    }


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
    skipped = {r.check for r in results if r.outcome is Outcome.SKIP}
    assert skipped == {
        f"{c}-{v}" for c in ("subscription-handshake", "pended-notification") for v in ("2.0.1", "2.2.1")
    }


@pytest.mark.parametrize("version", list(PasVersion))
def test_the_suites_request_bundles_meet_the_profiles(version: PasVersion, validate: Any) -> None:
    bundle = pas_server.request_bundle("T1", ("72148", "97110"))
    assert validate(bundle, version) == []
    parse_pas_request(bundle, version)
