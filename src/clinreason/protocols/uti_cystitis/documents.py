"""The cystitis protocol's knowledge base: its rule policy, option monographs and authored corpus."""

from __future__ import annotations

from clinreason.formulary import Formulary
from clinreason.protocols.documents import Document, Section, authored_documents, monograph_doc_id, render_rules_policy, slugify
from clinreason.protocols.spec import ProtocolSpec
from clinreason.protocols.uti_cystitis.profile import UtiProfile as Profile


def render_monograph(agent_id: str, formulary: Formulary, profile: Profile) -> Document:
    a = formulary.options[agent_id]
    n = a.name
    reg = profile.regimen(agent_id)
    sources = "; ".join(a.sources)
    # (heading, body, rules the section applies)
    s: list[tuple[str, str, tuple[str, ...]]] = [
        (f"{n}: dose and regimen",
         f"{n} for acute uncomplicated cystitis under the {profile.id} profile: {reg.text}."
         + (f" {reg.note}" if reg.note else ""), ("TX-FIRST-SAFE-AGENT",)),
        (f"{n}: mechanism", f"{n}. {a.mechanism}", ()),
        (f"{n}: renal function", f"{n}. {a.renal}"
         + (f" Protocol rule: {n} is excluded below {profile.renal_exclusion_below[agent_id]:g} mL/min eGFR or creatinine clearance."
            if agent_id in profile.renal_exclusion_below else ""), ("EX-RENAL",)),
        (f"{n}: pregnancy and lactation", f"{n} in pregnancy: {a.pregnancy} {n} in lactation: {a.lactation}", ("CF-PREGNANT",)),
        (f"{n}: G6PD deficiency", f"{n}. {a.g6pd}", ("EX-G6PD",)),
        (f"{n}: age limits",
         f"{n} is not used under {a.min_age} years: safety and efficacy are not established in that group." if a.min_age
         else f"{n} has no protocol age limit beyond the {profile.id} minimum age of {profile.min_age} years for pharmacist prescribing.",
         ("EX-AGE", "CF-AGE-BELOW-MIN")),
        (f"{n}: adverse effects", f"Adverse effects of {n}: " + "; ".join(a.adverse_effects) + ".", ()),
        (f"{n}: counselling", f"Counselling for {n}: " + " ".join(a.counselling), ()),
        (f"{n}: allergy and recent use",
         (f"A reported allergy to {n} (by generic or brand name) excludes it. "
          f"Use of {' or '.join(formulary.options[p].name if p in formulary.options else p for p in a.recent_use_excluded_by)} "
          f"in the last {profile.recent_antibiotic_days} days excludes {n}, because resistance is more likely."),
         ("EX-ALLERGY", "EX-RECENT-USE")),
    ]
    slugs: dict[str, str] = {}
    for rule in formulary.interactions:
        if agent_id in rule.excludes:
            age = f" Applies from age {rule.min_age}." if rule.min_age else ""
            heading = f"{n} interaction: {rule.title}"
            s.append((heading,
                      f"{rule.title} ({rule.rule_id}). {rule.mechanism} {rule.advice}{age} Sources: {'; '.join(rule.sources)}.",
                      (rule.rule_id,)))
            if rule.section:
                slugs[heading] = rule.section
    # Each passage names the product monograph; the document keeps every source.
    sections = tuple(
        Section(h, f"{body}\nSource: {a.sources[0]}", slugs.get(h) or slugify(h.split(":", 1)[1] if ":" in h else h), rules)
        for h, body, rules in s
    )
    return Document(
        id=monograph_doc_id(agent_id),
        title=f"{n} monograph",
        source=sources,
        version=formulary.version,
        jurisdiction="CA",
        kind="monograph",
        sections=sections,
        options=(agent_id,),
    )


def render_documents(spec: ProtocolSpec, profile: Profile) -> list[Document]:
    rules = render_rules_policy(spec, profile, f"UTI protocol ({profile.id}): {profile.title}")
    monographs = [render_monograph(o, spec.formulary, profile) for o in profile.option_order]
    return [rules, *monographs, *authored_documents(spec, profile)]
