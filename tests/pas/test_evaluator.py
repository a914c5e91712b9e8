"""The PAS coverage port over the CRD rules: CRD and PAS answer the same for the same code and patient."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_hooks import (
    DEMO_POLICY_DIR,
    EvaluationContext,
    evaluate_coverage,
    load_policies,
    order_facts_from_claim_item,
    patient_facts,
)
from conformance.suites import pas_server
from server.pas import CoverageFinding, CoverageQuery, PasVersion, ReviewAction, decide, parse_pas_request
from server.pas.evaluator import PolicyCoverageRules

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
POLICIES = load_policies(DEMO_POLICY_DIR)


class Ids:
    def __init__(self) -> None:
        self.n = 0

    def new_id(self) -> str:
        self.n += 1
        return f"id-{self.n}"

    def authorization_number(self) -> str:
        self.n += 1
        return f"PG{self.n:07d}"


@pytest.mark.parametrize("code", ["72148", "97110", "99213", "74170", "74150"])
def test_crd_and_pas_agree_for_the_same_code_and_patient(code: str) -> None:
    bundle = pas_server.request_bundle("E1", (code,))
    request = parse_pas_request(bundle, PasVersion.V2_2_1)
    rules = PolicyCoverageRules(POLICIES, default_payer="PGDEMO")
    seen: list[tuple[CoverageQuery, CoverageFinding]] = []

    def spy(query: CoverageQuery) -> CoverageFinding:
        finding = rules(query)
        seen.append((query, finding))
        return finding

    decide(request, spy, Ids(), NOW)
    ((query, finding),) = seen
    claim = bundle["entry"][0]["resource"]
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    crd = evaluate_coverage(
        POLICIES,
        order_facts_from_claim_item(claim, claim["item"][0]),
        patient_facts(patient),
        EvaluationContext("PGDEMO", query.line_of_business, NOW.date()),
    )
    assert (finding.covered, finding.pa_needed, finding.doc_needed) == (
        crd.covered,
        crd.pa_needed,
        crd.doc_needed,
    )
    assert finding.reasons == tuple(r.text for r in crd.reasons if r.text)


def test_demo_rules_pend_lumbar_mri_without_documentation_and_approve_unlisted() -> None:
    bundle = pas_server.request_bundle("E2", ("72148", "97110"))
    request = parse_pas_request(bundle, PasVersion.V2_0_1)
    decision = decide(request, PolicyCoverageRules(POLICIES, default_payer="PGDEMO"), Ids(), NOW)
    actions = {i.sequence: i.action for i in decision.items}
    assert actions == {1: ReviewAction.PENDED, 2: ReviewAction.CERTIFIED}


def test_a_known_payer_identifier_wins_over_the_default() -> None:
    rules = PolicyCoverageRules(POLICIES, default_payer="OTHER")
    bundle = pas_server.request_bundle("E3", ("99213",))
    request = parse_pas_request(bundle, PasVersion.V2_2_1)
    captured: list[CoverageQuery] = []
    decide(request, lambda q: captured.append(q) or rules(q), Ids(), NOW)  # type: ignore[func-returns-value]
    query = captured[0]
    assert rules.payer_id(query) == "OTHER"
    aliased = PolicyCoverageRules(POLICIES, payer_aliases={query.payer_ids[0].value: "PGDEMO"})
    assert aliased.payer_id(query) == "PGDEMO"
    assert aliased(query).pa_needed == "no-auth"


def test_an_unknown_payer_without_default_pends_the_item() -> None:
    bundle = pas_server.request_bundle("E4", ("99213",))
    request = parse_pas_request(bundle, PasVersion.V2_2_1)
    decision = decide(request, PolicyCoverageRules(POLICIES), Ids(), NOW)
    assert decision.items[0].action is ReviewAction.PENDED
