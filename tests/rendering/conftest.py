"""Real offline assessments (rules backend, the session's knowledge base) for the rendering tests."""

from __future__ import annotations

import pytest

# A treatment (the README's Quick start sample, with a caution), the plain first-line treatment,
# a same-day referral, and a prophylaxis with a caution under the other protocol.
CASES = ("raas-nitrofurantoin-allergy", "uncomplicated", "red-flags-older-adult", "lyme-warfarin-caution")


@pytest.fixture(scope="session")
def assessed(offline_pipeline):
    """name -> (Assessment, the patient input the checkpoint holds), each assessed once per session."""
    from clinreason.rendering import patient_from_checkpoint
    from clinreason.samples import load_sample

    out = {}
    for name in CASES:
        a = offline_pipeline.run(load_sample(name))
        out[name] = (a, patient_from_checkpoint(offline_pipeline.graph.checkpointer, a.id))
    return out


@pytest.fixture(scope="session")
def signed(offline_pipeline, assessed):
    """The Lyme case signed off (approved) by a prescriber: no longer a draft."""
    from clinreason.samples import load_sample

    a = offline_pipeline.run(load_sample("lyme-warfarin-caution"))
    return offline_pipeline.signoff(a.id, "approve", "RPh-4521", "INR check arranged.")
