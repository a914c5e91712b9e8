"""PAS Subscriptions and the notification outbox.

Revision ID: 0010_pas_subscription_outbox
Revises: 0008_pas_submission_member
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_pas_subscription_outbox"
down_revision = "0008_pas_submission_member"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pas_subscription",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("fhir_base", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("payload", sa.String(16), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("org_filter", sa.Text(), nullable=False),
        sa.Column("heartbeat_period", sa.Integer(), nullable=True),
        sa.Column("heartbeat_due_at", sa.String(35), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.String(35), nullable=False),
        sa.Column("updated", sa.String(35), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "subscription_id", name="pk_pas_subscription"),
    )
    op.create_index("ix_pas_subscription_version", "pas_subscription", ["tenant", "version", "status"])
    op.create_table(
        "pas_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("event_number", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("available_at", sa.String(35), nullable=False),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created", sa.String(35), nullable=False),
        sa.Column("delivered_at", sa.String(35), nullable=True),
    )
    op.create_index("ix_pas_outbox_due", "pas_outbox", ["status", "available_at"])
    op.create_index("ix_pas_outbox_subscription", "pas_outbox", ["tenant", "subscription_id", "event_number"])


def downgrade() -> None:
    op.drop_index("ix_pas_outbox_subscription", table_name="pas_outbox")
    op.drop_index("ix_pas_outbox_due", table_name="pas_outbox")
    op.drop_table("pas_outbox")
    op.drop_index("ix_pas_subscription_version", table_name="pas_subscription")
    op.drop_table("pas_subscription")
