"""The Lyme prophylaxis knowledge base: its rule policy, the option monograph rendered from the
formulary data with each profile's numbers, and the authored corpus."""

from __future__ import annotations

from clinreason.formulary import Formulary
from clinreason.protocols.documents import Document, Section, authored_documents, monograph_doc_id, render_rules_policy, slugify
from clinreason.protocols.lyme_pep.profile import LymeProfile
from clinreason.protocols.spec import ProtocolSpec


def render_monograph(option: str, formulary: Formulary, profile: LymeProfile) -> Document:
    a = formulary.options[option]
    n = a.name
    reg = profile.regimen(option)
    child = (f"A patient younger than {profile.child_age_below} receives {profile.child_mg_per_kg:g} mg/kg once, to a maximum of "
             f"{profile.child_max_mg} mg, rounded to the nearest {profile.child_rounding_mg} mg; a current weight is needed.")
    sections: list[tuple[str, str, tuple[str, ...]]] = [
        (f"{n}: dose and regimen",
         f"{n} for prophylaxis of Lyme disease after a high-risk tick bite under the {profile.id} profile: adults "
         f"{reg.drug} {reg.dose} {reg.route}, {reg.frequency} ({reg.duration}), within {profile.window_hours:g} hours of removing "
         f"the tick. {child}", ("TX-PROPHYLAXIS-ADULT", "TX-PROPHYLAXIS-CHILD")),
        (f"{n}: mechanism", f"{n}. {a.mechanism}", ()),
        (f"{n}: kidney and liver function", f"{n}. {a.renal}", ()),
        (f"{n}: pregnancy and lactation", f"{n} in pregnancy: {a.pregnancy} {n} in lactation: {a.lactation}",
         ("CI-PREGNANT", "CA-BREASTFEEDING")),
        (f"{n}: allergy and cross-reactivity",
         f"A reported allergy to {n}, by generic or brand name, or to any other tetracycline (minocycline, tetracycline, "
         f"demeclocycline, tigecycline) rules it out, whatever reaction is noted beside it; an allergy to a sulfonamide or a "
         f"penicillin does not.", ("CI-TETRACYCLINE-ALLERGY",)),
        (f"{n}: adverse effects", f"Adverse effects of {n}: " + "; ".join(a.adverse_effects) + ".", ()),
        (f"{n}: counselling", f"Counselling for {n}: " + " ".join(a.counselling), ("CA-COUNSEL",)),
    ]
    sections += [(f"{n}: {heading}", text, ()) for heading, text in a.extra_sections.items()]
    for rule in formulary.interactions:
        if option in rule.excludes:
            sections.append((f"{n} interaction: {rule.title}", f"{rule.title} ({rule.rule_id}). {rule.mechanism} {rule.advice} "
                             f"Sources: {'; '.join(rule.sources)}.", (rule.rule_id,)))
    for rule in formulary.cautions:
        if option in rule.options:
            sections.append((f"{n} interaction: {rule.title}", f"{rule.title} ({rule.rule_id}, {rule.severity}; the decision does "
                             f"not change). {rule.mechanism} {rule.action} Sources: {'; '.join(rule.sources)}.", (rule.rule_id,)))
    return Document(
        id=monograph_doc_id(option), title=f"{n} monograph", source="; ".join(a.sources), version=formulary.version,
        jurisdiction=profile.id, kind="monograph", options=(option,),
        sections=tuple(Section(h, f"{body}\nSource: {a.sources[0]}", slugify(h.split(":", 1)[1]), rules) for h, body, rules in sections),
    )


def render_documents(spec: ProtocolSpec, profile: LymeProfile) -> list[Document]:
    rules = render_rules_policy(spec, profile, f"Lyme disease prophylaxis protocol ({profile.id}): {profile.title}")
    monographs = [render_monograph(o, spec.formulary, profile) for o in profile.option_order]
    return [rules, *monographs, *authored_documents(spec, profile)]
