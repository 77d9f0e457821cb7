"""Alembic environment: clinreason always passes an open connection (see store/migrate.py)."""

from alembic import context

connection = context.config.attributes["connection"]
# render_as_batch: SQLite cannot ALTER a column in place, so Alembic copies the table.
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
