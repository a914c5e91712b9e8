"""Payer operations: staff users, sessions, request history, peer-to-peer conversations, appeals.

Revision ID: 0011_ops
Revises: 0010_pas_subscription_outbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_ops"
down_revision = "0010_pas_subscription_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ops_staff_user",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("npi", sa.String(10), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created", sa.String(35), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.String(35), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "username", name="pk_ops_staff_user"),
    )
    op.create_table(
        "ops_session",
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created", sa.String(35), nullable=False),
        sa.Column("expires", sa.String(35), nullable=False),
        sa.PrimaryKeyConstraint("session_hash", name="pk_ops_session"),
    )
    op.create_index("ix_ops_session_expires", "ops_session", ["expires"])
    op.create_table(
        "ops_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.Column("review_id", sa.String(64), nullable=True),
        sa.Column("at", sa.String(35), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ops_event_submission", "ops_event", ["tenant", "submission_id", "at"])
    op.create_table(
        "ops_peer_to_peer",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("review_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scheduled_for", sa.String(35), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.String(35), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "review_id", name="pk_ops_peer_to_peer"),
    )
    op.create_table(
        "ops_appeal",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.String(35), nullable=False),
        sa.Column("decided_at", sa.String(35), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "submission_id", name="pk_ops_appeal"),
    )


def downgrade() -> None:
    op.drop_table("ops_appeal")
    op.drop_table("ops_peer_to_peer")
    op.drop_index("ix_ops_event_submission", table_name="ops_event")
    op.drop_table("ops_event")
    op.drop_index("ix_ops_session_expires", table_name="ops_session")
    op.drop_table("ops_session")
    op.drop_table("ops_staff_user")
