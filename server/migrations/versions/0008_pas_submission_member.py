"""Member and patient identifier values of each PAS submission, so ``$inquire`` reads only candidates.

PriorGate had no release before this revision, so no existing submissions need their members indexed.

Revision ID: 0008_pas_submission_member
Revises: 0007_cds_feedback_and_jti
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_pas_submission_member"
down_revision = "0007_cds_feedback_and_jti"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pas_submission_member",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("member", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "version", "member", "submission_id", name="pk_pas_submission_member"
        ),
    )


def downgrade() -> None:
    op.drop_table("pas_submission_member")
