"""PAS submissions, their Claim identifier keys and the review queue.

Revision ID: 0006_pas
Revises: 0005_coverage_assertion
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_pas"
down_revision = "0005_coverage_assertion"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pas_submission",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("claim_response_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("created", sa.String(35), nullable=False),
        sa.Column("updated", sa.String(35), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "submission_id", name="pk_pas_submission"),
    )
    op.create_table(
        "pas_submission_key",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "version", "token", name="pk_pas_submission_key"),
    )
    op.create_table(
        "pas_review",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("review_id", sa.String(64), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.Column("due_at", sa.String(35), nullable=False),
        sa.Column("urgency", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "review_id", name="pk_pas_review"),
    )
    op.create_index("ix_pas_review_queue", "pas_review", ["tenant", "status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_pas_review_queue", table_name="pas_review")
    op.drop_table("pas_review")
    op.drop_table("pas_submission_key")
    op.drop_table("pas_submission")
