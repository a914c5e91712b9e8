"""Canonical URLs and code systems used by the CRD services (CRD 2.0.1 and 2.2, CDS Hooks 2.0)."""

from __future__ import annotations

from typing import Final

# Da Vinci CRD, https://hl7.org/fhir/us/davinci-crd/StructureDefinition-ext-coverage-information.html
EXT_COVERAGE_INFORMATION: Final = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)
EXT_BILLING_OPTIONS: Final = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-billing-options"
CRD_PROFILE_BASE: Final = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/"
# CRD 2.0.1 puts every code on the "temp" code system; 2.2 moves the coverage-information codes out.
CS_CRD_TEMP: Final = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
CS_COVERAGE_INFORMATION_CODES: Final = (
    "http://hl7.org/fhir/us/davinci-crd/CodeSystem/coverage-information-codes"
)
CS_CDS_HOOKS_CARD_TYPE: Final = "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"
CS_NULL_FLAVOR: Final = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"

# Code systems the demo rules use (full URIs as the IG requires).
CS_CPT: Final = "http://www.ama-assn.org/go/cpt"
CS_HCPCS: Final = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
CS_ICD10CM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
CS_RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
CS_SNOMED: Final = "http://snomed.info/sct"
CS_PLACE_OF_SERVICE: Final = (
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
)
CS_COVERAGE_CLASS: Final = "http://terminology.hl7.org/CodeSystem/coverage-class"
SID_NPI: Final = "http://hl7.org/fhir/sid/us-npi"

# PriorGate's own content (shared with the DTR package).
PRIORGATE_CANONICAL_BASE: Final = "https://priorgate.org/fhir"
PRIORGATE_CONTENT_VERSION: Final = "1.0.0"
SID_PAYER_ID: Final = "https://priorgate.org/fhir/sid/payer-id"
CARD_SOURCE_URL: Final = "https://priorgate.org"  # CDS Hooks Card.source.url

# Other systems that name HCPCS codes in the wild (accepted as synonyms when matching rules).
HCPCS_ALIASES: Final = frozenset(
    {
        CS_HCPCS,
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "urn:oid:2.16.840.1.113883.6.285",
    }
)
# In CRD 2.0.1 the card types are children of `_cardType` on the temp code system.
CS_CARD_TYPE_2_0: Final = CS_CRD_TEMP
