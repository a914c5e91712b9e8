"""The six CRD hooks PriorGate serves: ids, descriptions, prefetch templates, required context.

Templates are the CRD 2.2 standard prefetch (CDS Hooks 3.0 simple FHIRPath tokens, CRD found-24),
trimmed to what the coverage rules read (CRD found-26/27); ``|context.order...`` unions also cover the
order-dispatch context shape used with CRD 2.0.1 (``order``/``performer``/``task``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

PATIENT = "Patient/{{context.patientId}}"
ENCOUNTER = "Encounter/{{context.encounterId}}"
COVERAGE = "Coverage?patient={{context.patientId}}&status=active"
_DRAFT = "context.draftOrders.entry.resource"
_ORDER_SIGN_PREFETCH = {
    "patient": PATIENT,
    "encounter": ENCOUNTER,
    "coverage": COVERAGE,
    "practitionerRoles": "PractitionerRole?_id={{"
    f"{_DRAFT}.requester.resolve().ofType(PractitionerRole).id|"
    f"{_DRAFT}.performer.resolve().ofType(PractitionerRole).id"
    "}}",
    "practitioners": "Practitioner?_id={{"
    f"{_DRAFT}.requester.resolve().ofType(Practitioner).id|"
    f"{_DRAFT}.performer.resolve().ofType(Practitioner).id|"
    "%practitionerRoles.entry.resource.practitioner.resolve().id"
    "}}",
    "devices": f"Device?_id={{{{{_DRAFT}.ofType(DeviceRequest).code.resolve().id}}}}",
    "medications": f"Medication?_id={{{{{_DRAFT}.ofType(MedicationRequest).medication.resolve().id}}}}",
}
DISPATCH_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "communicationRequests": "CommunicationRequest",
        "deviceRequests": "DeviceRequest",
        "medicationRequests": "MedicationRequest",
        "nutritionOrders": "NutritionOrder",
        "serviceRequests": "ServiceRequest",
        "visionPrescriptions": "VisionPrescription",
    }
)
_ORDER_DISPATCH_PREFETCH = {
    "patient": PATIENT,
    "coverage": COVERAGE,
    **{
        key: f"{kind}?_id={{{{context.dispatchedOrders.resolve().ofType({kind}).id|"
        f"context.order.resolve().ofType({kind}).id}}}}"
        for key, kind in DISPATCH_TYPES.items()
    },
}
_APPOINTMENT_BOOK_PREFETCH = {
    "patient": PATIENT,
    "encounter": ENCOUNTER,
    "coverage": COVERAGE,
    "serviceRequests": "ServiceRequest?_id={{"
    "context.appointments.entry.resource.basedOn.resolve().ofType(ServiceRequest).id"
    "}}",
    "practitioners": "Practitioner?_id={{"
    "context.appointments.entry.resource.participant.actor.resolve().ofType(Practitioner).id"
    "}}",
}
_ENCOUNTER_PREFETCH = {"patient": PATIENT, "encounter": ENCOUNTER, "coverage": COVERAGE}


@dataclass(frozen=True)
class HookSpec:
    """One CDS service: the discovery entry and what a call to it needs."""

    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]
    primary: bool  # CRD: coverage information SHALL be returned (hook-16, hook-26, hook-33)
    required_context: tuple[str, ...]
    required_prefetch: tuple[str, ...] = ("patient", "coverage")


def _spec(
    hook: str,
    title: str,
    description: str,
    prefetch: dict[str, str],
    primary: bool,
    required: tuple[str, ...],
) -> HookSpec:
    return HookSpec(f"{hook}-crd", hook, title, description, MappingProxyType(prefetch), primary, required)


HOOK_SPECS: tuple[HookSpec, ...] = (
    _spec(
        "appointment-book",
        "PriorGate coverage requirements at appointment booking",
        "Coverage, prior-authorization and documentation requirements for the services being scheduled.",
        _APPOINTMENT_BOOK_PREFETCH,
        True,
        ("patientId", "appointments"),
    ),
    _spec(
        "encounter-start",
        "PriorGate coverage requirements at encounter start",
        "Coverage reminders when an encounter starts; never requests documentation (CRD hook-19).",
        _ENCOUNTER_PREFETCH,
        False,
        ("patientId", "encounterId"),
    ),
    _spec(
        "encounter-discharge",
        "PriorGate coverage requirements at discharge",
        "Coverage reminders when a patient is discharged; never requests documentation (CRD hook-19).",
        _ENCOUNTER_PREFETCH,
        False,
        ("patientId", "encounterId"),
    ),
    _spec(
        "order-dispatch",
        "PriorGate coverage requirements at order dispatch",
        "Coverage, prior-authorization and documentation requirements for orders sent to a performer.",
        _ORDER_DISPATCH_PREFETCH,
        True,
        ("patientId", "performer"),
    ),
    _spec(
        "order-select",
        "PriorGate coverage requirements at order selection",
        "Early coverage guidance, alternatives and companion orders while orders are being selected.",
        _ORDER_SIGN_PREFETCH,
        False,
        ("patientId", "selections", "draftOrders"),
    ),
    _spec(
        "order-sign",
        "PriorGate coverage requirements at order signing",
        "Coverage, prior-authorization and documentation requirements for the orders being signed.",
        _ORDER_SIGN_PREFETCH,
        True,
        ("patientId", "draftOrders"),
    ),
)
