"""AuditEvents of the patient authorization: each sign-in (successful or not), each authorization code
issued or refused, each token issued or refused. Shaped like the BALP events of ``server.security.audit``
(agents, source, entities), with DICOM "User Authentication"/"Login" for sign-ins and PriorGate's own
``smart-authorization`` type for codes and tokens. Never a password, code or token in them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from server.security.audit import AuditSource
from server.security.constants import (
    AUDIT_ENTITY_TYPE_SYSTEM,
    DICOM_DCM_SYSTEM,
    NETWORK_TYPE_IP_CODE,
    NETWORK_TYPE_URL_CODE,
    OBJECT_ROLE_SYSTEM,
    PRIORGATE_AUDIT_EVENT_TYPE_SYSTEM,
    SECURITY_SOURCE_TYPE_SYSTEM,
)

AUDIT_EVENT_TYPE_SMART_AUTHORIZATION: Final = "smart-authorization"
SMART_AUTHORIZATION_EVENT_SYSTEM: Final = "https://priorgate.org/fhir/CodeSystem/smart-authorization-event"
PATIENT_LOGIN_SYSTEM: Final = "https://priorgate.org/fhir/NamingSystem/patient-login"
OAUTH_CLIENT_SYSTEM: Final = "https://priorgate.org/fhir/NamingSystem/oauth-client-id"

AuthorizationStep = Literal["login", "code", "token", "refresh"]
_SUBTYPE: Final[dict[str, tuple[str, str, str]]] = {
    "login": (DICOM_DCM_SYSTEM, "110122", "Login"),
    "code": (SMART_AUTHORIZATION_EVENT_SYSTEM, "authorization-code", "Authorization code"),
    "token": (SMART_AUTHORIZATION_EVENT_SYSTEM, "access-token", "Access token"),
    "refresh": (SMART_AUTHORIZATION_EVENT_SYSTEM, "refresh", "Refresh"),
}

AuditWriter = Callable[[dict[str, Any]], Awaitable[None]]


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


@dataclass(frozen=True)
class Attempt:
    """Who tried what: the app, the user name given (may be unknown), the client's network address."""

    client_id: str
    username: str | None = None
    patient_id: str | None = None
    address: str | None = None
    scope: str | None = None


def authorization_event(
    step: AuthorizationStep,
    attempt: Attempt,
    *,
    ok: bool,
    source: AuditSource,
    recorded: datetime,
    description: str | None = None,
) -> dict[str, Any]:
    """One AuditEvent for a step of the authorization; ``description`` says why a refusal happened."""
    if step == "login":
        kind = _coding(DICOM_DCM_SYSTEM, "110114", "User Authentication")
    else:
        kind = _coding(
            PRIORGATE_AUDIT_EVENT_TYPE_SYSTEM, AUDIT_EVENT_TYPE_SMART_AUTHORIZATION, "SMART authorization"
        )
    user: dict[str, Any] = {
        "type": {"coding": [_coding(DICOM_DCM_SYSTEM, "110153", "Source Role ID")]},
        "who": (
            {"identifier": {"system": PATIENT_LOGIN_SYSTEM, "value": attempt.username}}
            if attempt.username
            else {"display": "unknown user"}
        ),
        "requestor": True,
    }
    if attempt.address:
        user["network"] = {"address": attempt.address, "type": NETWORK_TYPE_IP_CODE}
    app = {
        "type": {"coding": [_coding(DICOM_DCM_SYSTEM, "110150", "Application")]},
        "who": {"identifier": {"system": OAUTH_CLIENT_SYSTEM, "value": attempt.client_id}},
        "requestor": False,
    }
    server = {
        "type": {"coding": [_coding(DICOM_DCM_SYSTEM, "110152", "Destination Role ID")]},
        "who": {"display": source.observer},
        "requestor": False,
        "network": {"address": source.server_url, "type": NETWORK_TYPE_URL_CODE},
    }
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": kind,
        "subtype": [_coding(*_SUBTYPE[step])],
        "action": "E",
        "recorded": recorded.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": "0" if ok else "4",
    }
    if description:
        event["outcomeDesc"] = description
    event["agent"] = [user, app, server]
    event["source"] = {
        "observer": {"display": source.observer},
        "type": [_coding(SECURITY_SOURCE_TYPE_SYSTEM, "4", "Application Server")],
    }
    if attempt.patient_id:
        entity: dict[str, Any] = {
            "what": {"reference": f"Patient/{attempt.patient_id}"},
            "type": _coding(AUDIT_ENTITY_TYPE_SYSTEM, "1", "Person"),
            "role": _coding(OBJECT_ROLE_SYSTEM, "1", "Patient"),
        }
        if attempt.scope:
            entity["detail"] = [{"type": "scope", "valueString": attempt.scope}]
        event["entity"] = [entity]
    return event
