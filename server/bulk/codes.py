"""Canonical URLs, media types and codes of the bulk export (FHIR Bulk Data 2.0, PDex 2.0.0)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

# Bulk Data 2.0.0 "Group Level Export" OperationDefinition, and the guides the export follows.
GROUP_EXPORT_DEFINITION: Final = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
BULK_DATA_IG: Final = "http://hl7.org/fhir/uv/bulkdata/ImplementationGuide/hl7.fhir.uv.bulkdata|2.0.0"
PDEX_IG: Final = "http://hl7.org/fhir/us/davinci-pdex/ImplementationGuide/hl7.fhir.us.davinci-pdex|2.0.0"

NDJSON: Final = "application/fhir+ndjson"
# _outputFormat values Bulk Data 2.0 asks servers to accept for NDJSON.
NDJSON_FORMATS: Final = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
RESPOND_ASYNC: Final = "respond-async"

# Paths under the FHIR base (``/fhir``): the status URL of a job and the URL of one output file.
STATUS_PATH: Final = "bulk-status"
FILE_PATH: Final = "bulk-files"

# Group.code saying which payer API an attribution Group serves (absent: Provider Access).
EXPORT_PURPOSE_SYSTEM: Final = "https://priorgate.org/fhir/CodeSystem/export-purpose"


class Purpose(StrEnum):
    PROVIDER_ACCESS = "provider-access"  # CMS-0057-F Provider Access: attributed patients, opt-out
    PAYER_TO_PAYER = "payer-to-payer"  # CMS-0057-F Payer-to-Payer: opted-in members, 5 years, no denials


# CMS-0057-F Provider Access: data with dates of service on or after 1 January 2016.
PROVIDER_ACCESS_SINCE: Final = datetime(2016, 1, 1, tzinfo=UTC)
# CMS-0057-F Payer-to-Payer: data with dates of service within the last five years.
PAYER_TO_PAYER_YEARS: Final = 5

# AuditEvent codings of the export (PriorGate's audit-event-type code system, like pa-decision).
AUDIT_EVENT_TYPE_BULK_EXPORT: Final = "bulk-export"
AUDIT_EVENT_TYPE_BULK_DOWNLOAD: Final = "bulk-download"
