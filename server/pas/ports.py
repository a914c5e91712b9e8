"""What the PAS core needs from the outside, as Protocols (implemented by cds_hooks, storage, settings).

The CRD coverage evaluation is injected so CRD and PAS decide from one source of truth; an adapter over
``cds_hooks.evaluate_coverage`` maps its result onto :class:`CoverageFinding` (CRD
``ext-coverage-information`` names: covered, pa-needed, doc-needed, coverage-assertion-id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from .codes import Urgency
from .fhirdata import Code, Ident, Period

Covered = Literal["covered", "not-covered", "conditional"]
PaNeeded = Literal["auth-needed", "no-auth", "satisfied", "performpa", "conditional"]


@dataclass(frozen=True)
class CoverageQuery:
    """One requested service, as the coverage rules see it."""

    payer_ids: tuple[Ident, ...]
    member_ids: tuple[Ident, ...]
    line_of_business: str | None
    product: Code | None
    product_codes: tuple[Code, ...]
    modifiers: tuple[Code, ...]
    quantity: Decimal | None
    serviced: Period | None
    location: Code | None
    diagnoses: tuple[Code, ...]
    coverage_assertion_ids: tuple[str, ...]
    urgency: Urgency
    today: date
    order_reference: str | None = None  # fullUrl of the requested service (ServiceRequest, ...)
    order_resource: Mapping[str, Any] | None = field(default=None, compare=False)  # for FHIRPath rules
    provider_npis: tuple[str, ...] = ()  # requesting and item care-team providers (gold-carding)
    patient_birth_date: str | None = None
    patient_gender: str | None = None
    patient_resource: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CoverageFinding:
    """The coverage-information the CRD rules produce for one service (CRD ``ext-coverage-information``)."""

    covered: Covered
    pa_needed: PaNeeded | None = None
    doc_needed: tuple[str, ...] = ()  # clinical | admin | patient | conditional
    reasons: tuple[str, ...] = ()
    coverage_assertion_id: str | None = None
    authorized_quantity: Decimal | None = None  # a limit below the requested quantity means A6
    authorized_product: Code | None = None  # an alternative service authorized instead means A6
    validity: timedelta | None = None  # how long an approval stays valid when no service period is given
    expiry: date | None = None  # the rule's coverage expiry: an approval never outlasts it
    questionnaires: tuple[str, ...] = ()  # DTR Questionnaire canonicals the documentation is asked with


@dataclass(frozen=True)
class StoredResponse:
    """A DTR QuestionnaireResponse the payer already holds (sent outside the PAS Bundle), found by the
    CRD coverage-assertion-id it carries, the order in its ``qr-context``, or the PAS trace number its
    ``qr-context`` names by identifier (PAS ainfo-3: the TRN is the DTR context id)."""

    reference: str  # "QuestionnaireResponse/123"
    status: str  # QuestionnaireResponse.status
    questionnaire: str | None
    coverage_assertion_ids: tuple[str, ...] = ()
    context_refs: tuple[str, ...] = ()  # "DeviceRequest/9": the orders it was filled in for
    context_ids: tuple[str, ...] = ()  # qr-context by identifier: a PAS trace number (DTR launched by PAS)
    requested: bool = True  # its questionnaire is one the coverage decision asked for (or none was named)

    @property
    def complete(self) -> bool:
        return self.status in ("completed", "amended")

    @property
    def usable(self) -> bool:
        """Counts as the documentation a rule needs: completed, and for a questionnaire that was asked for."""
        return self.complete and self.requested


class CoverageEvaluator(Protocol):
    """``cds_hooks.evaluate_coverage`` adapted to one requested service. Raises OperationOutcomeError
    (UNAVAILABLE) when the rules cannot be evaluated; PAS then pends instead of failing."""

    def __call__(self, query: CoverageQuery) -> CoverageFinding: ...


class IdFactory(Protocol):
    """Identifiers minted by PriorGate: resource ids and authorization (certification) numbers."""

    def new_id(self) -> str: ...

    def authorization_number(self) -> str: ...
