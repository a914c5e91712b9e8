"""The PAS :class:`CoverageEvaluator` port over the CRD coverage rules (``cds_hooks.evaluate_coverage``).

One source of truth: a PAS Claim item is decided from the same payer policies that answer CRD hooks
(PAS 2.x "Relationship with CRD"; the adapter table is in ``server/pas/README.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from cds_hooks import CodeRef, EvaluationContext, OrderFacts, PatientFacts, PolicySet, evaluate_coverage

from .fhirdata import Code
from .ports import CoverageFinding, CoverageQuery, Covered, PaNeeded

UNKNOWN_SYSTEM = ""


def _ref(code: Code) -> CodeRef:
    return CodeRef(code.system or UNKNOWN_SYSTEM, code.code, code.display)


def _date(raw: str | None) -> date | None:
    if not raw or len(raw) < 10:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class PolicyCoverageRules:
    """``CoverageEvaluator`` over a CRD :class:`PolicySet`.

    The payer is the first insurer identifier whose value names a loaded payer; otherwise
    ``default_payer`` (a single-payer deployment answers for whatever identifier the submitter uses).
    An unknown payer with no default raises the CRD 400, which the PAS core turns into a pended item.
    """

    policies: PolicySet
    default_payer: str | None = None
    payer_aliases: Mapping[str, str] = field(default_factory=dict)  # identifier value -> policy payer id

    def payer_id(self, query: CoverageQuery) -> str:
        for ident in query.payer_ids:
            if ident.value in self.policies.payers:
                return ident.value
            if ident.value in self.payer_aliases:
                return self.payer_aliases[ident.value]
        return self.default_payer or (query.payer_ids[0].value if query.payer_ids else "")

    def __call__(self, query: CoverageQuery) -> CoverageFinding:
        """Evaluate one requested service with CRD 2.2 §Coverage Information semantics."""
        codes = tuple(_ref(c) for c in query.product_codes) or (
            (_ref(query.product),) if query.product is not None else ()
        )
        order = OrderFacts(
            reference=query.order_reference or "",
            codes=codes,
            diagnoses=tuple(_ref(c) for c in query.diagnoses),
            place_of_service=(_ref(query.location),) if query.location is not None else (),
            quantity=query.quantity,
            provider_npis=query.provider_npis,
            service_date=_date(query.serviced.start if query.serviced else None),
            resource=query.order_resource,
        )
        patient = PatientFacts(
            birth_date=_date(query.patient_birth_date),
            gender=query.patient_gender,
            diagnoses=tuple(_ref(c) for c in query.diagnoses),
            resource=query.patient_resource,
        )
        context = EvaluationContext(self.payer_id(query), query.line_of_business, query.today)
        decision = evaluate_coverage(self.policies, order, patient, context)
        alternate = decision.alternate
        return CoverageFinding(
            covered=cast(Covered, decision.covered),
            pa_needed=cast(PaNeeded, decision.pa_needed) if decision.pa_needed is not None else None,
            doc_needed=decision.doc_needed,
            reasons=tuple(r.text for r in decision.reasons if r.text),
            expiry=decision.expiry_date,
            questionnaires=tuple(decision.questionnaires),
            authorized_product=(
                Code(alternate.code.system, alternate.code.code, alternate.code.display)
                if alternate is not None
                else None
            ),
        )
