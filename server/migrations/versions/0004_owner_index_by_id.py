"""Index-table owner indexes lead with resource_id, so search semi-joins probe one resource at a time.

Revision ID: 0004_owner_index_by_id
Revises: 0003_version_history_index
"""

from __future__ import annotations

from alembic import op

revision = "0004_owner_index_by_id"
down_revision = "0003_version_history_index"
branch_labels = None
depends_on = None

_TABLES = ("idx_token", "idx_string", "idx_reference", "idx_date")


def upgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_owner", table_name=table)
        op.create_index(f"ix_{table}_owner", table, ["resource_id", "resource_type", "tenant"])


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_owner", table_name=table)
        op.create_index(f"ix_{table}_owner", table, ["tenant", "resource_type", "resource_id"])
