"""Knowledge-base documents as a protocol provides them: authored markdown and rendered data.

Authored documents (policies, guideline summaries) live under a protocol's
`corpus/` folder as markdown with YAML front matter; the rule-catalogue policy
and the option monographs are rendered from the rules, the profile and the
formulary, so a passage and the rule it supports share one source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from clinreason.protocols.profile import Profile
    from clinreason.protocols.spec import ProtocolSpec

KINDS = ("policy", "monograph", "guideline")
_FRONT = re.compile(r"^---\n(.*?)\n---\n", re.DOTALL)
# `<!-- rules: RULE-A, RULE-B -->` at the end of an authored section names the
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
    options: tuple[str, ...] = field(default=())  # options the whole document is about
    profiles: tuple[str, ...] = field(default=())  # profiles whose knowledge base holds it (empty: every profile)


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
        profiles=tuple(meta.get("profiles") or ()),
    )


def authored_documents(spec: ProtocolSpec, profile: Profile) -> list[Document]:
    """The markdown documents under the package's `corpus/` folders that belong to this profile.

    A document belongs to the profiles its front matter lists (`profiles: [<profile id>]`); without that
    list, a document in a subfolder named after a profile (`policies/<profile id>/`) belongs to that
    profile, and any other to every profile of the protocol."""
    docs = []
    for kind_folder in spec.files("corpus"):
        for f, folder_profile in _markdown(kind_folder):
            doc = parse_markdown(f.read_text("utf-8"), f"{spec.id}: {kind_folder.name}/{f.name}")
            owners = doc.profiles or ((folder_profile,) if folder_profile else ())
            if not owners or profile.id.lower() in {o.lower() for o in owners}:
                docs.append(doc)
    return docs


def _markdown(folder, profile: str | None = None):  # type: ignore[no-untyped-def]
    """(markdown file, the profile subfolder it is in or None), by name."""
    if not folder.is_dir():
        return []
    out = []
    for f in sorted(folder.iterdir(), key=lambda p: p.name):
        if f.is_dir():
            out += _markdown(f, f.name)
        elif f.name.endswith(".md"):
            out.append((f, profile))
    return out


def monograph_doc_id(option: str) -> str:
    return f"monograph-{option.replace('_', '-')}"


def render_rules_policy(spec: ProtocolSpec, profile: Profile, title: str) -> Document:
    """One passage per rule, with this profile's numbers: the citation target of each rule."""
    sections = []
    for rule in sorted(spec.rules.values(), key=lambda r: r.step):
        rule_title = rule.title.format(**profile.params)
        body = f"{rule.text.format(**profile.params)}\nRule {rule.id}, evaluation step {rule.step}.\nSource: {rule.source.format(**profile.params)}"
        sections.append(Section(f"{rule.id}: {rule_title}", body, rule.id.lower(), (rule.id,)))
    return Document(id=spec.rules_doc_id(profile.id), title=title, source=profile.source, version=profile.version,
                    jurisdiction=profile.id, kind="policy", sections=tuple(sections))
