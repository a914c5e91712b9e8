"""Security building blocks: SMART Backend Services tokens, scopes, tenancy and BALP audit events.

Everything except ``dependencies``, ``router`` and ``audit_log`` is framework-free. ``server/app.py``
(``secure``) wires it up from the ``PRIORGATE_*`` settings:

1. ``build_security(SecuritySettings(), ...)`` builds the key provider, client registry (clients file
   plus demo clients), the database replay store and the token verifier (local or external issuer);
2. ``install_security(app, CachingVerifier(verifier))`` and ``build_security_router`` (token endpoint,
   JWKS, smart-configuration);
3. ``FhirScopeGuard`` checks the scope of every request under ``/fhir``, ``/pas/{version}`` and
   ``/dtr/{version}`` (401/403 before any route); other routes depend on ``authenticated``;
4. ``access.PrincipalAccess`` is the repository's tenant filter (``Repository.acting_for``), built per
   request by ``server.services.scoped_services``;
5. ``AuditTrail`` (outermost) stores a BALP AuditEvent per call through ``audit_log.AuditLog``;
   ``limits.check_json`` bounds every FHIR body.

``PRIORGATE_AUTH_MODE=off`` skips 1-3 (development only; warned about on every start).
"""

from server.security.assertions import (
    AssertionPolicy,
    ClientAuthenticationError,
    VerifiedAssertion,
    sign_client_assertion,
    verify_client_assertion,
)
from server.security.audit import (
    AuditRequest,
    AuditSource,
    audit_decision,
    audit_event,
    audit_event_for_request,
    audit_operation,
    audit_read,
    audit_search,
    audit_write,
)
from server.security.clients import (
    ClientRegistrationError,
    ClientRegistry,
    InMemoryClientRegistry,
    RegisteredClient,
    client_from_json,
    dump_clients,
    register_client,
)
from server.security.config import SecurityComponents, SecuritySettings, build_security
from server.security.dependencies import (
    PUBLIC_PATHS,
    AuditTrail,
    FhirScopeGuard,
    SecurityGate,
    audit_request,
    authenticated,
    install_security,
    require,
    require_on_path,
    require_operation,
    unprotected_routes,
)
from server.security.fhir_requests import Requirement, bundle_requirements, fhir_request_requirement
from server.security.jwks import JwksCache, JwksError, select_key
from server.security.keys import KeyProvider, SigningKey, StaticKeyProvider, jwks_of
from server.security.limits import InputLimits, check_json, parse_json_within_limits
from server.security.principal import Principal, authorize, authorize_operation
from server.security.replay import InMemoryReplayStore, ReplayStore
from server.security.router import SecurityEndpoints, build_security_router
from server.security.scopes import (
    OPERATION_REQUIREMENTS,
    RESTFUL_INTERACTION_SCOPE,
    Scope,
    ScopeSet,
    ScopeSyntaxError,
    interaction_letter,
    operation_allowed,
    operation_requirement,
    parse_scope,
    parse_scopes,
    scope_allows,
)
from server.security.smart_configuration import capability_security, smart_configuration
from server.security.tenancy import (
    DEFAULT_TENANCY,
    Role,
    TenancyRule,
    TenantFilter,
    ensure_readable,
    ensure_writable,
    not_found_error,
    read_filter,
    write_tenant,
)
from server.security.token_endpoint import TokenRequestError, TokenService
from server.security.tokens import (
    AccessTokenPolicy,
    AccessTokenVerifier,
    ExternalIssuer,
    ExternalTokenVerifier,
    InvalidTokenError,
    IssuedToken,
    LocalTokenVerifier,
    issue_access_token,
)

__all__ = [
    "DEFAULT_TENANCY",
    "OPERATION_REQUIREMENTS",
    "PUBLIC_PATHS",
    "RESTFUL_INTERACTION_SCOPE",
    "AccessTokenPolicy",
    "AccessTokenVerifier",
    "AssertionPolicy",
    "AuditRequest",
    "AuditSource",
    "AuditTrail",
    "ClientAuthenticationError",
    "ClientRegistrationError",
    "ClientRegistry",
    "ExternalIssuer",
    "FhirScopeGuard",
    "ExternalTokenVerifier",
    "InMemoryClientRegistry",
    "InMemoryReplayStore",
    "InputLimits",
    "InvalidTokenError",
    "IssuedToken",
    "JwksCache",
    "JwksError",
    "KeyProvider",
    "LocalTokenVerifier",
    "Principal",
    "RegisteredClient",
    "ReplayStore",
    "Requirement",
    "Role",
    "Scope",
    "ScopeSet",
    "ScopeSyntaxError",
    "SecurityComponents",
    "SecurityEndpoints",
    "SecurityGate",
    "SecuritySettings",
    "SigningKey",
    "StaticKeyProvider",
    "TenancyRule",
    "TenantFilter",
    "TokenRequestError",
    "TokenService",
    "VerifiedAssertion",
    "audit_decision",
    "audit_event",
    "audit_event_for_request",
    "audit_operation",
    "audit_read",
    "audit_request",
    "audit_search",
    "audit_write",
    "authenticated",
    "authorize",
    "authorize_operation",
    "build_security",
    "capability_security",
    "bundle_requirements",
    "build_security_router",
    "check_json",
    "client_from_json",
    "dump_clients",
    "ensure_readable",
    "fhir_request_requirement",
    "ensure_writable",
    "install_security",
    "interaction_letter",
    "issue_access_token",
    "jwks_of",
    "not_found_error",
    "operation_allowed",
    "operation_requirement",
    "parse_json_within_limits",
    "parse_scope",
    "parse_scopes",
    "read_filter",
    "register_client",
    "require",
    "require_on_path",
    "require_operation",
    "scope_allows",
    "select_key",
    "sign_client_assertion",
    "smart_configuration",
    "unprotected_routes",
    "verify_client_assertion",
    "write_tenant",
]
