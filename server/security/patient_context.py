"""What a patient-context caller (SMART ``patient/`` scopes, ``Principal.kind == "patient"``) may do
through the FHIR REST API, on top of its scopes and tenants.

Spec: SMART App Launch 2.1.0 "Scopes and Launch Context": ``patient/`` scopes reach only the data of
the patient in context (the token's ``patient`` claim, ``Principal.patient``). PriorGate serves a patient
their own Patient resource, their prior-authorization ExplanationOfBenefits (Patient Access, PDex) and
their Consents; every other request is refused with 403 before a route runs (:func:`patient_path_allowed`,
checked by ``FhirScopeGuard``). Searches are narrowed to the patient (:func:`patient_search_pairs`: the
patient's own id is ANDed into the query, so asking for another patient's data finds nothing), reads by
id answer 404 for another patient's resource, and a patient writes only Consents about itself
(:func:`check_consent_write`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from igs.outcome import Failure, OperationOutcomeError, invalid
from server.security.principal import Principal
from server.security.tenancy import SHARED_TYPES

# Resource type -> the search parameter naming the patient it concerns ("_id" for Patient itself).
PATIENT_PARAMS: Final[dict[str, str]] = {
    "Patient": "_id",
    "ExplanationOfBenefit": "patient",
    "Consent": "patient",
}
# Element of a resource naming the patient it concerns (for reads by id and writes).
PATIENT_ELEMENTS: Final[dict[str, str]] = {"ExplanationOfBenefit": "patient", "Consent": "patient"}
# Search result parameters a patient may not use: they reach other resources than the ones searched.
_REACHING: Final = frozenset({"_include", "_revinclude", "_has", "_contained", "_containedType"})


def is_patient(principal: Principal | None) -> bool:
    return principal is not None and principal.kind == "patient"


def own_reference(principal: Principal) -> str | None:
    """``Patient/<id>`` of the patient in context, or ``None`` when the token names none."""
    return f"Patient/{principal.patient}" if principal.patient else None


def refuse(detail: str) -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.FORBIDDEN, f"patient access: {detail}", code="forbidden")


def patient_path_allowed(principal: Principal, method: str, path: str) -> bool:
    """Whether a patient-context caller may send ``method`` to ``path`` (relative to the FHIR base).

    Allowed: read of its own ``Patient/<id>`` (another id passes here and answers 404 in the route, as a
    missing one does) and ``Patient`` search; ``ExplanationOfBenefit`` and
    ``Consent`` search and read by id; ``Consent`` create and update; and the payer's published content
    (Questionnaires, ValueSets... ``tenancy.SHARED_TYPES``: read, search and their operations such as
    ``$questionnaire-package`` or ``$expand``), which is nobody's patient data. Everything else (other
    types, history, system operations, transactions, deletes) is not patient access.
    """
    if not principal.patient:
        return False
    segments = [s for s in path.split("?", 1)[0].strip("/").split("/") if s]
    method = method.upper()
    if segments and segments[0] in SHARED_TYPES and len(segments) <= 2:
        if len(segments) == 2 and segments[1].startswith("$"):
            return method in ("GET", "HEAD", "POST")  # an operation on published content
        return method in ("GET", "HEAD") and not segments[-1].startswith("_")
    if not segments or len(segments) > 2 or segments[-1].startswith(("$", "_")):
        return False
    resource_type = segments[0]
    if resource_type not in PATIENT_PARAMS:
        return False
    if method in ("GET", "HEAD"):
        return True  # another patient's resource by id answers 404 in the route (``concerns``), as if absent
    if resource_type == "Consent":
        return (method == "POST" and len(segments) == 1) or (method == "PUT" and len(segments) == 2)
    return False


def patient_search_pairs(
    principal: Principal, resource_type: str, pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """A patient's search narrowed to itself: the patient criterion is ANDed into ``pairs``.

    ``_include``/``_revinclude``/``_has`` and chained parameters (``subject.name``) reach other resources
    and are refused (400). A patient naming another patient gets an empty result, never a leak.
    """
    own = principal.patient
    param = PATIENT_PARAMS.get(resource_type)
    shared = resource_type in SHARED_TYPES
    if own is None or (param is None and not shared):
        raise refuse(f"{resource_type} is not part of patient access")
    for name, _ in pairs:
        base = name.split(":", 1)[0]
        if base in _REACHING or "." in base:
            raise invalid(f"patient access: the search parameter {name!r} is not supported", name)
    if param is None:
        return list(pairs)  # published content: the tenant rule already limits it to the publisher's
    value = own if param == "_id" else f"Patient/{own}"
    return [*pairs, (param, value)]


def concerns(principal: Principal, resource_type: str, resource: dict[str, Any]) -> bool:
    """Whether a stored resource is about the patient in context (Patient: itself), or published content
    (readable by every caller)."""
    own = own_reference(principal)
    if own is None:
        return False
    if resource_type in SHARED_TYPES:
        return True  # published content is about no patient
    if resource_type == "Patient":
        return f"Patient/{resource.get('id')}" == own
    element = PATIENT_ELEMENTS.get(resource_type)
    if element is None:
        return False
    return _names(resource.get(element), own)


def _names(reference: Any, own: str) -> bool:
    if not isinstance(reference, dict):
        return False
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return False
    path = ref.split("/_history/", 1)[0]
    return path == own or path.endswith("/" + own)


def check_consent_write(principal: Principal | None, resource: Any) -> None:
    """Consent create/update: a patient writes only Consents whose ``patient`` is itself (403 otherwise);
    staff and system callers are held to the tenant rule alone (admins reach every tenant)."""
    if principal is None or not is_patient(principal):
        return
    own = own_reference(principal)
    if own is None or not isinstance(resource, dict) or not _names(resource.get("patient"), own):
        raise refuse("a patient may only record Consents about itself (Consent.patient)")
