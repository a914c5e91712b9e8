"""The one coverage evaluation shared by CRD (order time) and PAS (adjudication).

``evaluate_coverage`` is pure: rules, facts about the order and the patient, and the evaluation
context in; a ``CoverageDecision`` out. CRD renders it as the coverage-information extension
(CRD 2.2 §Coverage Information); PAS adjudication calls the same function with facts built from a
Claim item (``facts.order_facts_from_claim_item``) so CRD and PAS can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from igs.outcome import invalid

from .policy import (
    Alternate,
    Case,
    Code,
    Companion,
    Conditions,
    Link,
    Outcome,
    PolicySet,
    Reason,
    Rule,
    is_stale,
)
from .urls import CS_CRD_TEMP, HCPCS_ALIASES


@dataclass(frozen=True)
class CodeRef:
    """A code with its system, as read from FHIR (HCPCS system aliases compare equal)."""

    system: str
    code: str
    display: str | None = None

    def matches(self, other: Code | CodeRef) -> bool:
        return self.code == other.code and _same_system(self.system, other.system)


def _same_system(a: str, b: str) -> bool:
    return a == b or (a in HCPCS_ALIASES and b in HCPCS_ALIASES)


@dataclass(frozen=True)
class OrderFacts:
    """What the rules read from one order (a CRD request resource or a PAS Claim item)."""

    reference: str  # "ServiceRequest/123": the in-scope resource the decision is about
    codes: tuple[CodeRef, ...]
    diagnoses: tuple[CodeRef, ...] = ()
    place_of_service: tuple[CodeRef, ...] = ()
    quantity: Decimal | None = None
    occurrences_per_day: Decimal | None = None  # from the order's timing; None when not stated
    provider_npis: tuple[str, ...] = ()  # requester / performer, for gold-carding
    service_date: date | None = None
    resource: Mapping[str, Any] | None = field(default=None, compare=False)  # for FHIRPath conditions


@dataclass(frozen=True)
class PatientFacts:
    """What the rules read about the patient; ``None`` members are unknown, not absent."""

    birth_date: date | None = None
    gender: str | None = None
    diagnoses: tuple[CodeRef, ...] = ()
    prior_therapies: tuple[CodeRef, ...] | None = None  # None: history not available
    resource: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EvaluationContext:
    """The payer and plan from the primary Coverage, and the evaluation date."""

    payer_id: str
    plan: str | None
    today: date


@dataclass(frozen=True)
class CoverageDecision:
    """A payer's answer for one order, version-neutral (rendered per CRD version later)."""

    covered: str
    pa_needed: str | None
    doc_needed: tuple[str, ...]
    doc_purpose: tuple[str, ...]
    info_needed: tuple[str, ...]
    billing_codes: tuple[Code, ...]
    reasons: tuple[Reason, ...]
    questionnaires: tuple[str, ...]
    policy_links: tuple[Link, ...]
    instructions: str | None
    expiry_date: date | None
    payer_id: str
    payer_name: str
    rule_id: str | None  # None: no rule names the service (the payer's "unlisted" answer)
    topic: str | None
    title: str | None
    matched_case: str | None
    undetermined: tuple[str, ...]  # conditions that could not be evaluated for lack of data
    stale: bool  # the rule is past its review date: still answers, flagged in logs and metrics
    alternate: Alternate | None
    companions: tuple[Companion, ...]


_UNKNOWN = None  # tri-state condition result: True, False or unknown


def _diagnoses(order: OrderFacts, patient: PatientFacts) -> tuple[CodeRef, ...]:
    return order.diagnoses + patient.diagnoses


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _fhirpath(expression: str, order: OrderFacts, patient: PatientFacts) -> bool | None:
    if order.resource is None:
        return _UNKNOWN
    from fhirpathpy import evaluate  # imported lazily: only rules with FHIRPath conditions pay for it

    try:
        result = evaluate(dict(order.resource), expression, {"patient": patient.resource})
    except Exception:  # a rule expression that does not fit this resource is "cannot tell"
        return _UNKNOWN
    if not result:
        return False
    return all(item is True for item in result)


