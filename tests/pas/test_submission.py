"""process_submit: the whole $submit step over what storage holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from igs.outcome import Failure, OperationOutcomeError
from server.pas import (
    CoverageFinding,
    CoverageQuery,
    PasVersion,
    SubmissionKind,
    claim_response_of,
    lookup_keys,
    parse_pas_request,
    process_submit,
)

V = PasVersion.V2_2_1


def _pend(query: CoverageQuery) -> CoverageFinding:
    return CoverageFinding("conditional", "auth-needed", reasons=("review",))


def _approve(query: CoverageQuery) -> CoverageFinding:
    return CoverageFinding("covered", "auth-needed")


def test_new_replay_and_conflict(ig: Any, ids: Any, now: datetime) -> None:
    bundle = ig(V)["Bundle-ReferralAuthorizationBundleExample.json"]
    request = parse_pas_request(bundle, V)
    assert lookup_keys(request) == ("urn:trnorg:9012345678|111099",)
    first = process_submit(request, None, evaluate=_pend, ids=ids, now=now)
    assert first.kind is SubmissionKind.NEW and first.stored is not None
    assert first.review is not None and first.review.pended_sequences == (1,)
    again = process_submit(parse_pas_request(bundle, V), first.stored, evaluate=_pend, ids=ids, now=now)
    assert again.kind is SubmissionKind.REPLAY and again.creates_nothing and again.review is None
    assert again.response is first.response
    changed = dict(bundle, entry=[dict(e) for e in bundle["entry"]])
    claim = dict(changed["entry"][0]["resource"], created="2026-01-01T00:00:00Z")
    changed["entry"][0] = dict(changed["entry"][0], resource=claim)
    with pytest.raises(OperationOutcomeError) as exc:
        process_submit(parse_pas_request(changed, V), first.stored, evaluate=_pend, ids=ids, now=now)
    assert exc.value.failure is Failure.CONFLICT


def test_update_without_prior_is_an_error_response_that_creates_nothing(
    ig: Any, ids: Any, now: datetime
) -> None:
    update = parse_pas_request(ig(V)["Bundle-HomecareAuthorizationUpdateBundleExample.json"], V)
    assert "http://example.org/PATIENT_EVENT_TRACE_NUMBER|111099" in lookup_keys(update)
    result = process_submit(update, None, evaluate=_approve, ids=ids, now=now)
    assert result.kind is SubmissionKind.UPDATE and result.creates_nothing
    cr = claim_response_of(result.response)
    assert cr is not None and cr["outcome"] == "error" and result.errors


def test_update_of_a_stored_request(ig: Any, ids: Any, now: datetime) -> None:
    original = parse_pas_request(ig(V)["Bundle-HomecareAuthorizationBundleExample.json"], V)
    first = process_submit(original, None, evaluate=_approve, ids=ids, now=now)
    update = parse_pas_request(ig(V)["Bundle-HomecareAuthorizationUpdateBundleExample.json"], V)
    second = process_submit(update, first.stored, evaluate=_approve, ids=ids, now=now)
    assert second.kind is SubmissionKind.UPDATE and second.stored is not None
    assert [i.action.value for i in second.stored.decision.items] == ["A1", "C", "A1"]
    assert second.review is None
