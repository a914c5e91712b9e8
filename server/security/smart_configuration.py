"""The ``/.well-known/smart-configuration`` document (SMART App Launch 2.1.0, Conformance,
"Metadata": required ``token_endpoint``, ``capabilities``, ``grant_types_supported``; Backend Services
servers add ``token_endpoint_auth_methods_supported`` = ``private_key_jwt`` and the signing algorithms)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.security.constants import (
    AUTH_METHOD_PRIVATE_KEY_JWT,
    CLIENT_ASSERTION_ALGORITHMS,
    GRANT_TYPE_CLIENT_CREDENTIALS,
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
) -> dict[str, Any]:
    """The SMART configuration JSON for a server at ``base_url`` (no trailing slash needed).

    With an external authorization server, pass its ``token_endpoint`` (and ``issuer``/``jwks_uri``)
    and ``signs_tokens=False``.
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
    return doc


def capability_security(*, description: str | None = None) -> dict[str, Any]:
    """``CapabilityStatement.rest.security`` for a SMART server (FHIR R4 CapabilityStatement; SMART App
    Launch 2.1.0 Conformance). Endpoints are published only in ``.well-known/smart-configuration``:
    the older ``oauth-uris`` extension requires an ``authorize`` endpoint, which Backend Services lack."""
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
