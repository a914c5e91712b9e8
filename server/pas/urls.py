"""Canonical URLs used by PAS: profiles, extensions, code systems and the subscription topic.

Spec: Da Vinci PAS 2.0.1 and 2.2.1 (http://hl7.org/fhir/us/davinci-pas), Subscriptions R5 Backport 1.1.0.
Profile canonicals are the same in both versions; ``versions.py`` adds the ``|version`` suffix.
"""

from __future__ import annotations

from typing import Final

PAS_BASE: Final = "http://hl7.org/fhir/us/davinci-pas"
_SD: Final = f"{PAS_BASE}/StructureDefinition"

# Profiles
PROFILE_REQUEST_BUNDLE: Final = f"{_SD}/profile-pas-request-bundle"
PROFILE_RESPONSE_BUNDLE: Final = f"{_SD}/profile-pas-response-bundle"
PROFILE_INQUIRY_REQUEST_BUNDLE: Final = f"{_SD}/profile-pas-inquiry-request-bundle"
PROFILE_INQUIRY_RESPONSE_BUNDLE: Final = f"{_SD}/profile-pas-inquiry-response-bundle"
PROFILE_CLAIM: Final = f"{_SD}/profile-claim"
PROFILE_CLAIM_UPDATE: Final = f"{_SD}/profile-claim-update"
PROFILE_CLAIM_INQUIRY: Final = f"{_SD}/profile-claim-inquiry"
PROFILE_CLAIM_RESPONSE: Final = f"{_SD}/profile-claimresponse"
PROFILE_CLAIM_INQUIRY_RESPONSE: Final = f"{_SD}/profile-claiminquiryresponse"
PROFILE_COMMUNICATION_REQUEST: Final = f"{_SD}/profile-communicationrequest"
PROFILE_TASK: Final = f"{_SD}/profile-task"
PROFILE_SUBSCRIPTION: Final = f"{_SD}/profile-subscription"

# Extensions
EXT_TRANSMISSION_IDENTIFIERS: Final = f"{_SD}/extension-TransmissionIdentifiers"
EXT_LEVEL_OF_SERVICE: Final = f"{_SD}/extension-levelOfServiceCode"
EXT_CERTIFICATION_TYPE: Final = f"{_SD}/extension-certificationType"
EXT_SERVICE_ITEM_REQUEST_TYPE: Final = f"{_SD}/extension-serviceItemRequestType"
EXT_ITEM_TRACE_NUMBER: Final = f"{_SD}/extension-itemTraceNumber"
EXT_AUTHORIZATION_NUMBER: Final = f"{_SD}/extension-authorizationNumber"
EXT_ADMINISTRATION_REFERENCE_NUMBER: Final = f"{_SD}/extension-administrationReferenceNumber"
EXT_REQUESTED_SERVICE: Final = f"{_SD}/extension-requestedService"
EXT_INFO_CHANGED: Final = f"{_SD}/extension-infoChanged"
EXT_INFO_CANCELLED: Final = f"{_SD}/modifierextension-infoCancelled"
EXT_CARE_TEAM_CLAIM_SCOPE: Final = f"{_SD}/extension-careTeamClaimScope"
EXT_DOCUMENT_INFORMATION: Final = f"{_SD}/extension-documentInformation"
EXT_PRODUCT_OR_SERVICE_CODE_END: Final = f"{_SD}/extension-productOrServiceCodeEnd"
EXT_ITEM_CERT_ISSUE_DATE: Final = f"{_SD}/extension-itemCertificationIssueDate"
EXT_ITEM_CERT_EFFECTIVE_DATE: Final = f"{_SD}/extension-itemCertificationEffectiveDate"
EXT_ITEM_CERT_EXPIRATION_DATE: Final = f"{_SD}/extension-itemCertificationExpirationDate"
EXT_REVIEW_ACTION: Final = f"{_SD}/extension-reviewAction"
EXT_REVIEW_ACTION_CODE: Final = f"{_SD}/extension-reviewActionCode"  # full canonical even as a sub-extension
EXT_ITEM_PRE_AUTH_ISSUE_DATE: Final = f"{_SD}/extension-itemPreAuthIssueDate"
EXT_ITEM_PRE_AUTH_PERIOD: Final = f"{_SD}/extension-itemPreAuthPeriod"
EXT_ITEM_REQUESTED_SERVICE_DATE: Final = f"{_SD}/extension-itemRequestedServiceDate"
EXT_ITEM_AUTHORIZED_PROVIDER: Final = f"{_SD}/extension-itemAuthorizedProvider"
EXT_ITEM_AUTHORIZED_DETAIL: Final = f"{_SD}/extension-itemAuthorizedDetail"
EXT_CLAIM_RESPONSE_REVIEWER: Final = f"{_SD}/extension-claimResponseReviewer"
EXT_ERROR_ELEMENT: Final = f"{_SD}/extension-errorElement"
EXT_ERROR_PATH: Final = f"{_SD}/extension-errorPath"
EXT_ERROR_FOLLOWUP_ACTION: Final = f"{_SD}/extension-errorFollowupAction"
EXT_CONTENT_MODIFIER: Final = f"{_SD}/extension-contentModifier"
EXT_SERVICE_LINE_NUMBER: Final = f"{_SD}/extension-serviceLineNumber"
EXT_PA_LINE_NUMBER: Final = f"{_SD}/extension-paLineNumber"  # 2.0.1 Task.input line number
EXT_CLAIM_ENCOUNTER: Final = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter"

