"""Patient Access (CMS-0057-F) for prior authorizations: the member's PDex 2.0.0
prior-authorization ExplanationOfBenefits (``server/patient_access``), under ``/fhir``.

``GET /fhir/ExplanationOfBenefit?patient=&status=&created=&_lastUpdated=`` and
``GET /fhir/ExplanationOfBenefit/{id}``, for a patient-context token (SMART
``patient/ExplanationOfBenefit.rs`` or ``.read``, ``patient`` claim) as for staff and systems.
A patient sees only its own: the search is narrowed to ``patient=Patient/<own>`` (another
patient's id finds nothing), a read of another patient's ExplanationOfBenefit is 404
(``server/security/patient_context.py``); staff and systems keep the tenant rule. Every request
is audited by the ``AuditTrail`` (a patient's as a BALP PatientRead / PatientQuery).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from server.api import fhir
from server.api.fhir import Svc, negotiate
from server.patient_access.urls import PDEX_IG, PDEX_VERSION, PROFILE_PRIOR_AUTHORIZATION
from server.services import Services

EOB = "ExplanationOfBenefit"
router = APIRouter(prefix="/fhir", dependencies=[Depends(negotiate)])


def register(svc: Services) -> None:
    svc.capabilities.add_profile(EOB, PROFILE_PRIOR_AUTHORIZATION)
    svc.capabilities.add_implementation_guide(f"{PDEX_IG}|{PDEX_VERSION}")


@router.get("/ExplanationOfBenefit")
async def search(request: Request, svc: Svc) -> Response:
    """search-type (PDex prior authorization: ``patient``, ``status``, ``created``, ``_lastUpdated``...)."""
    return await fhir.search(EOB, request, svc)


@router.get("/ExplanationOfBenefit/{resource_id}")
async def read(resource_id: str, request: Request, svc: Svc) -> Response:
    """read of one prior-authorization ExplanationOfBenefit."""
    return await fhir.read(EOB, resource_id, request, svc)
