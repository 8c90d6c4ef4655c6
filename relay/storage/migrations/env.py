"""Alembic environment: runs on the connection the relay hands over (sync, via run_sync)."""

from __future__ import annotations

from alembic import context

from relay.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through 'hpoll-relay db upgrade'")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
