"""Whatever a rule file says, the rendered coverage information satisfies crd-ci-q1..q9 in both versions."""

from __future__ import annotations

from datetime import date
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_hooks import (
    CodeRef,
    CrdVersion,
    EvaluationContext,
    OrderFacts,
    PatientFacts,
    coverage_information_problems,
    evaluate_coverage,
    parse_payer_file,
    render_coverage_information,
)
from cds_hooks.policy import Covered, DocNeeded, DocPurpose, InfoNeeded, PaNeeded, PolicySet

CPT = "http://www.ama-assn.org/go/cpt"
TODAY = date(2026, 11, 25)


def _subset(literal: Any) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(get_args(literal)), unique=True, max_size=3)


outcomes = st.fixed_dictionaries(
    {
        "covered": st.sampled_from(get_args(Covered)),
        "pa_needed": st.one_of(st.none(), st.sampled_from(get_args(PaNeeded))),
        "doc_needed": _subset(DocNeeded),
        "doc_purpose": _subset(DocPurpose),
        "info_needed": _subset(InfoNeeded),
        "questionnaires": st.lists(st.just("https://priorgate.org/fhir/Questionnaire/q|1.0.0"), max_size=1),
        "reasons": st.lists(
            st.one_of(
                st.fixed_dictionaries({"text": st.just("why")}),
                st.fixed_dictionaries({"code": st.sampled_from(["gold-card", "technical", "odd-code"])}),
            ),
            max_size=2,
        ),
        "expiry_days": st.one_of(st.none(), st.integers(1, 400)),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcome=outcomes, gold=st.booleans())
def test_rendered_extension_always_satisfies_the_invariants(outcome: dict[str, Any], gold: bool) -> None:
    outcome = {k: v for k, v in outcome.items() if v is not None}
    payer = parse_payer_file(
        {
            "payer_id": "P",
            "payer_name": "Property Health",
            "unlisted": {"covered": "covered"},
            "rules": [
                {
                    "id": "r",
                    "topic": "t",
                    "title": "Generated rule",
                    "codes": [{"system": CPT, "code": "1"}],
                    "effective_start": date(2025, 1, 1),
                    "last_reviewed": date(2026, 1, 1),
                    "default": outcome,
                    "gold_carded_npis": ["1234567893"],
                }
            ],
        },
        "generated.toml",
    )
    policies = PolicySet.of([payer])
    facts = OrderFacts(
        "ServiceRequest/1", (CodeRef(CPT, "1"),), provider_npis=("1234567893",) if gold else ()
    )
    decision = evaluate_coverage(policies, facts, PatientFacts(), EvaluationContext("P", None, TODAY))
    for version in CrdVersion:
        for satisfied_id in (None, "pa-1"):
            ext = render_coverage_information(
                decision,
                version=version,
                coverage_reference="Coverage/c",
                assertion_id="a",
                on=TODAY,
                satisfied_pa_id=satisfied_id,
            )
            assert coverage_information_problems(ext, version) == [], (version, outcome)
