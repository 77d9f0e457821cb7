"""The formulary layer: drugs, brands, classes, free-text recognition, and the tables a
protocol adds (its options and interaction rules). Below protocols and knowledge; it
imports neither."""

from clinreason.formulary.core import (
    CautionRule,
    DrugClass,
    DrugEntry,
    DrugMatch,
    Formulary,
    InteractionRule,
    OptionInfo,
    build_formulary,
    read_data,
    tokens,
)

__all__ = ["CautionRule", "DrugClass", "DrugEntry", "DrugMatch", "Formulary", "InteractionRule", "OptionInfo", "build_formulary", "read_data", "tokens"]
