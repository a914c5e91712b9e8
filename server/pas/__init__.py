"""PAS (Da Vinci Prior Authorization Support 2.0.1 and 2.2.1): the pure domain core.

``Claim/$submit``: :func:`parse_pas_request` -> storage lookup by :func:`lookup_keys` ->
:func:`process_submit` (which runs :func:`fingerprint`, :func:`classify`, :func:`check_update`,
:func:`decide` or :func:`decide_update` with the coverage rules injected, and
:func:`build_submit_response` or :func:`build_error_response`); pended items -> :func:`open_review`,
reviewer actions -> :func:`apply_review` -> a new response version -> :func:`result_notification` for
subscribers whose :class:`OrgFilter` matches the submitter.
``Claim/$inquire``: :func:`parse_inquiry_request` -> :func:`find_matches` -> :func:`inquire_output`.
No storage or HTTP here: routes and persistence wrap it.
"""

from .bundle import BundleIndex, Entry
from .codes import CertificationType, FollowupAction, InfoChange, RejectReason, ReviewAction, Urgency
from .decision import (
    Decision,
    DecisionPolicy,
    InfoRequest,
    ItemDecision,
    Modification,
    Reviewer,
    decide,
    decide_update,
)
from .evaluator import PolicyCoverageRules
from .fhirdata import Code, Ident, Period
from .idempotency import PriorItem, PriorSubmission, SubmissionKind, check_update, classify, fingerprint
from .inquiry import (
    PasInquiry,
    StoredAuthorization,
    find_matches,
    inquire_output,
    inquiry_response_bundle,
    matches,
    parse_inquiry_request,
)
from .notification import (
    NotificationEvent,
    OrgFilter,
    SubscriptionRef,
    handshake,
    heartbeat,
    notification_bundle,
    parse_org_filter,
    result_notification,
    status_parameters,
    subscription_filter,
)
from .ports import CoverageEvaluator, CoverageFinding, CoverageQuery, IdFactory
from .request import PasRequest, RequestItem, parse_pas_request
from .response import BusinessError, build_error_response, build_submit_response, claim_response_of
from .review import (
    ReviewClock,
    ReviewClocks,
    ReviewerAction,
    ReviewerDecision,
    ReviewItem,
    additional_information_task,
    apply_review,
    due_at,
    extend_due,
    open_review,
    request_more_information,
)
from .submission import StoredSubmission, SubmitResult, lookup_keys, process_submit
from .subscription import AcceptedSubscription, RetryPolicy, accept_subscription
from .versions import PasVersion, VersionRules

__all__ = [
    "AcceptedSubscription",
    "BundleIndex",
    "BusinessError",
    "CertificationType",
    "Code",
    "CoverageEvaluator",
    "CoverageFinding",
    "CoverageQuery",
    "Decision",
    "DecisionPolicy",
    "Entry",
    "FollowupAction",
    "IdFactory",
    "Ident",
    "InfoChange",
    "InfoRequest",
    "ItemDecision",
    "Modification",
    "NotificationEvent",
    "OrgFilter",
    "PasInquiry",
    "PasRequest",
    "PasVersion",
    "Period",
    "PolicyCoverageRules",
    "PriorItem",
    "PriorSubmission",
    "RejectReason",
    "RequestItem",
    "RetryPolicy",
    "ReviewAction",
    "ReviewClock",
    "ReviewClocks",
    "ReviewItem",
    "Reviewer",
    "ReviewerAction",
    "ReviewerDecision",
    "StoredAuthorization",
    "StoredSubmission",
    "SubmitResult",
    "SubmissionKind",
    "SubscriptionRef",
    "Urgency",
    "VersionRules",
    "accept_subscription",
    "additional_information_task",
    "apply_review",
    "build_error_response",
    "build_submit_response",
    "check_update",
    "claim_response_of",
    "classify",
    "decide",
    "decide_update",
    "due_at",
    "extend_due",
    "find_matches",
    "fingerprint",
    "handshake",
    "heartbeat",
    "inquire_output",
    "inquiry_response_bundle",
    "lookup_keys",
    "matches",
    "notification_bundle",
    "open_review",
    "parse_inquiry_request",
    "parse_org_filter",
    "parse_pas_request",
    "process_submit",
    "request_more_information",
    "result_notification",
    "status_parameters",
    "subscription_filter",
]
