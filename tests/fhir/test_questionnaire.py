"""The generated Questionnaire: valid FHIR R4, one item per input field, required exactly where no
coded resource can settle the field."""

from __future__ import annotations

import pytest
from fhirclient.models.questionnaire import Questionnaire

from clinreason.fhir.questionnaire import field_items, questionnaire
from clinreason.protocols.registry import registry


def _leaves(model, prefix=""):
    from pydantic import BaseModel

    from clinreason.fhir.questionnaire import _unwrap

    out = {}
    for name, info in model.model_fields.items():
        base = _unwrap(info.annotation)[0]
        if isinstance(base, type) and issubclass(base, BaseModel):
            out |= _leaves(base, f"{prefix}{name}.")
        else:
            out[f"{prefix}{name}"] = info
    return out


@pytest.mark.parametrize("protocol_id", sorted(registry()))
def test_questionnaire_covers_the_input_model(protocol_id):
    spec = registry()[protocol_id]
    q = questionnaire(spec)
    Questionnaire(q, strict=True)
    items = field_items(spec)
    leaves = _leaves(spec.input_model)
    assert set(items) == set(leaves)
    settled = spec.fhir.mapped_fields()
    for link, info in leaves.items():
        assert bool(items[link].get("required")) == (info.is_required() and link not in settled and link.split(".")[0] not in settled), link


def test_uti_items():
    items = field_items(registry()["uti-cystitis"])
    assert items["symptoms.dysuria"]["type"] == "boolean" and items["symptoms.dysuria"]["required"]
    assert items["egfr_ml_min"]["type"] == "decimal" and not items["egfr_ml_min"].get("required")  # an Observation can settle it
    assert [o["valueCoding"]["code"] for o in items["renal_function_summary"]["answerOption"]] == ["normal", "impaired", "failure", "unknown"]
    assert items["history.meds"]["repeats"] and not items["history.meds"].get("required")
    assert [o["valueCoding"]["code"] for o in items["locale_code"]["answerOption"]] == sorted(registry()["uti-cystitis"].locales)
