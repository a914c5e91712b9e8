"""Every demo rule through the one pure evaluation, and the invariants of what it returns."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from cds_hooks import (
    CodeRef,
    CrdVersion,
    EvaluationContext,
    OrderFacts,
    PatientFacts,
    coverage_information_problems,
    evaluate_coverage,
    order_facts_from_claim_item,
    order_facts_from_request,
    patient_facts,
    render_coverage_information,
)
from igs.outcome import OperationOutcomeError

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
CTX = EvaluationContext("PGDEMO", "gold", date(2026, 11, 25))
ADULT = PatientFacts(birth_date=date(1960, 4, 12), gender="female")


def order(system: str, code: str, **kw: Any) -> OrderFacts:
    return OrderFacts(reference="ServiceRequest/x", codes=(CodeRef(system, code),), **kw)


def dx(code: str) -> tuple[CodeRef, ...]:
    return (CodeRef(ICD10, code),)


def pos(code: str) -> tuple[CodeRef, ...]:
    return (CodeRef(POS, code),)


METHOTREXATE = (CodeRef(RXNORM, "6851"),)
EIGHT_WEEKLY = Decimal(1) / Decimal(56)

# (case id, order facts, patient facts, covered, pa-needed, doc-needed, questionnaires)
CASES = [
    ("office visit", order(CPT, "99213"), ADULT, "covered", "no-auth", (), ()),
    ("chest x-ray", order(CPT, "71046"), ADULT, "covered", "no-auth", (), ()),
    ("unlisted code", order(CPT, "99999"), ADULT, "covered", "no-auth", (), ()),
    (
        "lumbar MRI, low back pain",
        order(CPT, "72148", diagnoses=dx("M54.50")),
        ADULT,
        "covered",
        "auth-needed",
        ("clinical",),
        ("https://priorgate.org/fhir/Questionnaire/lumbar-spine-mri|1.0.0",),
    ),
    ("lumbar MRI, red flag", order(CPT, "72149", diagnoses=dx("G83.4")), ADULT, "covered", "no-auth", (), ()),
    (
        "lumbar MRI, no diagnosis",
        order(CPT, "72158"),
        ADULT,
        "covered",
        "conditional",
        ("clinical",),
        ("https://priorgate.org/fhir/Questionnaire/lumbar-spine-mri|1.0.0",),
    ),
    (
        "CT abdomen",
        order(CPT, "74170"),
        ADULT,
        "covered",
        "auth-needed",
        ("clinical",),
        ("https://priorgate.org/fhir/Questionnaire/ct-abdomen|1.0.0",),
    ),
    (
        "CPAP adult",
        order(HCPCS, "E0601"),
        ADULT,
        "covered",
        "auth-needed",
        ("clinical",),
        ("https://priorgate.org/fhir/Questionnaire/cpap|1.0.0",),
    ),
    (
        "CPAP child",
        order(HCPCS, "E0601"),
        PatientFacts(birth_date=date(2015, 1, 1)),
        "not-covered",
        None,
        (),
        (),
    ),
    (
        "CPAP gold-carded",
        order(HCPCS, "E0601", provider_npis=("1234567893",)),
        ADULT,
        "covered",
        "no-auth",
        ("clinical",),
        ("https://priorgate.org/fhir/Questionnaire/cpap|1.0.0",),
    ),
    (
        "home oxygen at home",
        order(
            "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "E1390", place_of_service=pos("12")
        ),
        ADULT,
        "covered",
        "auth-needed",
        ("clinical",),
        (
            "https://priorgate.org/fhir/Questionnaire/home-oxygen|1.0.0",
            "https://priorgate.org/fhir/Questionnaire/home-oxygen-adaptive|1.0.0",
        ),
    ),
    (
        "home oxygen inpatient",
        order(HCPCS, "E1390", place_of_service=pos("21")),
        ADULT,
        "not-covered",
        None,
        (),
        (),
    ),
    (
        "infliximab, criteria met",
        order(
            HCPCS,
            "J1745",
            diagnoses=dx("K50.90"),
            quantity=Decimal(50),
            occurrences_per_day=EIGHT_WEEKLY,
            resource={},
        ),
        PatientFacts(birth_date=date(1980, 1, 1), prior_therapies=METHOTREXATE),
        "covered",
        "auth-needed",
        ("clinical",),
        ("https://priorgate.org/fhir/Questionnaire/biologic-infusion|1.0.0",),
    ),
    (
        "infliximab, history unknown",
        order(
            HCPCS,
            "J1745",
            diagnoses=dx("K50.90"),
            quantity=Decimal(50),
            occurrences_per_day=EIGHT_WEEKLY,
            resource={},
        ),
        ADULT,
        "conditional",
        "auth-needed",
        ("clinical",),
        ("https://priorgate.org/fhir/Questionnaire/biologic-infusion|1.0.0",),
    ),
    (
        "knee arthroplasty, hospital",
        order(CPT, "27447", place_of_service=pos("22")),
        ADULT,
        "covered",
        "auth-needed",
        ("clinical", "admin"),
        ("https://priorgate.org/fhir/Questionnaire/total-knee-arthroplasty|1.0.0",),
    ),
    (
        "knee arthroplasty, office",
        order(CPT, "27447", place_of_service=pos("11")),
        ADULT,
        "not-covered",
        None,
        (),
        (),
    ),
]


@pytest.mark.parametrize(("name", "facts", "patient", "covered", "pa", "docs", "questionnaires"), CASES)
def test_demo_rule_decisions(
    policies: Any,
    name: str,
    facts: OrderFacts,
    patient: PatientFacts,
    covered: str,
    pa: str | None,
    docs: tuple[str, ...],
    questionnaires: tuple[str, ...],
) -> None:
    decision = evaluate_coverage(policies, facts, patient, CTX)
    assert (decision.covered, decision.pa_needed, decision.doc_needed, decision.questionnaires) == (
        covered,
        pa,
        docs,
        questionnaires,
    ), name
    for version in CrdVersion:
        ext = render_coverage_information(
            decision, version=version, coverage_reference="Coverage/c", assertion_id="a1", on=CTX.today
        )
        assert coverage_information_problems(ext, version) == [], (name, version)


def test_gold_card_reason_and_no_withpa(policies: Any) -> None:
    decision = evaluate_coverage(policies, order(HCPCS, "E0601", provider_npis=("1234567893",)), ADULT, CTX)
    assert decision.reasons[0].code == "gold-card"
    assert "withpa" not in decision.doc_purpose


def test_missing_data_is_conditional_with_reason(policies: Any) -> None:
    decision = evaluate_coverage(policies, order(CPT, "27447"), ADULT, CTX)
    assert decision.pa_needed == "conditional" and decision.covered == "conditional"
    assert decision.info_needed == ("OTH",)
    assert decision.undetermined == ("place of service",)
    assert any("place of service" in (r.text or "") for r in decision.reasons)


def test_fhirpath_condition_reads_the_order(policies: Any, kit: ModuleType) -> None:
    resource = kit.medication_request("m1", dispenseRequest={"quantity": {"value": 150}})
    facts = order_facts_from_request(resource, "MedicationRequest/m1")
    decision = evaluate_coverage(policies, facts, ADULT, CTX)
    assert decision.covered == "not-covered" and decision.matched_case == "dose above policy limit"


def test_unknown_payer_is_a_400(policies: Any) -> None:
    with pytest.raises(OperationOutcomeError) as err:
        evaluate_coverage(policies, order(CPT, "99213"), ADULT, EvaluationContext("OTHER", None, CTX.today))
    assert err.value.failure.value == "invalid"


def test_version_specific_codes(policies: Any) -> None:
    decision = evaluate_coverage(policies, order(CPT, "27447", place_of_service=pos("22")), ADULT, CTX)
    v20 = render_coverage_information(
        decision, version=CrdVersion.V2_0, coverage_reference="Coverage/c", assertion_id="a", on=CTX.today
    )
    v22 = render_coverage_information(
        decision, version=CrdVersion.V2_2, coverage_reference="Coverage/c", assertion_id="a", on=CTX.today
    )
    docs20 = [s["valueCode"] for s in v20["extension"] if s["url"] == "doc-needed"]
    docs22 = [s["valueCode"] for s in v22["extension"] if s["url"] == "doc-needed"]
    assert docs20 == ["both"] and docs22 == ["clinical", "admin"]
    assert any(s["url"] == "detail" for s in v22["extension"])
    assert not any(s["url"] == "detail" for s in v20["extension"])


def test_claim_item_facts_give_the_same_decision_as_the_order(policies: Any, kit: ModuleType) -> None:
    claim = {
        "resourceType": "Claim",
        "id": "c1",
        "diagnosis": [
            {"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": ICD10, "code": "M54.50"}]}}
        ],
        "provider": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1111111112"}},
        "item": [
            {
                "sequence": 1,
                "diagnosisSequence": [1],
                "productOrService": {"coding": [{"system": CPT, "code": "72148"}]},
                "locationCodeableConcept": {"coding": [{"system": POS, "code": "22"}]},
                "quantity": {"value": 1},
                "servicedDate": "2026-12-01",
            }
        ],
    }
    from_claim = order_facts_from_claim_item(claim, claim["item"][0])
    assert from_claim.provider_npis == ("1111111112",)
    sr = kit.service_request(
        "sr1", CPT, "72148", reasonCode=[{"coding": [{"system": ICD10, "code": "M54.50"}]}]
    )
    from_order = order_facts_from_request(sr, "ServiceRequest/sr1")
    patient = patient_facts(kit.PATIENT)
    a = evaluate_coverage(policies, from_claim, patient, CTX)
    b = evaluate_coverage(policies, from_order, patient, CTX)
    assert (a.covered, a.pa_needed, a.doc_needed, a.rule_id) == (
        b.covered,
        b.pa_needed,
        b.doc_needed,
        b.rule_id,
    )
    assert a.pa_needed == "auth-needed"


def test_invariant_checker_catches_violations() -> None:
    ext = {
        "url": "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information",
        "extension": [
            {"url": "coverage", "valueReference": {"reference": "Coverage/c"}},
            {"url": "covered", "valueCode": "not-covered"},
            {"url": "pa-needed", "valueCode": "satisfied"},
            {"url": "questionnaire", "valueCanonical": "https://x/Q|1"},
            {"url": "date", "valueDate": "2026-11-25"},
            {"url": "coverage-assertion-id", "valueString": "a"},
        ],
    }
    problems = " ".join(coverage_information_problems(ext, CrdVersion.V2_2))
    for key in ("q1", "q2", "q5"):
        assert key in problems


def _one_rule(when: dict[str, Any], then: dict[str, Any], default: dict[str, Any]) -> Any:
    from cds_hooks import parse_payer_file
    from cds_hooks.policy import PolicySet

    payer = parse_payer_file(
        {
            "payer_id": "P",
            "payer_name": "Conditions Health",
            "unlisted": {"covered": "covered", "pa_needed": "no-auth"},
            "rules": [
                {
                    "id": "r",
                    "topic": "t",
                    "title": "Rule",
                    "codes": [{"system": CPT, "code": "1"}],
                    "plans": ["gold"],
                    "effective_start": date(2025, 1, 1),
                    "effective_end": date(2026, 12, 31),
                    "last_reviewed": date(2026, 1, 1),
                    "default": default,
                    "cases": [{"name": "case", "when": when, "then": then}],
                }
            ],
        },
        "test.toml",
    )
    return PolicySet.of([payer])


def test_gender_age_plan_and_effective_period_conditions() -> None:
    policies = _one_rule(
        {"gender": ["female"], "age_min": 40},
        {"pa_needed": "no-auth"},
        {"covered": "covered", "pa_needed": "auth-needed"},
    )
    facts = order(CPT, "1")
    ctx = EvaluationContext("P", "gold", CTX.today)

    def pa(patient: PatientFacts, context: EvaluationContext = ctx, facts: OrderFacts = facts) -> str | None:
        return evaluate_coverage(policies, facts, patient, context).pa_needed

    assert pa(PatientFacts(birth_date=date(1970, 1, 1), gender="female")) == "no-auth"
    assert pa(PatientFacts(birth_date=date(1970, 1, 1), gender="male")) == "auth-needed"
    assert pa(PatientFacts(birth_date=date(2000, 1, 1), gender="female")) == "auth-needed"
    assert pa(PatientFacts(birth_date=date(1970, 1, 1))) == "conditional"  # gender unknown
    # Another plan, or a service date outside the effective period: the payer's unlisted answer.
    assert pa(ADULT, EvaluationContext("P", "silver", CTX.today)) == "no-auth"
    late = OrderFacts("ServiceRequest/x", (CodeRef(CPT, "1"),), service_date=date(2027, 3, 1))
    assert evaluate_coverage(policies, late, ADULT, ctx).rule_id is None
