"""AuditEvent resources in the shape of IHE Basic Audit Log Patterns (BALP 1.1): pure builders.

Each builder answers who (the client agent, with its OAuth details, and the server agent), what (the
resources touched and the patients they concern), when (``recorded``), from where (network addresses)
and the outcome. Storage of the events, and the auditor's search over them, live with the storage layer;
the API never lets anyone change an AuditEvent (tenancy.py).

Patterns used (https://profiles.ihe.net/ITI/BALP/): ``IHE.BasicAudit.{Create,Read,Update,Delete,Query}``
and their ``Patient*`` variants when a patient is concerned; RESTful ``operation`` and PriorGate's
``pa-decision`` follow the same shape.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from server.security.constants import (
    AUDIT_ENTITY_TYPE_SYSTEM,
    AUDIT_EVENT_TYPE_PA_DECISION,
    AUDIT_EVENT_TYPE_PA_NOTIFICATION,
    AUDIT_EVENT_TYPE_SYSTEM,
    BACKPORT_NOTIFICATION_TYPE_SYSTEM,
    BALP_AGENT_DETAIL_EXTENSION,
    BALP_PROFILE_BASE,
    DICOM_DCM_SYSTEM,
    NETWORK_TYPE_IP_CODE,
    NETWORK_TYPE_URL_CODE,
    OBJECT_ROLE_SYSTEM,
    PRIORGATE_AUDIT_EVENT_TYPE_SYSTEM,
    PRIORGATE_OPERATION_SYSTEM,
    RESTFUL_INTERACTION_SYSTEM,
    SECURITY_SOURCE_TYPE_SYSTEM,
)
from server.security.fhir_requests import fhir_request_requirement
from server.security.principal import Principal

AuditInteraction = Literal[
    "create", "read", "vread", "update", "patch", "delete", "search", "history", "operation", "decision"
]

# AuditEvent.action (R4 audit-event-action): C R U D E.
_ACTION: Final[dict[str, str]] = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "history": "R",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "search": "E",
    "operation": "E",
    "decision": "E",
}
# restful-interaction code where it differs from the interaction name.
_SUBTYPE: Final[dict[str, str]] = {"search": "search-type", "history": "history-instance"}
# BALP profile (without and with a patient concerned).
_PROFILE: Final[dict[str, tuple[str, str]]] = {
    "create": ("Create", "PatientCreate"),
    "read": ("Read", "PatientRead"),
    "vread": ("Read", "PatientRead"),
    "history": ("Read", "PatientRead"),
    "update": ("Update", "PatientUpdate"),
    "patch": ("Update", "PatientUpdate"),
    "delete": ("Delete", "PatientDelete"),
    "search": ("Query", "PatientQuery"),
}


def _outcome_code(status: int) -> str:
    """AuditEvent.outcome (R4 audit-event-outcome) from the HTTP status: 0, 4 (client error), 8 (server)."""
    if status < 400:
        return "0"
    if status < 500:
        return "4"
    return "8"


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


@dataclass(frozen=True)
class AuditSource:
    """The server side: its public base URL, and the observer name (``AuditEvent.source``)."""

    server_url: str
    observer: str = "PriorGate"
    site: str | None = None


@dataclass(frozen=True)
class AuditRequest:
    """Per-request facts: the caller, its network address, and a correlation id."""

    principal: Principal | None  # None when authentication itself failed
    client_address: str | None = None
    request_id: str | None = None


def _client_agent(request: AuditRequest) -> dict[str, Any]:
    principal = request.principal
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(DICOM_DCM_SYSTEM, "110153", "Source Role ID")]},
        "requestor": True,  # Backend Services: no end user, the client itself asks
    }
    if principal is not None:
        agent["who"] = {
            "identifier": {"system": principal.issuer or "urn:ietf:rfc:3986", "value": principal.client_id}
        }
        detail = [
            {"url": "client_id", "valueString": principal.client_id},
            {"url": "subject", "valueString": principal.subject or principal.client_id},
        ]
        if principal.issuer:
            detail.append({"url": "issuer", "valueString": principal.issuer})
        if principal.token_id:
            detail.append({"url": "jti", "valueString": principal.token_id})
        if principal.scopes:
            detail.append({"url": "scope", "valueString": principal.scope_string})
        agent["extension"] = [{"url": BALP_AGENT_DETAIL_EXTENSION, "extension": detail}]
        if principal.tenants:
            agent["who"]["display"] = "acting for " + ", ".join(sorted(principal.tenants))
    else:
        agent["who"] = {"display": "unauthenticated"}
    if request.client_address:
        agent["network"] = {"address": request.client_address, "type": NETWORK_TYPE_IP_CODE}
    return agent


def _server_agent(source: AuditSource) -> dict[str, Any]:
    return {
        "type": {"coding": [_coding(DICOM_DCM_SYSTEM, "110152", "Destination Role ID")]},
        "who": {"display": source.observer},
        "requestor": False,
        "network": {"address": source.server_url, "type": NETWORK_TYPE_URL_CODE},
    }


def _resource_entity(reference: str) -> dict[str, Any]:
    return {
        "what": {"reference": reference},
        "type": _coding(AUDIT_ENTITY_TYPE_SYSTEM, "2", "System Object"),
        "role": _coding(OBJECT_ROLE_SYSTEM, "4", "Domain Resource"),
    }


def _patient_entity(reference: str) -> dict[str, Any]:
    return {
        "what": {"reference": reference},
        "type": _coding(AUDIT_ENTITY_TYPE_SYSTEM, "1", "Person"),
        "role": _coding(OBJECT_ROLE_SYSTEM, "1", "Patient"),
    }


def _query_entity(query: str) -> dict[str, Any]:
    return {
        "type": _coding(AUDIT_ENTITY_TYPE_SYSTEM, "2", "System Object"),
        "role": _coding(OBJECT_ROLE_SYSTEM, "24", "Query"),
        "query": base64.b64encode(query.encode()).decode(),
        "description": query,
    }


def audit_event(
    interaction: AuditInteraction,
    *,
    request: AuditRequest,
    source: AuditSource,
    recorded: datetime,
    status: int,
    what: Sequence[str] = (),
    patients: Sequence[str] = (),
    query: str | None = None,
    operation: str | None = None,
    decision: str | None = None,
    outcome_text: str | None = None,
) -> dict[str, Any]:
    """One BALP-shaped AuditEvent.

    ``what`` are references (``Claim/1``, ``Claim/1/_history/2``) of the resources touched, ``patients``
    the Patient references they concern, ``query`` the search request (``GET Claim?status=active``),
    ``operation`` the operation name for ``operation``, ``decision`` the review outcome code for
    ``decision``. ``status`` is the HTTP status answered; ``outcome_text`` must hold no secrets.
    """
    patient_list = list(dict.fromkeys(patients))
    event: dict[str, Any] = {"resourceType": "AuditEvent"}
    profile = _PROFILE.get(interaction)
    if profile is not None:
        name = profile[1] if patient_list else profile[0]
        event["meta"] = {"profile": [BALP_PROFILE_BASE + "IHE.BasicAudit." + name]}
    if interaction == "decision":
        event["type"] = _coding(
            PRIORGATE_AUDIT_EVENT_TYPE_SYSTEM, AUDIT_EVENT_TYPE_PA_DECISION, "PA decision"
        )
    else:
        event["type"] = _coding(AUDIT_EVENT_TYPE_SYSTEM, "rest", "Restful Operation")
        code = _SUBTYPE.get(interaction, interaction)
        event["subtype"] = [_coding(RESTFUL_INTERACTION_SYSTEM, code, code)]
        if interaction == "operation" and operation:
            name = operation if operation.startswith("$") else f"${operation}"
            event["subtype"].append(_coding(PRIORGATE_OPERATION_SYSTEM, name, name))
    event["action"] = _ACTION[interaction]
    event["recorded"] = _instant(recorded)
    event["outcome"] = _outcome_code(status)
    if outcome_text:
        event["outcomeDesc"] = outcome_text
    event["agent"] = [_client_agent(request), _server_agent(source)]
    src: dict[str, Any] = {
        "observer": {"display": source.observer},
        "type": [_coding(SECURITY_SOURCE_TYPE_SYSTEM, "4", "Application Server")],
    }
    if source.site:
        src["site"] = source.site
    event["source"] = src
    entities = [_resource_entity(ref) for ref in dict.fromkeys(what)]
    if query is not None:
        entities.append(_query_entity(query))
    entities.extend(_patient_entity(ref) for ref in patient_list)
    if request.request_id:
        entities.append(
            {
                "what": {"identifier": {"value": request.request_id}},
                "type": _coding(AUDIT_ENTITY_TYPE_SYSTEM, "4", "Other"),
                "description": "request id",
            }
        )
    if decision is not None and entities:
        entities[0].setdefault("detail", []).append({"type": "decision", "valueString": decision})
    if entities:
        event["entity"] = entities
    return event


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_read(
    reference: str,
    *,
    request: AuditRequest,
    source: AuditSource,
    recorded: datetime,
    status: int,
    patients: Sequence[str] = (),
) -> dict[str, Any]:
    """BALP Read / PatientRead for a read or vread of ``reference``."""
    kind: AuditInteraction = "vread" if "/_history/" in reference else "read"
    return audit_event(
        kind,
        request=request,
        source=source,
        recorded=recorded,
        status=status,
        what=(reference,),
        patients=patients,
    )


def audit_search(
    query: str,
    *,
    request: AuditRequest,
    source: AuditSource,
    recorded: datetime,
    status: int,
    patients: Sequence[str] = (),
) -> dict[str, Any]:
    """BALP Query / PatientQuery: ``query`` is the request line, e.g. ``GET Claim?patient=Patient/1``."""
    return audit_event(
        "search",
        request=request,
        source=source,
        recorded=recorded,
        status=status,
        query=query,
        patients=patients,
    )


def audit_write(
    interaction: Literal["create", "update", "patch", "delete"],
    reference: str,
    *,
    request: AuditRequest,
    source: AuditSource,
    recorded: datetime,
    status: int,
    patients: Sequence[str] = (),
) -> dict[str, Any]:
    """BALP Create / Update / Delete (and Patient* variants)."""
    return audit_event(
        interaction,
        request=request,
        source=source,
        recorded=recorded,
        status=status,
        what=(reference,),
        patients=patients,
    )


def audit_operation(
    operation: str,
    *,
    request: AuditRequest,
    source: AuditSource,
    recorded: datetime,
    status: int,
    what: Sequence[str] = (),
    patients: Sequence[str] = (),
) -> dict[str, Any]:
    """An operation call (``$submit``, ``$inquire``, ``$questionnaire-package``...)."""
    return audit_event(
        "operation",
        request=request,
        source=source,
        recorded=recorded,
        status=status,
        what=what,
        patients=patients,
        operation=operation,
    )


def audit_decision(
    claim: str,
    claim_response: str,
    decision: str,
    *,
    request: AuditRequest,
    source: AuditSource,
    recorded: datetime,
    patients: Sequence[str] = (),
) -> dict[str, Any]:
    """A prior-authorization decision: ``decision`` is the review action code (X12 HCR01, e.g. ``A1``)."""
    return audit_event(
        "decision",
        request=request,
        source=source,
        recorded=recorded,
        status=200,
        what=(claim_response, claim),
        patients=patients,
        decision=decision,
    )


NotificationOutcome = Literal["delivered", "retrying", "failed"]
# AuditEvent.outcome of a notification: 0 success, 4 minor failure (tried again later), 8 serious (given up).
_NOTIFICATION_OUTCOME: Final[dict[str, str]] = {"delivered": "0", "retrying": "4", "failed": "8"}


def audit_notification(
    subscription: str,
    kind: str,
    outcome: NotificationOutcome,
    *,
    endpoint: str,
    source: AuditSource,
    recorded: datetime,
    attempt: int,
    event_number: int | None = None,
    what: Sequence[str] = (),
    patients: Sequence[str] = (),
    error: str | None = None,
) -> dict[str, Any]:
    """One attempt to deliver a Subscription notification (``kind``: ``handshake``, ``heartbeat``,
    ``event-notification``) to the rest-hook ``endpoint``: PriorGate is the requestor (it sends), the
    subscriber's endpoint the destination. ``subscription`` is ``Subscription/{id}``, ``what`` the
    resources the notification carries or names (the ClaimResponse), ``patients`` the patients they
    concern; ``error`` (no secrets: never the channel headers) says why a failed attempt failed."""
    patient_list = list(dict.fromkeys(patients))
    server = _server_agent(source)
    server["type"] = {"coding": [_coding(DICOM_DCM_SYSTEM, "110153", "Source Role ID")]}
    server["requestor"] = True
    subscriber = {
        "type": {"coding": [_coding(DICOM_DCM_SYSTEM, "110152", "Destination Role ID")]},
        "who": {"display": "subscriber rest-hook endpoint"},
        "requestor": False,
        "network": {"address": endpoint, "type": NETWORK_TYPE_URL_CODE},
    }
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _coding(
            PRIORGATE_AUDIT_EVENT_TYPE_SYSTEM, AUDIT_EVENT_TYPE_PA_NOTIFICATION, "PA notification"
        ),
        "subtype": [_coding(BACKPORT_NOTIFICATION_TYPE_SYSTEM, kind, kind)],
        "action": "E",
        "recorded": _instant(recorded),
        "outcome": _NOTIFICATION_OUTCOME[outcome],
    }
    if error:
        event["outcomeDesc"] = error
    event["agent"] = [server, subscriber]
    event["source"] = {
        "observer": {"display": source.observer},
        "type": [_coding(SECURITY_SOURCE_TYPE_SYSTEM, "4", "Application Server")],
    }
    if source.site:
        event["source"]["site"] = source.site
    first = _resource_entity(subscription)
    detail: list[dict[str, Any]] = [
        {"type": "outcome", "valueString": outcome},
        {"type": "attempt", "valueString": str(attempt)},
    ]
    if event_number is not None:
        detail.append({"type": "event-number", "valueString": str(event_number)})
    first["detail"] = detail
    entities = [first, *(_resource_entity(ref) for ref in dict.fromkeys(what) if ref != subscription)]
    entities.extend(_patient_entity(ref) for ref in patient_list)
    event["entity"] = entities
    return event


def audit_event_for_request(
    method: str,
    fhir_path: str,
    query_string: str,
    *,
    status: int,
    request: AuditRequest,
    source: AuditSource,
    recorded: datetime,
    location: str | None = None,
) -> dict[str, Any] | None:
    """The AuditEvent for one FHIR REST request, from what HTTP shows (``None`` for public calls).

    ``fhir_path`` is relative to the FHIR base (``Claim/1``); ``location`` is the response's
    ``Location`` header, naming what a create made. Patients are not known at this level, except the
    patient in context of a patient-context caller (Patient Access), recorded as the event's patient
    (BALP Patient* patterns); handlers that know more record richer events with the builders above.
    """
    requirement = fhir_request_requirement(method, fhir_path)
    if requirement.kind == "public":
        return None
    segments = [s for s in fhir_path.strip("/").split("/") if s]
    common: dict[str, Any] = {"request": request, "source": source, "recorded": recorded, "status": status}
    caller = request.principal
    if caller is not None and caller.kind == "patient" and caller.patient:  # patient access: its patient
        common["patients"] = [f"Patient/{caller.patient}"]
    if requirement.kind == "bundle":
        return audit_event("operation", operation="transaction", **common)
    if requirement.kind == "operation":
        what = ["/".join(segments[:2])] if len(segments) == 3 else []
        return audit_event("operation", operation=requirement.operation, what=what, **common)
    if requirement.kind != "interaction":
        return audit_event("read", what=[fhir_path.strip("/")] if segments else [], **common)
    letter = requirement.interaction
    if letter == "s":
        line = f"{method.upper()} {fhir_path.strip('/')}" + (f"?{query_string}" if query_string else "")
        return audit_event("search", query=line, **common)
    if letter == "c":
        created = _reference_from_location(location)
        return audit_event("create", what=[created] if created else [], **common)
    reference = "/".join(segments)
    kind: AuditInteraction = "update" if letter == "u" else "delete" if letter == "d" else "read"
    if kind == "read" and "_history" in segments:
        kind = "vread" if len(segments) == 4 else "history"
        reference = reference if kind == "vread" else "/".join(segments[:2])
    if kind == "update" and method.upper() == "PATCH":
        kind = "patch"
    return audit_event(kind, what=[reference] if len(segments) >= 2 else [], **common)


def _reference_from_location(location: str | None) -> str | None:
    """``Claim/5`` from ``https://pa.example.org/fhir/Claim/5/_history/1``."""
    if not location:
        return None
    path = location.split("?", 1)[0].rstrip("/")
    parts = path.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None
