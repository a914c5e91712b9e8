"""Canonical URLs the PAS <-> X12 mapping reads and writes (PAS 2.0.1 and 2.2.1, FHIR R4)."""

from __future__ import annotations

PAS = "http://hl7.org/fhir/us/davinci-pas/"
PAS_SD = PAS + "StructureDefinition/"
PAS_TEMP_CODES = PAS + "CodeSystem/PASTempCodes"

EXT_LEVEL_OF_SERVICE = PAS_SD + "extension-levelOfServiceCode"
EXT_TRANSMISSION_IDS = PAS_SD + "extension-TransmissionIdentifiers"
EXT_SUB_DEPARTMENT = PAS_SD + "extension-identifierSubDepartment"
EXT_CARE_TEAM_CLAIM_SCOPE = PAS_SD + "extension-careTeamClaimScope"
EXT_DOCUMENT_INFORMATION = PAS_SD + "extension-documentInformation"
EXT_DIAGNOSIS_RECORDED_DATE = PAS_SD + "extension-diagnosisRecordedDate"
EXT_SERVICE_ITEM_REQUEST_TYPE = PAS_SD + "extension-serviceItemRequestType"
EXT_CERTIFICATION_TYPE = PAS_SD + "extension-certificationType"
EXT_ITEM_TRACE_NUMBER = PAS_SD + "extension-itemTraceNumber"
EXT_AUTHORIZATION_NUMBER = PAS_SD + "extension-authorizationNumber"
EXT_ADMIN_REFERENCE_NUMBER = PAS_SD + "extension-administrationReferenceNumber"
EXT_REQUESTED_SERVICE = PAS_SD + "extension-requestedService"
EXT_EPSDT = PAS_SD + "extension-epsdtIndicator"
EXT_RESIDENTIAL_STATUS = PAS_SD + "extension-nursingHomeResidentialStatus"
EXT_LEVEL_OF_CARE = PAS_SD + "extension-nursingHomeLevelOfCare"
EXT_UNIT_RATE_LIMIT = PAS_SD + "extension-revenueUnitRateLimit"
EXT_CONDITION_CODE = PAS_SD + "extension-conditionCode"
EXT_HOME_HEALTH = PAS_SD + "extension-homeHealthCareInformation"
EXT_MILITARY_STATUS = PAS_SD + "extension-militaryStatus"
EXT_PATIENT_STATUS = PAS_SD + "extension-patientStatus"
EXT_CALENDAR_PATTERN = PAS_SD + "extension-timingcalendarpattern"
EXT_DELIVERY_PATTERN = PAS_SD + "extension-timingdeliverypattern"
EXT_PRODUCT_CODE_END = PAS_SD + "extension-productOrServiceCodeEnd"
EXT_CLAIM_ENCOUNTER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter"
# Response side
EXT_REVIEW_ACTION = PAS_SD + "extension-reviewAction"
EXT_REVIEW_ACTION_CODE = PAS_SD + "extension-reviewActionCode"
EXT_ITEM_PREAUTH_ISSUE_DATE = PAS_SD + "extension-itemPreAuthIssueDate"
EXT_ITEM_PREAUTH_PERIOD = PAS_SD + "extension-itemPreAuthPeriod"
EXT_ITEM_REQUESTED_SERVICE_DATE = PAS_SD + "extension-itemRequestedServiceDate"
EXT_ITEM_AUTHORIZED_PROVIDER = PAS_SD + "extension-itemAuthorizedProvider"
EXT_AUTHORIZED_PROVIDER_TYPE = PAS_SD + "extension-authorizedProviderType"
EXT_ERROR_ELEMENT = PAS_SD + "extension-errorElement"
EXT_ERROR_PATH = PAS_SD + "extension-errorPath"
EXT_ERROR_FOLLOWUP = PAS_SD + "extension-errorFollowupAction"
EXT_ITEM_TRACE = EXT_ITEM_TRACE_NUMBER
PROFILE_RESPONSE_BUNDLE = PAS_SD + "profile-pas-response-bundle"
PROFILE_CLAIM_RESPONSE = PAS_SD + "profile-claimresponse"
PROFILE_INQUIRY_RESPONSE_BUNDLE = PAS_SD + "profile-pas-inquiry-response-bundle"
PROFILE_INQUIRY_CLAIM_RESPONSE = PAS_SD + "profile-claiminquiryresponse"
PROFILE_COMMUNICATION_REQUEST = PAS_SD + "profile-communicationrequest"

X12_CODE_SYSTEM = "https://codesystem.x12.org/005010/"  # + data element number, e.g. .../1322
X12_REVIEW_DECISION_REASON = "https://codesystem.x12.org/external/886"

NPI = "http://hl7.org/fhir/sid/us-npi"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9_CM = "http://hl7.org/fhir/sid/icd-9-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
HCPCS_HTTPS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
NDC = "http://hl7.org/fhir/sid/ndc"
PLACE_OF_SERVICE = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
NUBC_BILL_TYPE = "https://www.nubc.org/CodeSystem/TypeOfBill"
NUBC_REVENUE = "https://www.nubc.org/CodeSystem/RevenueCodes"
NUBC_ADMIT_TYPE = "https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit"
NUBC_POINT_OF_ORIGIN = "https://www.nubc.org/CodeSystem/PointOfOrigin"
NUBC_PATIENT_STATUS = "https://www.nubc.org/CodeSystem/PatDischargeStatus"
NUCC_TAXONOMY = "http://nucc.org/provider-taxonomy"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
USPS = "https://www.usps.com/"
TRN_ORG_PREFIX = "urn:trnorg:"


def x12_system(element: str) -> str:
    """The PAS code system URL of X12 data element ``element`` (e.g. ``"306"``)."""
    return X12_CODE_SYSTEM + element


# Inquiry (Claim Inquiry profile) search keys
EXT_ITEM_CERT_ISSUE_DATE = PAS_SD + "extension-itemCertificationIssueDate"
EXT_ITEM_CERT_EFFECTIVE_DATE = PAS_SD + "extension-itemCertificationEffectiveDate"
EXT_ITEM_CERT_EXPIRATION_DATE = PAS_SD + "extension-itemCertificationExpirationDate"
