"""Patient Access (CMS-0057-F) for prior authorizations: the member's PDex 2.0.0
prior-authorization ExplanationOfBenefits (``server/patient_access``), under ``/fhir``.

``GET /fhir/ExplanationOfBenefit?patient=&status=&created=&_lastUpdated=`` and
``GET /fhir/ExplanationOfBenefit/{id}`` are the generic FHIR routes (``server/api/fhir.py``); this module
adds the PDex profile and guide to the CapabilityStatement. They serve a patient-context token (SMART
``patient/ExplanationOfBenefit.rs`` or ``.read``, ``patient`` claim) as for staff and systems.
A patient sees only its own: the search is narrowed to ``patient=Patient/<own>`` (another
patient's id finds nothing), a read of another patient's ExplanationOfBenefit is 404
(``server/security/patient_context.py``); staff and systems keep the tenant rule. Every request
is audited by the ``AuditTrail`` (a patient's as a BALP PatientRead / PatientQuery).
"""

from __future__ import annotations

from fastapi import APIRouter

from server.patient_access.urls import PDEX_IG, PDEX_VERSION, PROFILE_PRIOR_AUTHORIZATION
from server.services import Services

EOB = "ExplanationOfBenefit"
router = APIRouter()  # no routes of its own: the generic FHIR routes serve ExplanationOfBenefit


def register(svc: Services) -> None:
    svc.capabilities.add_profile(EOB, PROFILE_PRIOR_AUTHORIZATION)
    svc.capabilities.add_implementation_guide(f"{PDEX_IG}|{PDEX_VERSION}")