def _check(
    conditions: Conditions, order: OrderFacts, patient: PatientFacts, on: date
) -> dict[str, bool | None]:
    """Each present condition's result: True, False, or None when the data to decide is missing."""
    out: dict[str, bool | None] = {}
    if conditions.diagnosis is not None or conditions.diagnosis_prefixes is not None:
        dx = _diagnoses(order, patient)
        if not dx:
            out["diagnosis"] = _UNKNOWN
        else:
            exact = any(d.matches(c) for d in dx for c in conditions.diagnosis or ())
            prefix = any(
                _same_system(d.system, c.system)
                and d.code.replace(".", "").startswith(c.code.replace(".", ""))
                for d in dx
                for c in conditions.diagnosis_prefixes or ()
            )
            out["diagnosis"] = exact or prefix
    if conditions.age_min is not None or conditions.age_max is not None:
        if patient.birth_date is None:
            out["age"] = _UNKNOWN
        else:
            age = _age(patient.birth_date, on)
            out["age"] = (conditions.age_min is None or age >= conditions.age_min) and (
                conditions.age_max is None or age <= conditions.age_max
            )
    if conditions.gender is not None:
        known = patient.gender not in (None, "unknown")
        out["gender"] = (patient.gender in conditions.gender) if known else _UNKNOWN
    if conditions.place_of_service is not None:
        if not order.place_of_service:
            out["place of service"] = _UNKNOWN
        else:
            out["place of service"] = any(
                p.matches(c) for p in order.place_of_service for c in conditions.place_of_service
            )
    if conditions.quantity_max is not None:
        q = order.quantity
        out["quantity"] = _UNKNOWN if q is None else q <= Decimal(str(conditions.quantity_max))
    if conditions.frequency is not None:
        rate = order.occurrences_per_day
        if rate is None:
            out["frequency"] = _UNKNOWN
        else:
            per_period = rate * conditions.frequency.period_days
            out["frequency"] = per_period <= conditions.frequency.max_occurrences
    if conditions.prior_therapy is not None:
        history = patient.prior_therapies
        if history is None:
            out["prior therapy"] = _UNKNOWN
        else:
            out["prior therapy"] = any(h.matches(c) for h in history for c in conditions.prior_therapy)
    if conditions.fhirpath is not None:
        out["fhirpath"] = _fhirpath(conditions.fhirpath, order, patient)
    return out


def _merge(base: Outcome, override: Outcome) -> Outcome:
    updates = {name: value for name, value in override if value is not None}
    return base.model_copy(update=updates)


def _select_rule(policies: PolicySet, order: OrderFacts, context: EvaluationContext, on: date) -> Rule | None:
    for code in order.codes:
        for rule in policies.rules_for(context.payer_id, code.system, code.code):
            if rule.plans is not None and context.plan not in rule.plans:
                continue
            if on < rule.effective_start or (rule.effective_end is not None and on > rule.effective_end):
                continue
            return rule
    return None


def _resolve_cases(
    cases: Sequence[Case], default: Outcome, order: OrderFacts, patient: PatientFacts, on: date
) -> tuple[Outcome, str | None, tuple[str, ...]]:
    """First case whose conditions all hold wins; an undecidable case before it makes it conditional."""
    outcome = default
    undetermined: list[str] = []
    for case in cases:
        results = _check(case.when, order, patient, on)
        if any(r is False for r in results.values()):
            continue
        if all(r is True for r in results.values()):
            if not undetermined:
                return _merge(default, case.then), case.name, ()
            break
        # Could hold: the answer depends on data we do not have.
        undetermined.extend(name for name, r in results.items() if r is None)
        alternative = _merge(default, case.then)
        update: dict[str, Any] = {}
        if alternative.covered != outcome.covered:
            update["covered"] = "conditional"
        if alternative.pa_needed != outcome.pa_needed:
            update["pa_needed"] = "conditional"
        outcome = outcome.model_copy(update=update)
    if undetermined:
        names = tuple(dict.fromkeys(undetermined))
        reason = Reason(text=f"Decision depends on information not supplied: {', '.join(names)}")
        outcome = outcome.model_copy(
            update={
                "info_needed": list(dict.fromkeys([*(outcome.info_needed or []), "OTH"])),
                "reasons": [*(outcome.reasons or []), reason],
            }
        )
        return outcome, None, names
    return outcome, None, ()


GOLD_CARD_REASON = Reason(
    code="gold-card", system=CS_CRD_TEMP, text="Provider is gold-carded for this service"
)


def technical_failure(decision: CoverageDecision, lost: Sequence[str]) -> CoverageDecision:
    """CRD resp-43: a decision that hinges on data the EHR's FHIR server failed to return (down, slow past
    the outbound timeout) is ``indeterminate`` with reason ``technical``, not a guess."""
    if not lost or "conditional" not in (decision.covered, decision.pa_needed):
        return decision
    reason = Reason(
        code="technical",
        system=CS_CRD_TEMP,
        text=f"The EHR FHIR server could not be queried for: {', '.join(lost)}; ask again later",
    )
    return _apply_invariants(
        replace(
            decision,
            covered="indeterminate" if decision.covered == "conditional" else decision.covered,
            pa_needed="indeterminate" if decision.pa_needed == "conditional" else decision.pa_needed,
            reasons=(*decision.reasons, reason),
        )
    )


