"""Job history keeps what an operator watches: args, progress, worker, result, and who
made each transition.

The history is a projection, so the new columns are filled by replaying it: the
migration empties its tables and its position, and the scheduler rebuilds it
from the jobs stream when it next starts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
_JOB_COLUMNS = ("args", "progress", "message", "worker", "result")
_TRANSITION_COLUMNS = ("progress", "actor")


def upgrade() -> None:
    with op.batch_alter_table("tp_jobs") as table:
        table.add_column(sa.Column("args", sa.JSON, nullable=True))
        table.add_column(sa.Column("progress", sa.Float, nullable=True))
        table.add_column(sa.Column("message", sa.Text, nullable=True))
        table.add_column(sa.Column("worker", sa.String(200), nullable=True))
        table.add_column(sa.Column("result", sa.JSON, nullable=True))
    with op.batch_alter_table("tp_job_transitions") as table:
        table.add_column(sa.Column("progress", sa.Float, nullable=True))
        table.add_column(sa.Column("actor", sa.String(200), nullable=True))
    _replay_history()


def downgrade() -> None:
    with op.batch_alter_table("tp_job_transitions") as table:
        for column in _TRANSITION_COLUMNS:
            table.drop_column(column)
    with op.batch_alter_table("tp_jobs") as table:
        for column in _JOB_COLUMNS:
            table.drop_column(column)
    _replay_history()


def _replay_history() -> None:
    for table in ("tp_job_transitions", "tp_job_attempts", "tp_jobs"):
        op.execute(f"DELETE FROM {table}")
    op.execute("DELETE FROM tp_projection_blocked WHERE projection = 'jobs'")
    op.execute("DELETE FROM tp_projection_positions WHERE projection = 'jobs'")
