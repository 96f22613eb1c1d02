"""Projection positions and blocked subjects of the projector kernel.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "tp_projection_positions",
        sa.Column("projection", sa.String(64), primary_key=True),
        sa.Column("checkpoint", sa.BigInteger, nullable=False),
        sa.Column("parked", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tp_projection_blocked",
        sa.Column("projection", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(512), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tp_projection_blocked")
    op.drop_table("tp_projection_positions")
