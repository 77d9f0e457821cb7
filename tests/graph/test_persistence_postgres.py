"""The Postgres checkpointer and store, against the local server.

Uses a throwaway schema so runs never see each other's rows.
"""

from __future__ import annotations

from clinreason.config import Settings
from clinreason.pipeline import Pipeline
from clinreason.samples import load_sample

def test_postgres_checkpointer_resumes_signoff_in_a_new_pipeline(kb_index, pg_url):
    first = Pipeline(Settings(database_url=pg_url))
    a = first.run(load_sample("thiazide-older-adult"))
    assert a.status == "awaiting_signoff" and a.plan.option == "trimethoprim"

    second = Pipeline(Settings(database_url=pg_url))  # new connections, nothing in memory
    assert second.get(a.id).status == "awaiting_signoff"
    signed = second.signoff(a.id, "approve", "RPh-42", "checked platelets not needed")
    assert signed.status == "final" and signed.signoff.prescriber_id == "RPh-42"
    rows, total = second.store.list(status="final")
    assert total == 1 and rows[0]["id"] == a.id
