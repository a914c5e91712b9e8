"""The ``/.well-known/smart-configuration`` document (SMART App Launch 2.1.0, Conformance,
"Metadata": required ``token_endpoint``, ``capabilities``, ``grant_types_supported``; Backend Services
servers add ``token_endpoint_auth_methods_supported`` = ``private_key_jwt`` and the signing algorithms)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.security.constants import (
    AUTH_METHOD_CLIENT_SECRET_BASIC,
    AUTH_METHOD_PRIVATE_KEY_JWT,
    AUTHORIZE_PATH,
    CLIENT_ASSERTION_ALGORITHMS,
    GRANT_TYPE_AUTHORIZATION_CODE,
    GRANT_TYPE_CLIENT_CREDENTIALS,
    GRANT_TYPE_REFRESH_TOKEN,
    JWKS_PATH,
    RESTFUL_SECURITY_SERVICE_SYSTEM,
    SMART_CAPABILITIES,
    TOKEN_PATH,
)

# What the token endpoint can grant: v2 system scopes for the resources PriorGate serves, v1 aliases.
DEFAULT_SCOPES_SUPPORTED: tuple[str, ...] = (
    "system/Claim.cr",
    "system/Claim.crs",
    "system/Claim.rs",
    "system/ClaimResponse.rs",
    "system/Questionnaire.rs",
    "system/QuestionnaireResponse.cruds",
    "system/Subscription.cruds",
    "system/Bundle.rs",
    "system/AuditEvent.rs",
    "system/*.rs",
    "system/*.read",
    "system/*.write",
)


def smart_configuration(
    base_url: str,
    *,
    token_endpoint: str | None = None,
    jwks_uri: str | None = None,
    signs_tokens: bool = True,
    scopes_supported: Sequence[str] = DEFAULT_SCOPES_SUPPORTED,
    issuer: str | None = None,
    patient_launch: bool = False,
) -> dict[str, Any]:
    """The SMART configuration JSON for a server at ``base_url`` (no trailing slash needed).

    With an external authorization server, pass its ``token_endpoint`` (and ``issuer``/``jwks_uri``)
    and ``signs_tokens=False``. ``patient_launch`` adds PriorGate's own patient authorization
    (standalone launch, :func:`patient_launch_metadata`).
    """
    base = base_url.rstrip("/")
    doc: dict[str, Any] = {
        "token_endpoint": token_endpoint or base + TOKEN_PATH,
        "token_endpoint_auth_methods_supported": [AUTH_METHOD_PRIVATE_KEY_JWT],
        "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_ASSERTION_ALGORITHMS),
        "grant_types_supported": [GRANT_TYPE_CLIENT_CREDENTIALS],
        "scopes_supported": list(scopes_supported),
        "capabilities": list(SMART_CAPABILITIES),
    }
    if issuer is not None:
        doc["issuer"] = issuer
    if jwks_uri is not None:
        doc["jwks_uri"] = jwks_uri
    elif signs_tokens:
        doc["jwks_uri"] = base + JWKS_PATH
    if patient_launch:
        for name, value in patient_launch_metadata(base).items():
            doc[name] = (
                list(dict.fromkeys([*doc.get(name, []), *value])) if isinstance(value, list) else value
            )
    return doc


# The scopes a patient app can be granted (SMART v2 and v1 spellings), beside the Backend Services ones.
PATIENT_SCOPES_SUPPORTED: tuple[str, ...] = (
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "patient/*.read",
    "patient/Patient.rs",
    "patient/ExplanationOfBenefit.rs",
)


def patient_launch_metadata(base_url: str) -> dict[str, Any]:
    """What PriorGate's own patient authorization adds to the SMART configuration (SMART App Launch
    2.1.0 Conformance: authorization code flow with PKCE S256, standalone patient launch, public and
    symmetric confidential clients, OpenID Connect id_token, refresh tokens)."""
    base = base_url.rstrip("/")
    return {
        "issuer": base,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "grant_types_supported": [GRANT_TYPE_AUTHORIZATION_CODE, GRANT_TYPE_REFRESH_TOKEN],
        "token_endpoint_auth_methods_supported": [AUTH_METHOD_CLIENT_SECRET_BASIC],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(PATIENT_SCOPES_SUPPORTED),
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "context-standalone-patient",
            "sso-openid-connect",
            "permission-patient",
            "permission-offline",
            "permission-online",
        ],
    }


def capability_security(
    *, description: str | None = None, oauth_uris: tuple[str, str] | None = None
) -> dict[str, Any]:
    """``CapabilityStatement.rest.security`` for a SMART server (FHIR R4 CapabilityStatement; SMART App
    Launch 2.1.0 Conformance). Endpoints are published in ``.well-known/smart-configuration``; the older
    ``oauth-uris`` extension requires an ``authorize`` endpoint, so it is added only when ``oauth_uris``
    (authorize URL, token URL) are given: with PriorGate's own patient authorization."""
    security = _security(description)
    if oauth_uris is not None:
        security["service"][0]["text"] = (
            "OAuth2 using SMART App Launch for patients (authorization code with PKCE) and SMART Backend "
            "Services (client_credentials, private_key_jwt)"
        )
        if description is None:
            security["description"] = (
                "Every request except metadata and discovery needs a Bearer token: SMART system scopes, "
                "or patient scopes for the signed-in patient's own data."
            )
        security["extension"] = [
            {
                "url": OAUTH_URIS_EXTENSION,
                "extension": [
                    {"url": "authorize", "valueUri": oauth_uris[0]},
                    {"url": "token", "valueUri": oauth_uris[1]},
                ],
            }
        ]
    return security


OAUTH_URIS_EXTENSION = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def _security(description: str | None) -> dict[str, Any]:
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": RESTFUL_SECURITY_SERVICE_SYSTEM,
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART Backend Services (client_credentials, private_key_jwt)",
            }
        ],
        "description": description
        or "Every request except metadata and discovery needs a Bearer token with SMART system scopes.",
    }
