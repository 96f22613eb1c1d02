"""Alembic environment: migrations run on the connection `database.migrate` passes in."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through tenantplane.services.runtime.database.migrate")
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
