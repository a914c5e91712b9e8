"""CRD: CDS Hooks coverage-requirements services (Da Vinci CRD 2.0.1 and 2.2, CDS Hooks 2.0/3.0 prefetch).

Framework-free: ``server/api/cds_hooks.py`` mounts ``CdsServices`` over HTTP. PAS adjudication reuses
``evaluate_coverage`` with facts from ``order_facts_from_claim_item`` (or ``OrderFacts`` built directly).

Wiring (in the app factory)::

    policies = load_policies(DEMO_POLICY_DIR)            # OperationOutcomeError names file and field
    services = CdsServices(policies, http_client=client, now=clock, feedback_sink=sink)
    verifier = CdsClientVerifier(
        [TrustedIssuer("https://ehr.example", jwks_url=..., allowed_jku=frozenset({...}))],
        client, InMemoryJtiStore(), clock,
    )
    app.include_router(build_router(services, verifier=verifier, on_result=store_assertions))

``HookResult.assertions`` carries each ``coverage-assertion-id`` with its decision, for DTR and PAS.
"""

from __future__ import annotations

from .cards import card_problems, response_problems
from .client_auth import CdsClientVerifier, ClientIdentity, InMemoryJtiStore, JtiStore, TrustedIssuer
from .configuration import Configuration, configuration_options, read_configuration
from .coverage import (
    CodeRef,
    CoverageDecision,
    EvaluationContext,
    OrderFacts,
    PatientFacts,
    evaluate_coverage,
)
from .coverage_information import (
    coverage_information_problems,
    render_coverage_information,
    with_coverage_information,
)
from .facts import order_facts_from_claim_item, order_facts_from_request, patient_facts
from .hooks import HOOK_SPECS, HookSpec
from .policies import DEMO_POLICY_DIR
from .policy import PolicySet, is_stale, load_policies, parse_payer_file
from .prefetch import FhirSource, PrefetchHydrator, render_template
from .service import (
    CdsServices,
    CoverageAssertion,
    FeedbackSink,
    HookResult,
    InMemoryFeedbackSink,
    ResourceValidator,
    parse_json,
)
from .versions import SUPPORTED_VERSIONS, CrdVersion, negotiate_version

__all__ = [
    "DEMO_POLICY_DIR",
    "HOOK_SPECS",
    "SUPPORTED_VERSIONS",
    "CdsClientVerifier",
    "CdsServices",
    "ClientIdentity",
    "CodeRef",
    "Configuration",
    "CoverageAssertion",
    "CoverageDecision",
    "CrdVersion",
    "EvaluationContext",
    "FeedbackSink",
    "FhirSource",
    "HookResult",
    "HookSpec",
    "InMemoryFeedbackSink",
    "InMemoryJtiStore",
    "JtiStore",
    "OrderFacts",
    "PatientFacts",
    "PolicySet",
    "PrefetchHydrator",
    "ResourceValidator",
    "TrustedIssuer",
    "card_problems",
    "configuration_options",
    "coverage_information_problems",
    "evaluate_coverage",
    "is_stale",
    "load_policies",
    "negotiate_version",
    "order_facts_from_claim_item",
    "order_facts_from_request",
    "parse_json",
    "parse_payer_file",
    "patient_facts",
    "read_configuration",
    "render_coverage_information",
    "render_template",
    "response_problems",
    "with_coverage_information",
]