def _apply_invariants(decision: CoverageDecision) -> CoverageDecision:
    """Make the decision satisfy invariants crd-ci-q1..q9 of both 2.0.1 and 2.2 whatever the rule says."""
    d = decision
    if d.covered == "not-covered":
        d = replace(
            d, pa_needed=None, doc_purpose=tuple(p for p in d.doc_purpose if p != "withpa")
        )  # q2 (2.2)
    elif d.pa_needed is None:
        d = replace(d, pa_needed="no-auth")  # q2 (2.0.1): pa-needed present unless not covered
    if d.pa_needed in ("no-auth", "satisfied") or d.pa_needed is None:
        d = replace(d, doc_purpose=tuple(p for p in d.doc_purpose if p != "withpa"))  # q4
    if d.questionnaires and not d.doc_needed:
        d = replace(d, questionnaires=())  # q1
    if not d.doc_needed:
        d = replace(d, doc_purpose=())
    values = (d.covered, d.pa_needed, *d.doc_needed)
    if "conditional" in values and not d.info_needed:
        d = replace(d, info_needed=("OTH",))  # q3 (2.2)
    if d.info_needed and "conditional" not in values:
        d = replace(d, info_needed=())  # q3 (2.0.1)
    # q6, q8, q9 (detail-code renders as OTH in 2.0.1, so it needs a reason too)
    needs_reason = (
        bool({"OTH", "detail-code"} & set(d.info_needed)) or bool(d.doc_purpose) or "indeterminate" in values
    )
    if needs_reason and not d.reasons:
        d = replace(d, reasons=(Reason(text="See the payer policy for the documentation requirements"),))
    return d


def evaluate_coverage(
    policies: PolicySet, order: OrderFacts, patient: PatientFacts, context: EvaluationContext
) -> CoverageDecision:
    """Decide coverage, prior-authorization and documentation needs for one order.

    CRD 2.2 §Coverage Information (ext-coverage-information) semantics; the result satisfies the
    extension's invariants q1-q9. Missing data never raises: it yields ``conditional`` with
    ``info-needed`` (CRD resp-42). An unknown payer raises 400 (CRD hook-13).
    """
    payer = policies.payers.get(context.payer_id)
    if payer is None:
        raise invalid(f"Payer {context.payer_id!r} is not handled by this service", "Coverage.payor")
    on = order.service_date or context.today
    rule = _select_rule(policies, order, context, on)
    undetermined: tuple[str, ...] = ()
    case_name: str | None = None
    if rule is None:
        outcome = payer.unlisted
    else:
        outcome, case_name, undetermined = _resolve_cases(rule.cases, rule.default, order, patient, on)
    reasons = tuple(outcome.reasons or ())
    pa_needed = outcome.pa_needed
    doc_purpose = tuple(outcome.doc_purpose or ())
    if (
        rule is not None
        and pa_needed in ("auth-needed", "performpa")
        and any(npi in rule.gold_carded_npis for npi in order.provider_npis)
    ):
        pa_needed = "no-auth"
        reasons = (GOLD_CARD_REASON, *reasons)
    expiry = on + timedelta(days=outcome.expiry_days) if outcome.expiry_days else None
    decision = CoverageDecision(
        covered=outcome.covered or "covered",
        pa_needed=pa_needed,
        doc_needed=tuple(dict.fromkeys(outcome.doc_needed or ())),
        doc_purpose=doc_purpose,
        info_needed=tuple(dict.fromkeys(outcome.info_needed or ())),
        billing_codes=tuple(outcome.billing_codes or ()),
        reasons=reasons,
        questionnaires=tuple(outcome.questionnaires or ()),
        policy_links=tuple(outcome.policy_links or ()),
        instructions=outcome.instructions,
        expiry_date=expiry,
        payer_id=payer.id,
        payer_name=payer.name,
        rule_id=rule.id if rule else None,
        topic=rule.topic if rule else None,
        title=rule.title if rule else None,
        matched_case=case_name,
        undetermined=undetermined,
        stale=bool(rule and is_stale(rule, context.today)),
        alternate=rule.alternate if rule else None,
        companions=tuple(rule.companions) if rule else (),
    )
    return _apply_invariants(decision)


__all__ = [
    "CodeRef",
    "CoverageDecision",
    "EvaluationContext",
    "OrderFacts",
    "PatientFacts",
    "evaluate_coverage",
]
