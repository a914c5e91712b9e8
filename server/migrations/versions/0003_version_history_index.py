"""Index versions by type and time for type and system history.

Revision ID: 0003_version_history_index
Revises: 0002_string_norm_codepoint
"""

from __future__ import annotations

from alembic import op

revision = "0003_version_history_index"
down_revision = "0002_string_norm_codepoint"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_resource_version_changes", "resource_version", ["tenant", "resource_type", "last_updated"]
    )


def downgrade() -> None:
    op.drop_index("ix_resource_version_changes", table_name="resource_version")
