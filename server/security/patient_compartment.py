"""What a patient-context token (a principal of kind ``patient``, from PriorGate's own patient
authorization or an external authorization server) may do through the FHIR API: the one rule, kept
here so it is easy to find and to widen.

SMART ``patient/`` scopes reach only the patient's own data. PriorGate enforces that conservatively:

* a patient principal may only read and search (GET/HEAD), and only under ``/fhir``: never write,
  never call an operation or a transaction, never reach the PAS or DTR endpoints;
* the resource types it may reach are :data:`PATIENT_FACING_TYPES`: its own ``Patient`` (read, vread,
  instance history; any other Patient id answers 404, exactly as a missing one) and the Patient
  Access API's ``ExplanationOfBenefit`` routes, which restrict themselves to the patient;
* the generic FHIR routes (``server/api/fhir.py``) serve a patient principal only its ``Patient``
  (:func:`generic_route_allows`): every other type there would not be limited to the patient.

A patient principal without a ``patient`` claim reaches nothing.
"""

from __future__ import annotations

from typing import Final

from igs.outcome import Failure, OperationOutcomeError
from server.security.principal import Principal
from server.security.tenancy import not_found_error

PATIENT_FACING_TYPES: Final = frozenset({"Patient", "ExplanationOfBenefit"})
_READS: Final = frozenset({"GET", "HEAD"})


def _refused(why: str) -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.FORBIDDEN, f"a patient-context token {why}", code="forbidden")


def check_patient_request(principal: Principal, method: str, fhir_path: str | None) -> None:
    """Raise 403 (or 404 for another Patient) unless ``principal`` may make this request.

    ``fhir_path`` is the path relative to ``/fhir`` (``Patient/1``), or ``None`` for a request under
    another FHIR base (PAS, DTR). Principals that are not of kind ``patient`` pass unchanged.
    """
    if principal.kind != "patient":
        return
    if not principal.patient:
        raise _refused("without a patient context reaches no data")
    if fhir_path is None:
        raise _refused("reaches only the FHIR API under /fhir")
    if method.upper() not in _READS:
        raise _refused("may only read")
    segments = [s for s in fhir_path.split("?", 1)[0].strip("/").split("/") if s]
    if not segments or segments[0] not in PATIENT_FACING_TYPES or any(s.startswith("$") for s in segments):
        raise _refused(f"may read only {' and '.join(sorted(PATIENT_FACING_TYPES))} resources")
    if segments[0] == "Patient":
        if len(segments) < 2 or segments[1] in ("_search", "_history"):
            raise _refused(f"reads its own record as Patient/{principal.patient}")
        if segments[1] != principal.patient:
            raise not_found_error("Patient", segments[1])


def generic_route_allows(principal: Principal | None, resource_type: str | None) -> None:
    """For the generic FHIR routes: a patient principal reaches only its ``Patient`` there (403 else)."""
    if principal is None or principal.kind != "patient":
        return
    if resource_type != "Patient":
        raise _refused(f"reads {resource_type} resources only through the Patient Access API")
