"""Facts for ``evaluate_coverage`` read from FHIR JSON: CRD request resources, Patient, and PAS Claim items.

Accepts US Core 3.1.1, 6.1.0 and 7.0.0 shapes and the CRD profiles (CRD conf-2); anything absent is
simply unknown (CRD conf-12: omission of optional elements is not an error).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from .coverage import CodeRef, OrderFacts, PatientFacts
from .urls import CS_PLACE_OF_SERVICE, EXT_BILLING_OPTIONS, SID_NPI

REQUEST_TYPES = frozenset(
    {
        "CommunicationRequest",
        "DeviceRequest",
        "MedicationRequest",
        "NutritionOrder",
        "ServiceRequest",
        "VisionPrescription",
    }
)

_DAYS_PER_UNIT: Mapping[str, Decimal] = MappingProxyType(
    {
        "s": Decimal(1) / 86400,
        "min": Decimal(1) / 1440,
        "h": Decimal(1) / 24,
        "d": Decimal(1),
        "wk": Decimal(7),
        "mo": Decimal(30),
        "a": Decimal(365),
    }
)


def _codings(concept: object) -> list[CodeRef]:
    if not isinstance(concept, dict):
        return []
    out = []
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            out.append(CodeRef(str(coding.get("system") or ""), coding["code"], coding.get("display")))
    # CRD ext-billing-options: the client's candidate billing codes (CRD billopt-3: consider them).
    for ext in concept.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == EXT_BILLING_OPTIONS:
            out.extend(_codings(ext.get("valueCodeableConcept")))
    return out


def _concepts(values: object) -> list[CodeRef]:
    if isinstance(values, dict):
        return _codings(values)
    if isinstance(values, list):
        return [c for v in values for c in _codings(v)]
    return []


def request_codes(
    resource: Mapping[str, Any], known: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[CodeRef, ...]:
    """The codes naming what a CRD request resource orders (incl. billing options).

    ``MedicationRequest.medicationReference`` and ``DeviceRequest.codeReference`` are followed into
    ``known`` ("Type/id" -> resource, e.g. the ``medications`` / ``devices`` prefetch).
    """
    codes = list(_own_codes(resource))
    for name, field_name in (("medicationReference", "code"), ("codeReference", "type")):
        ref = resource.get(name)
        if known and isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            parts = [p for p in ref["reference"].split("/") if p]
            target = known.get("/".join(parts[-2:]))
            if target is not None:
                codes += _codings(target.get(field_name))
    return tuple(codes)


def _own_codes(resource: Mapping[str, Any]) -> tuple[CodeRef, ...]:
    kind = resource.get("resourceType")
    codes: list[CodeRef] = []
    if kind == "MedicationRequest":
        codes += _codings(resource.get("medicationCodeableConcept"))
    elif kind == "DeviceRequest":
        codes += _codings(resource.get("codeCodeableConcept"))
    elif kind == "NutritionOrder":
        codes += _codings((resource.get("enteralFormula") or {}).get("baseFormulaType"))
        for diet in (
            resource.get("oralDiet", {}).get("type") or ()
            if isinstance(resource.get("oralDiet"), dict)
            else ()
        ):
            codes += _codings(diet)
    elif kind == "CommunicationRequest":
        for payload in resource.get("payload") or ():
            if isinstance(payload, dict):
                codes += _codings(payload.get("contentCodeableConcept"))
    elif kind == "Appointment":
        codes += _concepts(resource.get("serviceType"))
    else:
        codes += _codings(resource.get("code"))
    return tuple(codes)


def _parse_date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, float, str)):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


def _rate_per_day(timing: object) -> Decimal | None:
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if not isinstance(repeat, dict):
        return None
    frequency = _decimal(repeat.get("frequency", 1))
    period = _decimal(repeat.get("period"))
    unit = repeat.get("periodUnit")
    if frequency is None or period is None or period <= 0 or unit not in _DAYS_PER_UNIT:
        return None
    return frequency / (period * _DAYS_PER_UNIT[str(unit)])


def _npis(references: Iterable[object], resources: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    out: list[str] = []
    for ref in references:
        if not isinstance(ref, dict):
            continue
        ident = ref.get("identifier")
        if isinstance(ident, dict) and ident.get("system") == SID_NPI and isinstance(ident.get("value"), str):
            out.append(ident["value"])
        target = resources.get(str(ref.get("reference") or ""))
        if target is None and isinstance(ref.get("reference"), str):
            target = resources.get("/".join(ref["reference"].split("/")[-2:]))
        for ident in (target or {}).get("identifier") or ():
            if (
                isinstance(ident, dict)
                and ident.get("system") == SID_NPI
                and isinstance(ident.get("value"), str)
            ):
                out.append(ident["value"])
    return tuple(dict.fromkeys(out))


def order_facts_from_request(
    resource: Mapping[str, Any],
    reference: str,
    *,
    known: Mapping[str, Mapping[str, Any]] | None = None,
    place_of_service: Sequence[CodeRef] = (),
) -> OrderFacts:
    """Facts from a CRD request resource (ServiceRequest, DeviceRequest, MedicationRequest, ...).

    ``known`` maps "Type/id" to resources from prefetch (to read NPIs of the requester/performer);
    ``place_of_service`` adds codes known from elsewhere (e.g. the encounter's location).
    """
    kind = resource.get("resourceType")
    known = known or {}
    diagnoses = _concepts(resource.get("reasonCode"))
    pos = [c for c in _concepts(resource.get("locationCode")) if c.system == CS_PLACE_OF_SERVICE]
    quantity: Decimal | None = None
    rate: Decimal | None = None
    service: date | None = None
    if kind == "ServiceRequest":
        quantity = _decimal((resource.get("quantityQuantity") or {}).get("value"))
        rate = _rate_per_day(resource.get("occurrenceTiming"))
        service = _parse_date(resource.get("occurrenceDateTime")) or _parse_date(
            (resource.get("occurrencePeriod") or {}).get("start")
        )
    elif kind == "MedicationRequest":
        quantity = _decimal(((resource.get("dispenseRequest") or {}).get("quantity") or {}).get("value"))
        dosage = resource.get("dosageInstruction") or []
        if dosage and isinstance(dosage[0], dict):
            rate = _rate_per_day(dosage[0].get("timing"))
    elif kind == "DeviceRequest":
        rate = _rate_per_day(resource.get("occurrenceTiming"))
        service = _parse_date(resource.get("occurrenceDateTime"))
    performers = resource.get("performer")
    refs: list[object] = [resource.get("requester")]
    refs += performers if isinstance(performers, list) else [performers]
    return OrderFacts(
        reference=reference,
        codes=request_codes(resource, known),
        diagnoses=tuple(diagnoses),
        place_of_service=tuple(pos) + tuple(place_of_service),
        quantity=quantity,
        occurrences_per_day=rate,
        provider_npis=_npis(refs, known),
        service_date=service,
        resource=resource,
    )


def patient_facts(
    patient: Mapping[str, Any] | None,
    conditions: Iterable[Mapping[str, Any]] = (),
    medications: Iterable[Mapping[str, Any]] | None = None,
) -> PatientFacts:
    """Facts from a Patient plus any Conditions and medication history available (None: unknown)."""
    patient = patient or {}
    diagnoses = tuple(c for cond in conditions for c in _codings(cond.get("code")))
    history: tuple[CodeRef, ...] | None = None
    if medications is not None:
        history = tuple(
            c
            for med in medications
            for c in request_codes(med) or _codings(med.get("medicationCodeableConcept"))
        )
    gender = patient.get("gender")
    return PatientFacts(
        birth_date=_parse_date(patient.get("birthDate")),
        gender=gender if isinstance(gender, str) else None,
        diagnoses=diagnoses,
        prior_therapies=history,
        resource=patient or None,
    )


def order_facts_from_claim_item(claim: Mapping[str, Any], item: Mapping[str, Any]) -> OrderFacts:
    """Facts from one PAS Claim item (PAS 2.x profile-claim), so adjudication reuses ``evaluate_coverage``.

    Diagnoses come from the Claim diagnoses the item points at (all of them when it points at none);
    place of service from ``item.locationCodeableConcept``; NPIs from ``Claim.provider`` and the care team
    (identifiers on the references or contained resources).
    """
    seqs = set(item.get("diagnosisSequence") or ())
    diagnoses: list[CodeRef] = []
    for dx in claim.get("diagnosis") or ():
        if isinstance(dx, dict) and (not seqs or dx.get("sequence") in seqs):
            diagnoses += _codings(dx.get("diagnosisCodeableConcept"))
    contained = {
        f"#{r.get('id')}": r for r in claim.get("contained") or () if isinstance(r, dict) and r.get("id")
    }
    refs: list[object] = [claim.get("provider")]
    refs += [m.get("provider") for m in claim.get("careTeam") or () if isinstance(m, dict)]
    service = _parse_date(item.get("servicedDate")) or _parse_date(
        (item.get("servicedPeriod") or {}).get("start")
    )
    return OrderFacts(
        reference=f"Claim/{claim.get('id', '')}#item{item.get('sequence', '')}",
        codes=tuple(_codings(item.get("productOrService"))),
        diagnoses=tuple(diagnoses),
        place_of_service=tuple(_codings(item.get("locationCodeableConcept"))),
        quantity=_decimal((item.get("quantity") or {}).get("value")),
        provider_npis=_npis(refs, contained),
        service_date=service,
        resource=item,
    )
