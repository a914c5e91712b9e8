"""Bulk export (FHIR Bulk Data 2.0 ``Group/{id}/$export``) for the CMS-0057-F Provider Access and
Payer-to-Payer APIs: attribution Groups, export jobs run by a leased worker, NDJSON files with expiring
access. Consent decisions come from ``server/consent``."""
