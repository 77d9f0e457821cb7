"""CDS Hooks: the cards issued to EHRs and the feedback they send about them.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_cards",
        sa.Column("card_uuid", sa.String(64), primary_key=True),
        sa.Column("service_id", sa.Text, nullable=False),
        sa.Column("hook_instance", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("indicator", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("suggestions", sa.Text, nullable=False, server_default="[]"),
        sa.Column("assessment_id", sa.Text, nullable=True),
        sa.Column("issued_at", sa.Text, nullable=False),
    )
    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("service_id", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("accepted_suggestions", sa.Text, nullable=False, server_default="[]"),
        sa.Column("override_reason", sa.Text, nullable=True),
        sa.Column("outcome_timestamp", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
    )
    op.create_index("ix_cds_feedback_card", "cds_feedback", ["card_uuid"])


def downgrade() -> None:
    op.drop_index("ix_cds_feedback_card", "cds_feedback")
    op.drop_table("cds_feedback")
    op.drop_table("cds_cards")
