"""The store's tables at the head revision, as SQLAlchemy Core objects.

The migrations under `migrations/versions/` create and change these tables;
this module only describes them for queries. `tests/store/test_migrations.py`
checks that upgrading an empty database gives exactly these tables and columns.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# A site is a pharmacy: keys belong to one, and a key reads only its site's assessments.
sites = Table(
    "sites", metadata,
    Column("site_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)

api_keys = Table(
    "api_keys", metadata,
    Column("key_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("key_hash", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("revoked", Integer, nullable=False, server_default="0"),
    Column("site_id", String(64), nullable=True),  # NULL only for a global admin
)

assessments = Table(
    "assessments", metadata,
    Column("id", Text, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    # awaiting_signoff -> signing (claimed by exactly one prescriber) -> final
    Column("status", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("input_hash", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("site_id", String(64), nullable=True),  # NULL: run locally (CLI), visible to global admins only
    Column("submitted_by", Text, nullable=True),  # key id, or NULL for the CLI and pre-0.2 rows
    Column("version", Integer, nullable=False, server_default="0"),  # +1 on every status change
)
Index("ix_assessments_site_created", assessments.c.site_id, assessments.c.created_at)

# One row per assessment that a prescriber has claimed: the primary key is what
# makes the claim exclusive, on SQLite and Postgres alike.
signoffs = Table(
    "signoffs", metadata,
    Column("assessment_id", Text, primary_key=True),
    Column("action", Text, nullable=False),
    Column("prescriber", Text, nullable=False),
    Column("key_id", Text, nullable=True),
    Column("comment", Text, nullable=False, server_default=""),
    Column("agent", Text, nullable=True),
    Column("acknowledged", Text, nullable=False, server_default="[]"),  # JSON list of the checks acknowledged
    Column("claimed_at", Text, nullable=False),
    Column("applied_at", Text, nullable=True),  # set once the graph has resumed and the result is stored
)

access_log = Table(
    "access_log", metadata,
    Column("at", Text, nullable=False),
    Column("key_id", Text, nullable=True),  # NULL when no valid key was presented
    Column("key_name", Text, nullable=True),
    Column("action", Text, nullable=False),
    Column("assessment_id", Text, nullable=True),
    Column("status", Integer, nullable=False),
    Column("site_id", String(64), nullable=True),
    Column("method", Text, nullable=True),
    Column("route", Text, nullable=True),
    Column("ids", Text, nullable=True),  # JSON list: the assessment ids a list read returned
)
Index("ix_access_log_assessment", access_log.c.assessment_id)

# Idempotency-Key on POST /v1/assessments, scoped to the presenting API key.
idempotency = Table(
    "idempotency", metadata,
    Column("key_id", Text, primary_key=True),
    Column("idem_key", String(200), primary_key=True),
    Column("body_hash", Text, nullable=False),
    Column("assessment_id", Text, nullable=True),  # NULL while the first request runs
    Column("created_at", Text, nullable=False),
)

# CDS Hooks (cds_hooks/): every card issued, so feedback can name only real cards and suggestions.
cds_cards = Table(
    "cds_cards", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", Text, nullable=False),
    Column("hook_instance", Text, nullable=False),
    Column("issuer", Text, nullable=False),  # the JWT iss of the EHR the card went to
    Column("indicator", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("suggestions", Text, nullable=False, server_default="[]"),  # JSON list of suggestion uuids
    Column("assessment_id", Text, nullable=True),  # the stored assessment the card links to (patient-view)
    Column("issued_at", Text, nullable=False),
)

# What the clinician did with a card (CDS Hooks feedback): one row per feedback entry, repeats kept.
cds_feedback = Table(
    "cds_feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(64), nullable=False),
    Column("service_id", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("outcome", Text, nullable=False),  # accepted | overridden
    Column("accepted_suggestions", Text, nullable=False, server_default="[]"),  # JSON list of suggestion uuids
    Column("override_reason", Text, nullable=True),  # JSON {reason: Coding, userComment}
    Column("outcome_timestamp", Text, nullable=False),
    Column("received_at", Text, nullable=False),
)
Index("ix_cds_feedback_card", cds_feedback.c.card_uuid)