# CRD / DTR links carried on supporting information
EXT_CRD_COVERAGE_INFORMATION: Final = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)
EXT_DTR_CONTEXT: Final = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/context"
EXT_DTR_INTENDED_USE: Final = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/intendedUse"

# Code systems
CS_PAS_TEMP: Final = f"{PAS_BASE}/CodeSystem/PASTempCodes"
CS_X12_ACTION_CODE: Final = "https://codesystem.x12.org/005010/306"  # HCR01
CS_X12_CERTIFICATION_TYPE: Final = "https://codesystem.x12.org/005010/1322"  # UM02
CS_X12_LEVEL_OF_SERVICE: Final = "https://codesystem.x12.org/005010/1338"  # UM06
CS_X12_REJECT_REASON: Final = "https://codesystem.x12.org/005010/901"  # AAA03
CS_X12_FOLLOWUP_ACTION: Final = "https://codesystem.x12.org/005010/889"  # AAA04
CS_X12_REVIEW_DECISION_REASON: Final = "https://codesystem.x12.org/external/886"  # HCR03
CS_X12_ENTITY_IDENTIFIER: Final = "https://codesystem.x12.org/005010/98"  # NM101
CS_ADJUDICATION: Final = "http://terminology.hl7.org/CodeSystem/adjudication"
CS_CLAIM_TYPE: Final = "http://terminology.hl7.org/CodeSystem/claim-type"
CS_PROCESS_PRIORITY: Final = "http://terminology.hl7.org/CodeSystem/processpriority"
CS_RELATED_CLAIM_RELATIONSHIP: Final = "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship"
CS_DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CS_LOINC: Final = "http://loinc.org"
NPI_SYSTEM: Final = "http://hl7.org/fhir/sid/us-npi"
URN_IETF_RFC_3986: Final = "urn:ietf:rfc:3986"

# Subscriptions (R5 Backport on R4)
PAS_SUBSCRIPTION_TOPIC: Final = f"{PAS_BASE}/SubscriptionTopic/PASSubscriptionTopic"
BACKPORT_BASE: Final = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_FILTER_CRITERIA: Final = f"{BACKPORT_BASE}/backport-filter-criteria"
BACKPORT_PAYLOAD_CONTENT: Final = f"{BACKPORT_BASE}/backport-payload-content"
BACKPORT_SUBSCRIPTION_STATUS_R4: Final = f"{BACKPORT_BASE}/backport-subscription-status-r4"
BACKPORT_SUBSCRIPTION_NOTIFICATION_R4: Final = f"{BACKPORT_BASE}/backport-subscription-notification-r4"
