"""Trace numbers of each PAS submission, so DTR finds a pended request by the context it was given.

Submissions stored before this revision are found by their Claim identifier keys only.

Revision ID: 0013_pas_submission_trace
Revises: 0012_x12_exchange
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_pas_submission_trace"
down_revision = "0012_x12_exchange"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pas_submission_trace",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("trace", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "trace", "submission_id", name="pk_pas_submission_trace"),
    )


def downgrade() -> None:
    op.drop_table("pas_submission_trace")
