"""The storage schema (SQLAlchemy Core), identical on SQLite and PostgreSQL.

``resource`` holds the current version of each resource, ``resource_version`` every version's exact bytes,
and the ``idx_*`` tables the search index, rewritten in the same transaction as each write. Every table
has a ``tenant`` column so access control can filter in SQL. Migrations: ``server/migrations``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB

from server.app_launch.schema import app_launch_tables
from server.bulk.schema import bulk_tables
from server.ops.schema import ops_tables
from server.security.replay_sql import jti_table

metadata = MetaData()

_JSON = JSON().with_variant(JSONB(), "postgresql")
_BYTES = LargeBinary().with_variant(BYTEA(), "postgresql")
# Normalised search strings compare by code point on both engines, so a prefix search is an index range.
_CODEPOINT_TEXT = Text().with_variant(Text(collation="C"), "postgresql")


def _key_columns() -> list[Column[str]]:
    return [
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("resource_type", String(64), nullable=False),
        Column("resource_id", String(64), nullable=False),
    ]


resource = Table(
    "resource",
    metadata,
    *_key_columns(),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", String(26), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("content", _JSON, nullable=True),
    PrimaryKeyConstraint("tenant", "resource_type", "resource_id", name="pk_resource"),
    Index("ix_resource_type_updated", "tenant", "resource_type", "last_updated"),
)

resource_version = Table(
    "resource_version",
    metadata,
    *_key_columns(),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", String(26), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("method", String(8), nullable=False),
    Column("raw", _BYTES, nullable=False),
    PrimaryKeyConstraint("tenant", "resource_type", "resource_id", "version_id", name="pk_resource_version"),
    Index("ix_resource_version_changes", "tenant", "resource_type", "last_updated"),
)

idx_token = Table(
    "idx_token",
    metadata,
    *_key_columns(),
    Column("param", String(64), nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=False),
    Index("ix_idx_token_value", "tenant", "resource_type", "param", "code"),
    Index("ix_idx_token_owner", "resource_id", "resource_type", "tenant"),
)

idx_string = Table(
    "idx_string",
    metadata,
    *_key_columns(),
    Column("param", String(64), nullable=False),
    Column("value", Text, nullable=False),
    Column("norm", _CODEPOINT_TEXT, nullable=False),
    Index("ix_idx_string_value", "tenant", "resource_type", "param", "norm"),
    Index("ix_idx_string_owner", "resource_id", "resource_type", "tenant"),
)

idx_reference = Table(
    "idx_reference",
    metadata,
    *_key_columns(),
    Column("param", String(64), nullable=False),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", Text, nullable=True),
    Index("ix_idx_reference_target", "tenant", "resource_type", "param", "target_id"),
    Index("ix_idx_reference_owner", "resource_id", "resource_type", "tenant"),
)

idx_date = Table(
    "idx_date",
    metadata,
    *_key_columns(),
    Column("param", String(64), nullable=False),
    Column("low", String(26), nullable=False),
    Column("high", String(26), nullable=False),
    Index("ix_idx_date_value", "tenant", "resource_type", "param", "low", "high"),
    Index("ix_idx_date_owner", "resource_id", "resource_type", "tenant"),
)

INDEX_TABLES = (idx_token, idx_string, idx_reference, idx_date)

# Coverage assertions handed out by the CRD services (CRD resp-31): DTR's `context` and PAS find them here.
coverage_assertion = Table(
    "coverage_assertion",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("assertion_id", String(64), nullable=False),
    Column("created", String(26), nullable=False),
    Column("crd_version", String(16), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("hook_instance", String(64), nullable=False),
    Column("order_reference", Text, nullable=False),
    Column("coverage_reference", Text, nullable=False),
    Column("payer_id", String(64), nullable=False),
    Column("record", _JSON, nullable=False),
    PrimaryKeyConstraint("tenant", "assertion_id", name="pk_coverage_assertion"),
)
# The owner indexes lead with resource_id: a search's semi-join probes them once per candidate resource,
# and with stale planner statistics a (tenant, resource_type) prefix made each probe a full scan.

# PAS submissions (Claim/$submit): the request and current response Bundles as exact JSON text, the core's
# Decision (server/pas/codec.py), keyed by every Claim identifier token so replays, updates, cancels and
# $inquire work from any process.
pas_submission = Table(
    "pas_submission",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("submission_id", String(64), nullable=False),
    Column("version", String(16), nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("claim_response_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pended | final | cancelled
    Column("request", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("created", String(35), nullable=False),
    Column("updated", String(35), nullable=False),
    PrimaryKeyConstraint("tenant", "submission_id", name="pk_pas_submission"),
)
pas_submission_key = Table(
    "pas_submission_key",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("version", String(16), nullable=False),
    Column("token", Text, nullable=False),  # Claim identifier `system|value`
    Column("submission_id", String(64), nullable=False),
    PrimaryKeyConstraint("tenant", "version", "token", name="pk_pas_submission_key"),
)
# Member and patient identifier values of each submission: the key every PAS $inquire must match.
pas_submission_member = Table(
    "pas_submission_member",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("version", String(16), nullable=False),
    Column("member", Text, nullable=False),
    Column("submission_id", String(64), nullable=False),
    PrimaryKeyConstraint("tenant", "version", "member", "submission_id", name="pk_pas_submission_member"),
)
# Trace numbers of each submission (item trace numbers and Claim identifier values): a DTR client launched
# from a pended request names it by one of them (``$questionnaire-package`` context, PAS ainfo-3).
pas_submission_trace = Table(
    "pas_submission_trace",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("trace", Text, nullable=False),
    Column("submission_id", String(64), nullable=False),
    PrimaryKeyConstraint("tenant", "trace", "submission_id", name="pk_pas_submission_trace"),
)
# The PAS review queue: one row per pended submission, ordered by due time.
pas_review = Table(
    "pas_review",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("review_id", String(64), nullable=False),
    Column("submission_id", String(64), nullable=False),
    Column("due_at", String(35), nullable=False),
    Column("urgency", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("assignee", String(64), nullable=True),
    Column("record", Text, nullable=False),  # the core's ReviewItem
    PrimaryKeyConstraint("tenant", "review_id", name="pk_pas_review"),
    Index("ix_pas_review_queue", "tenant", "status", "due_at"),
)

# PAS Subscriptions (R5 Backport on R4): the Subscription as stored, where notifications go, the org filter
# and the event counter; `pas_outbox` holds every notification until it is delivered (server/pas/outbox.py).
pas_subscription = Table(
    "pas_subscription",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("subscription_id", String(64), nullable=False),
    Column("version", String(16), nullable=False),  # PAS version the subscription was created under
    Column("status", String(16), nullable=False),  # requested | active | error | off
    Column("version_id", Integer, nullable=False),
    Column("resource", Text, nullable=False),  # the Subscription as accepted (exact JSON)
    Column("url", Text, nullable=False),  # the Subscription's absolute URL, named in notifications
    Column("fhir_base", Text, nullable=False),  # where id-only foci resolve
    Column("endpoint", Text, nullable=False),
    Column("payload", String(16), nullable=False),  # id-only | full-resource
    Column("headers", Text, nullable=False),  # JSON list of channel.header strings
    Column("org_filter", Text, nullable=False),  # JSON list of [system, value] (the submitter's org)
    Column("heartbeat_period", Integer, nullable=True),
    Column("heartbeat_due_at", String(35), nullable=True),
    Column("events", Integer, nullable=False, server_default="0"),  # events since subscription start
    Column("error", Text, nullable=True),
    Column("created", String(35), nullable=False),
    Column("updated", String(35), nullable=False),
    PrimaryKeyConstraint("tenant", "subscription_id", name="pk_pas_subscription"),
    Index("ix_pas_subscription_version", "tenant", "version", "status"),
)
pas_outbox = Table(
    "pas_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("subscription_id", String(64), nullable=False),
    Column("kind", String(24), nullable=False),  # handshake | heartbeat | event-notification
    Column("event_number", Integer, nullable=True),
    Column("body", Text, nullable=False),  # the notification Bundle (exact JSON)
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("available_at", String(35), nullable=False),  # next attempt, or the end of a claim's lease
    Column("claim_token", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created", String(35), nullable=False),
    Column("delivered_at", String(35), nullable=True),
    Index("ix_pas_outbox_due", "status", "available_at"),
    Index("ix_pas_outbox_subscription", "tenant", "subscription_id", "event_number"),
)

# 278 exchanges with legacy payers a PAS request was routed to (server/pas/x12_log.py): the X12 text as
# sent and received, timestamps and outcome, shown on the request's detail.
pas_x12_exchange = Table(
    "pas_x12_exchange",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("exchange_id", String(64), nullable=False),
    Column("submission_id", String(64), nullable=False),
    Column("payer", String(64), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("claim_identifier", Text, nullable=False),
    Column("request_278", Text, nullable=False),
    Column("response_278", Text, nullable=True),
    Column("sent_at", String(35), nullable=False),
    Column("received_at", String(35), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=True),
    PrimaryKeyConstraint("tenant", "exchange_id", name="pk_pas_x12_exchange"),
    Index("ix_pas_x12_exchange_submission", "tenant", "submission_id"),
)
# CDS Hooks card feedback (CDS Hooks §Feedback), one row per feedback item.
cds_feedback = Table(
    "cds_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("service_id", String(64), nullable=False),
    Column("card", String(255), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("received", String(35), nullable=False),
    Column("item", _JSON, nullable=False),
    Index("ix_cds_feedback_service", "tenant", "service_id", "received"),
)
# Token ids seen, for replay protection of CDS client JWTs and SMART client assertions, across workers.
security_jti = jti_table(metadata)
# Payer operations: staff users, sessions, request history, peer-to-peer, appeals (server/ops/schema.py).
ops_staff_user, ops_session, ops_event, ops_peer_to_peer, ops_appeal = ops_tables(metadata)
# SMART App Launch for patients: patient logins, authorization codes, refresh tokens (server/app_launch).
patient_login, app_launch_code, app_launch_refresh_token = app_launch_tables(metadata)
# Bulk export jobs and their NDJSON files (server/bulk).
bulk_export_job, bulk_export_file = bulk_tables(metadata)
