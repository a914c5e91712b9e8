"""Tables of the payer operations interface (migration ``0011_ops``): staff users and their sessions, the
history of each request (assignments, notes, extensions, information requests, decisions), peer-to-peer
conversations and appeals. The review queue itself is ``pas_review`` (its ``assignee`` column)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text


def ops_tables(metadata: MetaData) -> tuple[Table, Table, Table, Table, Table]:
    staff_user = Table(
        "ops_staff_user",
        metadata,
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("username", String(64), nullable=False),
        Column("display_name", String(128), nullable=False),
        Column("role", String(32), nullable=False),  # reviewer | clinician-reviewer | manager | admin
        Column("password_hash", String(255), nullable=False),  # argon2id, with its parameters
        Column("npi", String(10), nullable=True),
        Column("active", Boolean, nullable=False),
        Column("created", String(35), nullable=False),
        Column("failed_logins", Integer, nullable=False, server_default="0"),  # since the last success
        Column("locked_until", String(35), nullable=True),  # sign-in refused until then
        PrimaryKeyConstraint("tenant", "username", name="pk_ops_staff_user"),
    )
    session = Table(
        "ops_session",
        metadata,
        Column("session_hash", String(64), nullable=False),  # SHA-256 of the cookie value, never the value
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("username", String(64), nullable=False),
        Column("csrf_token", String(64), nullable=False),
        Column("created", String(35), nullable=False),
        Column("expires", String(35), nullable=False),
        PrimaryKeyConstraint("session_hash", name="pk_ops_session"),
        Index("ix_ops_session_expires", "expires"),
    )
    event = Table(
        "ops_event",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("submission_id", String(64), nullable=False),
        Column("review_id", String(64), nullable=True),
        Column("at", String(35), nullable=False),
        Column("actor", String(64), nullable=False),
        Column("kind", String(32), nullable=False),
        Column("detail", Text, nullable=False),  # JSON object
        Index("ix_ops_event_submission", "tenant", "submission_id", "at"),
    )
    peer_to_peer = Table(
        "ops_peer_to_peer",
        metadata,
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("review_id", String(64), nullable=False),
        Column("status", String(16), nullable=False),  # requested | scheduled | completed
        Column("scheduled_for", String(35), nullable=True),
        Column("notes", Text, nullable=False),
        Column("updated_by", String(64), nullable=False),
        Column("updated_at", String(35), nullable=False),
        PrimaryKeyConstraint("tenant", "review_id", name="pk_ops_peer_to_peer"),
    )
    appeal = Table(
        "ops_appeal",
        metadata,
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("submission_id", String(64), nullable=False),
        Column("status", String(16), nullable=False),  # pending | approved | upheld
        Column("received_at", String(35), nullable=False),
        Column("decided_at", String(35), nullable=True),
        Column("notes", Text, nullable=False),
        Column("recorded_by", String(64), nullable=False),
        PrimaryKeyConstraint("tenant", "submission_id", name="pk_ops_appeal"),
    )
    return staff_user, session, event, peer_to_peer, appeal
