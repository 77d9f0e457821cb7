"""Cards as pure functions of the protocol result, over every bundled sample and option; and the spec
models refusing what the spec forbids."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clinreason.cds_hooks.cards import (
    CardContext,
    cards_for,
    first_allowed,
    short,
    summary_card,
)
from clinreason.cds_hooks.models import SUMMARY_MAX, Card, CdsResponse, Source
from clinreason.cds_hooks.orders import draft_orders
from clinreason.protocols.registry import resolve
from clinreason.samples import load_sample, sample_index

CTX = CardContext(source=Source(label="clinreason", url="https://cds.example.org/cds-services"), patient_reference="Patient/p1")


def _orders(validated, option: str):
    name = validated.spec.formulary.options[option].product
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "MedicationRequest", "id": "rx1", "status": "draft",
                                                                "intent": "order", "medicationCodeableConcept": {"text": name}}}]}
    return draft_orders(bundle, validated.spec.formulary)


@pytest.mark.parametrize("name", sorted(sample_index()))
def test_every_sample_and_option(name):
    validated = resolve(load_sample(name))
    result = validated.evaluate()
    treat = validated.spec.plan_kind(result) == "treat"
    for evaluation in result.options:
        orders = _orders(validated, evaluation.option)
        assert [o.options for o in orders] == [(evaluation.option,)]  # the product's name is recognised as the option
        cards = cards_for(validated, result, orders, CTX)
        CdsResponse(cards=cards)  # valid per the spec's rules
        severe = [c for c in cards if c.indicator in ("warning", "critical")]
        if not evaluation.allowed:
            [excluded] = [c for c in cards if c.summary.startswith("Do not use")]
            assert excluded.indicator == "critical"
            assert all(e.rule_id in excluded.detail for e in evaluation.exclusions)
            swap = excluded.suggestions[0]
            if treat:
                alternative = first_allowed(result)
                assert result.option(alternative).allowed and swap.actions[1].type == "create"
                assert result.regimen_for(alternative).drug in swap.actions[1].resource["medicationCodeableConcept"]["text"]
            else:
                assert [a.type for a in swap.actions] == ["delete"]
        elif treat and evaluation.verified:
            assert severe == [], [c.summary for c in severe]
        if not treat:
            assert any(c.summary.startswith(("Refer, do not prescribe", "Treatment not indicated")) for c in cards)
    assert summary_card(validated, result, CTX).summary


def test_an_order_of_no_option_gives_no_card():
    validated = resolve(load_sample("methotrexate"))
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "MedicationRequest", "id": "x", "status": "draft",
                                                                "intent": "order", "medicationCodeableConcept": {"text": "atorvastatin 20 mg"}}}]}
    assert cards_for(validated, validated.evaluate(), draft_orders(bundle, validated.spec.formulary), CTX) == []


def test_rxnorm_codes_name_an_option():
    from clinreason.fhir import codes

    validated = resolve(load_sample("methotrexate"))
    formulary = validated.spec.formulary
    by_drug = {drug: cui for cui, drug in codes.rxnorm_ingredients().items()}
    option = next((o for o in formulary.options.values() if o.drug in by_drug), None)
    assert option is not None, "formulary/data/rxnorm.toml lists the options' drugs: one must have a code"
    concept = {"coding": [{"system": codes.RXNORM, "code": by_drug[option.drug]}]}
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "MedicationRequest", "id": "x", "status": "draft",
                                                                "intent": "order", "medicationCodeableConcept": concept}}]}
    assert draft_orders(bundle, formulary)[0].options == (option.id,)


def test_summaries_stay_under_140():
    assert len(short("x" * 500)) == SUMMARY_MAX < 140
    assert short("a  b\n c") == "a b c"


def _card(**kw):
    return {"summary": "s", "indicator": "info", "source": {"label": "clinreason"}, **kw}


@pytest.mark.parametrize("card", [
    _card(summary="x" * 140),
    _card(indicator="danger"),
    _card(source={"url": "https://x"}),
    _card(suggestions=[{"label": "a"}]),  # no selectionBehavior
    _card(suggestions=[{"label": "a", "isRecommended": True}, {"label": "b", "isRecommended": True}], selectionBehavior="at-most-one"),
    _card(overrideReasons=[{"code": "c", "system": "s"}]),  # no display
    _card(links=[]),  # empty: omit it
    _card(links=[{"label": "l", "url": "https://x", "type": "absolute", "appContext": "{}"}]),
    _card(suggestions=[{"label": "a", "actions": [{"type": "delete", "description": "d"}]}], selectionBehavior="any"),
    _card(suggestions=[{"label": "a", "actions": [{"type": "create", "description": "d"}]}], selectionBehavior="any"),
    _card(suggestions=[{"label": "a", "actions": [{"type": "replace", "description": "d", "resourceId": "X/1"}]}], selectionBehavior="any"),
    _card(extra="no"),
])
def test_the_card_model_refuses_what_the_spec_forbids(card):
    with pytest.raises(ValidationError):
        Card.model_validate(card)


def test_optional_members_are_omitted_not_null():
    validated = resolve(load_sample("warfarin"))
    dumped = summary_card(validated, validated.evaluate(), CTX).dump()
    assert None not in dumped.values() and "suggestions" not in dumped and "links" not in dumped
