"""Sites, an exclusive sign-off claim with a version, a full access log, Idempotency-Key.

Rows from release 0.1 move to the site `default`: its submitter and
prescriber keys keep seeing its assessments; its admin keys become global.

Revision ID: 0002
Revises: 0001
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_SITE = "default"


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    with op.batch_alter_table("api_keys") as t:
        t.add_column(sa.Column("site_id", sa.String(64), nullable=True))
    with op.batch_alter_table("assessments") as t:
        t.add_column(sa.Column("site_id", sa.String(64), nullable=True))
        t.add_column(sa.Column("submitted_by", sa.Text, nullable=True))
        t.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_assessments_site_created", "assessments", ["site_id", "created_at"])
    with op.batch_alter_table("access_log") as t:
        t.alter_column("key_id", existing_type=sa.Text, nullable=True)
        t.alter_column("key_name", existing_type=sa.Text, nullable=True)
        t.add_column(sa.Column("site_id", sa.String(64), nullable=True))
        t.add_column(sa.Column("method", sa.Text, nullable=True))
        t.add_column(sa.Column("route", sa.Text, nullable=True))
        t.add_column(sa.Column("ids", sa.Text, nullable=True))
    op.create_index("ix_access_log_assessment", "access_log", ["assessment_id"])
    op.create_table(
        "signoffs",
        sa.Column("assessment_id", sa.Text, primary_key=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("prescriber", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text, nullable=True),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("agent", sa.Text, nullable=True),
        sa.Column("acknowledged", sa.Text, nullable=False, server_default="[]"),
        sa.Column("claimed_at", sa.Text, nullable=False),
        sa.Column("applied_at", sa.Text, nullable=True),
    )
    op.create_table(
        "idempotency",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("idem_key", sa.String(200), primary_key=True),
        sa.Column("body_hash", sa.Text, nullable=False),
        sa.Column("assessment_id", sa.Text, nullable=True),
        sa.Column("created_at", sa.Text, nullable=False),
    )

    # Existing rows: one site for everything release 0.1 stored.
    conn = op.get_bind()
    has_rows = conn.execute(sa.text("SELECT (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM assessments)")).scalar()
    if has_rows:
        conn.execute(sa.text("INSERT INTO sites (site_id, name, created_at) VALUES (:s, :n, :t)"),
                     {"s": DEFAULT_SITE, "n": "Migrated from release 0.1", "t": datetime.now(UTC).isoformat(timespec="milliseconds")})
        conn.execute(sa.text("UPDATE api_keys SET site_id = :s WHERE role <> 'admin'"), {"s": DEFAULT_SITE})
        conn.execute(sa.text("UPDATE assessments SET site_id = :s"), {"s": DEFAULT_SITE})


def downgrade() -> None:
    op.drop_table("idempotency")
    op.drop_table("signoffs")
    op.drop_index("ix_access_log_assessment", "access_log")
    with op.batch_alter_table("access_log") as t:
        for col in ("ids", "route", "method", "site_id"):
            t.drop_column(col)
    op.drop_index("ix_assessments_site_created", "assessments")
    with op.batch_alter_table("assessments") as t:
        for col in ("version", "submitted_by", "site_id"):
            t.drop_column(col)
    with op.batch_alter_table("api_keys") as t:
        t.drop_column("site_id")
    op.drop_table("sites")
