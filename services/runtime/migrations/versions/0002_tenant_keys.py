"""Tenant data keys (wrapped by the master key) for secret config values.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "tp_tenant_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("wrapped", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tp_tenant_keys_tenant", "tp_tenant_keys", ["namespace", "tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_tp_tenant_keys_tenant", "tp_tenant_keys")
    op.drop_table("tp_tenant_keys")
