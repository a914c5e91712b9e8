"""Canonical names for the security layer: OAuth 2.0 / SMART strings, endpoint paths, audit code systems.

Spec: SMART App Launch 2.1.0 (Backend Services, Conformance, Scopes and Launch Context),
RFC 6749 (OAuth 2.0), RFC 7523 (JWT client assertions), RFC 9068 (JWT access tokens),
IHE ITI Basic Audit Log Patterns (BALP) 1.1.
"""

from __future__ import annotations

from typing import Final

# RFC 6749 §4.4 / RFC 7523 §2.2 (SMART Backend Services "Request access token").
GRANT_TYPE_CLIENT_CREDENTIALS: Final = "client_credentials"
CLIENT_ASSERTION_TYPE_JWT_BEARER: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUTH_METHOD_PRIVATE_KEY_JWT: Final = "private_key_jwt"

# SMART Backend Services: clients SHALL support RS384 or ES384; servers SHALL support both.
CLIENT_ASSERTION_ALGORITHMS: Final = ("RS384", "ES384")
# The algorithms PriorGate signs its own access tokens with (KeyProvider implementations).
ACCESS_TOKEN_ALGORITHMS: Final = ("ES256", "RS256")
# RFC 9068 §2.1: the JOSE "typ" of a JWT access token.
ACCESS_TOKEN_JWT_TYPE: Final = "at+jwt"
TOKEN_TYPE_BEARER: Final = "Bearer"

# SMART Conformance §"Capabilities" values PriorGate advertises.
SMART_CAPABILITIES: Final = ("client-confidential-asymmetric", "permission-v2", "permission-v1")

# CapabilityStatement.rest.security (FHIR R4; SMART App Launch Conformance).
RESTFUL_SECURITY_SERVICE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/restful-security-service"

# Endpoint paths relative to the server root (the FHIR base is ``/fhir``).
SMART_CONFIGURATION_PATH: Final = "/.well-known/smart-configuration"
TOKEN_PATH: Final = "/auth/token"
JWKS_PATH: Final = "/auth/jwks"
FHIR_BASE_PATH: Final = "/fhir"

# Custom access-token claims (RFC 9068 allows private claims); names stable for external issuers too.
CLAIM_TENANTS: Final = "tenants"
CLAIM_ROLES: Final = "roles"
CLAIM_SCOPE: Final = "scope"
CLAIM_CLIENT_ID: Final = "client_id"
# SMART App Launch "Launch context arrives with your access_token": the Patient id of patient/ scopes.
CLAIM_PATIENT: Final = "patient"

# IHE BALP and the HL7 terminology it binds to.
BALP_PROFILE_BASE: Final = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/"
BALP_AGENT_DETAIL_EXTENSION: Final = BALP_PROFILE_BASE + "ihe-agentDetail"
AUDIT_EVENT_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION_SYSTEM: Final = "http://hl7.org/fhir/restful-interaction"
DICOM_DCM_SYSTEM: Final = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SECURITY_SOURCE_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
AUDIT_ENTITY_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/object-role"
NETWORK_TYPE_URL_CODE: Final = "5"  # AuditEvent.agent.network.type: 5 = URI
NETWORK_TYPE_IP_CODE: Final = "2"  # 2 = IP address
# PriorGate's own AuditEvent.type for a prior-authorization decision (BALP has no pattern for it; the
# binding of AuditEvent.type is extensible).
PRIORGATE_AUDIT_EVENT_TYPE_SYSTEM: Final = "https://priorgate.org/fhir/CodeSystem/audit-event-type"
AUDIT_EVENT_TYPE_PA_DECISION: Final = "pa-decision"
# ... and for a Subscription notification PriorGate sent (or failed to send) to a rest-hook endpoint.
AUDIT_EVENT_TYPE_PA_NOTIFICATION: Final = "pa-notification"
# AuditEvent.subtype of a notification: the Subscriptions Backport notification type.
BACKPORT_NOTIFICATION_TYPE_SYSTEM: Final = "http://hl7.org/fhir/subscription-notification-type"
# The FHIR operation name (``$submit``) as a second AuditEvent.subtype coding of an ``operation`` event.
PRIORGATE_OPERATION_SYSTEM: Final = "https://priorgate.org/fhir/CodeSystem/fhir-operation"

# SMART App Launch 2.1.0 (authorization code flow, PriorGate's own patient authorization).
AUTHORIZE_PATH: Final = "/auth/authorize"
GRANT_TYPE_AUTHORIZATION_CODE: Final = "authorization_code"
GRANT_TYPE_REFRESH_TOKEN: Final = "refresh_token"
AUTH_METHOD_CLIENT_SECRET_BASIC: Final = "client_secret_basic"
