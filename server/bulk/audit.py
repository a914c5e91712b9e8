"""AuditEvents of the export: the kick-off, each file download, and each patient a consent decision
kept out (PriorGate's ``audit-event-type`` codes, BALP-shaped agents and entities)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.consent.codes import AUDIT_EVENT_TYPE_CONSENT_DECISION
from server.security.audit import AuditRequest, AuditSource, audit_event
from server.security.constants import DICOM_DCM_SYSTEM, PRIORGATE_AUDIT_EVENT_TYPE_SYSTEM

from .codes import AUDIT_EVENT_TYPE_BULK_DOWNLOAD, AUDIT_EVENT_TYPE_BULK_EXPORT

Json = dict[str, Any]


def _detail(event: Json, **values: str) -> Json:
    entity = event["entity"][0]
    entity.setdefault("detail", []).extend(
        {"type": k.replace("_", "-"), "valueString": v} for k, v in values.items()
    )
    return event


def _typed(event: Json, code: str, display: str) -> Json:
    event["type"] = {"system": PRIORGATE_AUDIT_EVENT_TYPE_SYSTEM, "code": code, "display": display}
    return event


def export_kickoff(
    group: str, job_id: str, purpose: str, *, request: AuditRequest, source: AuditSource, recorded: datetime
) -> Json:
    """A ``$export`` kick-off accepted for ``group`` (``Group/<id>``) as job ``job_id``."""
    event = audit_event(
        "operation",
        operation="$export",
        what=(group,),
        request=request,
        source=source,
        recorded=recorded,
        status=202,
    )
    return _detail(_typed(event, AUDIT_EVENT_TYPE_BULK_EXPORT, "Bulk export"), job=job_id, purpose=purpose)


def file_download(
    group: str,
    job_id: str,
    resource_type: str,
    count: int,
    *,
    request: AuditRequest,
    source: AuditSource,
    recorded: datetime,
) -> Json:
    """One NDJSON output file handed to the client that asked for the export."""
    event = audit_event("read", what=(group,), request=request, source=source, recorded=recorded, status=200)
    return _detail(
        _typed(event, AUDIT_EVENT_TYPE_BULK_DOWNLOAD, "Bulk export file download"),
        job=job_id,
        resource_type=resource_type,
        count=str(count),
    )


def consent_exclusion(
    group: str,
    job_id: str,
    patient: str,
    reason: str,
    *,
    client_id: str,
    source: AuditSource,
    recorded: datetime,
) -> Json:
    """A patient left out of job ``job_id`` by a consent decision; ``reason`` says which rule."""
    event = audit_event(
        "operation",
        operation="$export",
        what=(group,),
        patients=(patient,),
        request=AuditRequest(principal=None),
        source=source,
        recorded=recorded,
        status=200,
        outcome_text=reason,
    )
    event["agent"][0] = {
        "type": {"coding": [{"system": DICOM_DCM_SYSTEM, "code": "110153", "display": "Source Role ID"}]},
        "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": client_id or "anonymous"}},
        "requestor": True,
    }
    return _detail(
        _typed(event, AUDIT_EVENT_TYPE_CONSENT_DECISION, "Consent decision"), job=job_id, decision="excluded"
    )
