"""The codes and canonical URLs consent decisions read.

Provider Access opt-out (CMS-0057-F: an opt-out model) has no standard Consent profile; PriorGate marks
such a Consent with a ``Consent.category`` coding (or a ``provision.purpose`` coding) from its own code
system, :data:`PAYER_API_CONSENT_SYSTEM` code :data:`PROVIDER_ACCESS`. Payer-to-Payer opt-in follows the
HRex 1.0.0 Consent profile (policy URI, a permit provision with a period and an IRCP actor naming the
recipient payer).
"""

from __future__ import annotations

from typing import Final

# PriorGate's marker for the payer API a Consent governs.
PAYER_API_CONSENT_SYSTEM: Final = "https://priorgate.org/fhir/CodeSystem/payer-api-consent"
PROVIDER_ACCESS: Final = "provider-access"
PAYER_TO_PAYER: Final = "payer-to-payer"

# Consent.provision.type (R4 consent-provision-type).
PROVISION_PERMIT: Final = "permit"
PROVISION_DENY: Final = "deny"
# Consent.status (R4 consent-state-codes): only active Consents count.
STATUS_ACTIVE: Final = "active"

# HRex 1.0.0 Consent profile: Consent.policy.uri says which data may be shared.
HREX_CONSENT_PROFILE: Final = "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition/hrex-consent"
HREX_POLICY_REGULAR: Final = (
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#regular"
)
HREX_POLICY_SENSITIVE: Final = (
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#sensitive"
)
HREX_POLICIES: Final = frozenset({HREX_POLICY_REGULAR, HREX_POLICY_SENSITIVE})

# Consent.provision.actor.role naming the recipient of the disclosure.
PARTICIPATION_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RECIPIENT_ROLE: Final = "IRCP"

# The identifier system of a payer (Organization.identifier, Consent actor identifier).
PAYER_ID_SYSTEM: Final = "https://priorgate.org/fhir/sid/payer-id"

# AuditEvent.type of a consent decision that kept a patient out of an export.
AUDIT_EVENT_TYPE_CONSENT_DECISION: Final = "consent-decision"
