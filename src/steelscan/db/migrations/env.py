"""Alembic environment: always run from code (steelscan.db.migrate) with an open connection."""

from alembic import context

from steelscan.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through steelscan.db.migrate.upgrade(), which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
