"""The knowledge-base corpus: authored markdown plus documents rendered from data.

Authored documents (policies, guideline summaries) live under `corpus/` as
markdown with YAML front matter. The CA-ON protocol policy and the four drug
monographs are rendered from the rule catalogue, the profile and the
formulary, so a passage and the rule it supports share one source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from clinreason.knowledge.formulary import Formulary, load_formulary
from clinreason.protocols.profile import Profile, load_profile, rule_catalog

KINDS = ("policy", "monograph", "guideline")
_FRONT = re.compile(r"^---\n(.*?)\n---\n", re.DOTALL)
# `<!-- rules: EX-RENAL, CF-RENAL -->` at the end of an authored section names the
# protocol rules the section speaks to; retrieval links questions to rules.
_RULES = re.compile(r"^<!--\s*rules:\s*(.*?)\s*-->\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Section:
    heading: str
    body: str
    slug: str
    rules: tuple[str, ...] = ()  # protocol rule ids this section states or applies


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    source: str
    version: str
    jurisdiction: str
    kind: str
    sections: tuple[Section, ...]
    agents: tuple[str, ...] = field(default=())  # agents the whole document is about


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_markdown(text: str, origin: str) -> Document:
    """Front matter + `## ` sections; the text before the first section is an intro, not a chunk."""
    m = _FRONT.match(text)
    if not m:
        raise ValueError(f"{origin}: missing front matter")
    meta = yaml.safe_load(m.group(1))
    missing = {"id", "title", "source", "version", "jurisdiction", "kind"} - set(meta)
    if missing:
        raise ValueError(f"{origin}: front matter lacks {sorted(missing)}")
    if meta["kind"] not in KINDS:
        raise ValueError(f"{origin}: kind must be one of {KINDS}")
    sections = []
    for block in re.split(r"^## ", text[m.end():], flags=re.MULTILINE)[1:]:
        heading, _, body = block.partition("\n")
        rules = tuple(r.strip() for m in _RULES.finditer(body) for r in m.group(1).split(",") if r.strip())
        sections.append(Section(heading.strip(), _RULES.sub("", body).strip(), slugify(heading), rules))
    slugs = [s.slug for s in sections]
    if len(set(slugs)) != len(slugs) or not sections:
        raise ValueError(f"{origin}: sections must exist and have unique headings")
    return Document(
        id=meta["id"], title=meta["title"], source=str(meta["source"]), version=str(meta["version"]),
        jurisdiction=meta["jurisdiction"], kind=meta["kind"], sections=tuple(sections),
    )


def authored_documents() -> list[Document]:
    root = resources.files("clinreason.knowledge").joinpath("corpus")
    docs = []
    for folder in sorted(root.iterdir(), key=lambda p: p.name):
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir(), key=lambda p: p.name):
            if f.name.endswith(".md"):
                docs.append(parse_markdown(f.read_text("utf-8"), f"{folder.name}/{f.name}"))
    return docs


def protocol_doc_id(profile_id: str) -> str:
    return f"policy-uti-{profile_id.lower()}"


def monograph_doc_id(agent_id: str) -> str:
    return f"monograph-{agent_id.replace('_', '-')}"


def rule_chunk_id(rule_id: str, profile_id: str = "CA-ON") -> str:
    """The chunk that states a protocol rule: the citation target for that rule."""
    return f"{protocol_doc_id(profile_id)}#{rule_id.lower()}"


def render_protocol_policy(profile: Profile) -> Document:
    sections = []
    for rule in sorted(rule_catalog().values(), key=lambda r: r.step):
        title = rule.title.format(**profile.params)
        body = f"{rule.text.format(**profile.params)}\nRule {rule.id}, evaluation step {rule.step}.\nSource: {rule.source.format(**profile.params)}"
        sections.append(Section(f"{rule.id}: {title}", body, rule.id.lower(), (rule.id,)))
    return Document(
        id=protocol_doc_id(profile.id),
        title=f"UTI protocol ({profile.id}): {profile.title}",
        source=profile.source,
        version=profile.version,
        jurisdiction=profile.id,
        kind="policy",
        sections=tuple(sections),
    )


def render_monograph(agent_id: str, formulary: Formulary, profile: Profile) -> Document:
    a = formulary.agents[agent_id]
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
          f"Use of {' or '.join(formulary.agents[p].name if p in formulary.agents else p for p in a.recent_use_excluded_by)} "
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
        agents=(agent_id,),
    )


@cache
def all_documents(profile_id: str = "CA-ON") -> tuple[Document, ...]:
    profile = load_profile(profile_id)
    formulary = load_formulary()
    generated = [render_protocol_policy(profile)] + [render_monograph(a, formulary, profile) for a in profile.agent_order]
    docs = generated + authored_documents()
    ids = [d.id for d in docs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate document ids: {ids}")
    return tuple(docs)
