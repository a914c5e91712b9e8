"""The FHIR R4 resource types PriorGate stores and serves (https://hl7.org/fhir/R4/resourcelist.html)."""

from __future__ import annotations

from typing import Final

RESOURCE_TYPES: Final[tuple[str, ...]] = (
    "Appointment",
    "AuditEvent",
    "Binary",
    "Bundle",
    "Claim",
    "ClaimResponse",
    "CodeSystem",
    "CommunicationRequest",
    "Condition",
    "Consent",
    "Coverage",
    "DeviceRequest",
    "DocumentReference",
    "Encounter",
    "ExplanationOfBenefit",
    "Group",
    "Library",
    "Location",
    "MedicationRequest",
    "NutritionOrder",
    "Observation",
    "Organization",
    "Parameters",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Questionnaire",
    "QuestionnaireResponse",
    "ServiceRequest",
    "Subscription",
    "Task",
    "ValueSet",
)

_KNOWN: Final = frozenset(RESOURCE_TYPES)


def is_supported(resource_type: str) -> bool:
    return resource_type in _KNOWN
