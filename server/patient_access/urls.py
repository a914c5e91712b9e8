"""Canonical URLs and code systems of Patient Access (Da Vinci PDex 2.0.0 prior authorization)."""

from __future__ import annotations

from typing import Final

from server.pas import urls as pas_urls

PDEX_BASE: Final = "http://hl7.org/fhir/us/davinci-pdex"
PDEX_VERSION: Final = "2.0.0"
PDEX_IG: Final = f"{PDEX_BASE}/ImplementationGuide/hl7.fhir.us.davinci-pdex"
PROFILE_PRIOR_AUTHORIZATION: Final = f"{PDEX_BASE}/StructureDefinition/pdex-priorauthorization"
# PDex 2.0.0 fixes meta.profile to the versioned canonical (slice supportedProfile, patternCanonical).
PROFILE_PRIOR_AUTHORIZATION_VERSIONED: Final = f"{PROFILE_PRIOR_AUTHORIZATION}|{PDEX_VERSION}"
EXT_LEVEL_OF_SERVICE: Final = f"{PDEX_BASE}/StructureDefinition/extension-levelOfServiceCode"
EXT_REVIEW_ACTION: Final = f"{PDEX_BASE}/StructureDefinition/extension-reviewAction"
EXT_REVIEW_ACTION_CODE: Final = f"{PDEX_BASE}/StructureDefinition/extension-reviewActionCode"
CS_ADJUDICATION_DISCRIMINATOR: Final = f"{PDEX_BASE}/CodeSystem/PDexAdjudicationDiscriminator"

# PAS extensions PDex reuses on ExplanationOfBenefit.item (PDex 2.0.0 depends on PAS 2.0.1).
EXT_ITEM_TRACE_NUMBER: Final = pas_urls.EXT_ITEM_TRACE_NUMBER
EXT_ITEM_PRE_AUTH_ISSUE_DATE: Final = pas_urls.EXT_ITEM_PRE_AUTH_ISSUE_DATE
EXT_ITEM_PRE_AUTH_PERIOD: Final = pas_urls.EXT_ITEM_PRE_AUTH_PERIOD
EXT_AUTHORIZATION_NUMBER: Final = pas_urls.EXT_AUTHORIZATION_NUMBER
EXT_PAS_LEVEL_OF_SERVICE: Final = pas_urls.EXT_LEVEL_OF_SERVICE

CS_X12_ACTION_CODE: Final = pas_urls.CS_X12_ACTION_CODE
# X12 service type codes: PAS names the list by its element (1365), PDex binds the published code list.
CS_X12_SERVICE_TYPE_PAS: Final = "https://codesystem.x12.org/005010/1365"
CS_X12_SERVICE_TYPE: Final = "https://x12.org/codes/service-type-codes"
CS_CLAIM_TYPE: Final = pas_urls.CS_CLAIM_TYPE

# Drug codes: items coded in these systems, or requesting a medication, are not Patient Access PA data
# (CMS-0057-F: prior authorization information for items and services, excluding drugs).
DRUG_CODE_SYSTEMS: Final = frozenset(
    {
        "http://hl7.org/fhir/sid/ndc",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
    }
)
DRUG_REQUEST_TYPES: Final = frozenset({"MedicationRequest", "MedicationDispense", "MedicationStatement"})

# PriorGate's member identifier system: a stored Patient carrying it is the payer's member record.
MEMBER_SYSTEM: Final = "https://priorgate.org/fhir/sid/member"
CS_V2_IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
