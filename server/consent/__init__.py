"""Member consent for the payer APIs (CMS-0057-F): Provider Access opt-out and Payer-to-Payer opt-in,
decided per patient from stored FHIR Consent resources."""
